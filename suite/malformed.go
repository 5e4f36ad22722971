package suite

import (
	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"echoadd/protocol"
	"echoadd/suite/harness"
	"echoadd/testdata/malformed"
)

// PROTOCOL.md section 8, Malformed input, fed from testdata/malformed (the
// corpus is embedded, so a runner binary carries it). Each case applying
// to the target's framing makes two entries: the MUST one (no success
// reply; every other connection still served) and the SHOULD one (the
// Error replies with the case's codes; a close after a framing error or an
// oversize prefix).
var _ = Describe("Malformed input", func() {
	cfg := Current()
	cases, err := malformed.Embedded()
	if err != nil {
		panic(fmt.Sprintf("the embedded malformed-input corpus: %v", err))
	}
	var musts, shoulds []TableEntry
	for _, mc := range cases {
		if !mc.AppliesTo(cfg.Framing) {
			continue
		}
		text := mc.Name + ": " + mc.Exercises
		var mustIDs, shouldIDs []string
		for _, id := range mc.Requirements {
			if levels[id] == "must" {
				mustIDs = append(mustIDs, id)
			} else {
				shouldIDs = append(shouldIDs, id)
			}
		}
		musts = append(musts, Entry(text, Label(labels(sMalformed, mustIDs)...), specTimeout(), mc))
		if len(shouldIDs) > 0 {
			shoulds = append(shoulds, Entry(text, Label(labels(sMalformed, shouldIDs)...), specTimeout(), mc))
		}
	}

	DescribeTable("never answers malformed input with success, and keeps serving every other connection",
		func(ctx SpecContext, mc malformed.Case) {
			s := begin(ctx)
			before := s.dial()
			Expect(before.Echo("before the malformed input")).To(Conform())

			c := s.dial()
			c.Note("case %s: %s", mc.Name, mc.Exercises)
			Expect(c.SendRaw(mc.Wire(cfg.Framing))).To(Conform())
			if mc.CloseWrite {
				Expect(c.CloseWrite()).To(Succeed())
			}
			// Error replies, a close or silence are all fine; a success
			// reply is not. Wait for the replies a server should send,
			// then briefly for anything more.
			for errorReplies := 0; errorReplies <= len(mc.Codes)+len(mc.Optional); errorReplies++ {
				w := s.w.noReply
				if errorReplies >= len(mc.Codes) {
					w = s.w.afterErr
				}
				o, err := c.ExpectNoSuccess(w)
				Expect(err).To(Conform())
				if o.Reply == nil {
					break
				}
			}

			Expect(before.Echo("after the malformed input, on a connection opened before it")).To(Conform())
			Expect(s.dial().Echo("after the malformed input, on a new connection")).To(Conform())
		},
		musts,
	)

	DescribeTable("answers malformed input as PROTOCOL.md says: Error replies with the matching codes, then a close where one is due",
		func(ctx SpecContext, mc malformed.Case) {
			s := begin(ctx)
			c := s.dial()
			c.Note("case %s: %s", mc.Name, mc.Exercises)
			Expect(c.SendRaw(mc.Wire(cfg.Framing))).To(Conform())
			if mc.CloseWrite {
				Expect(c.CloseWrite()).To(Succeed())
			}
			for _, code := range mc.Codes {
				r, err := c.ExpectErrorReply(code)
				Expect(err).To(Conform())
				s.expectDetail(c, r)
			}
			if !mc.CloseWrite && !slices.Contains(mc.Requirements, "EA-MAL-5") && !slices.Contains(mc.Requirements, "EA-LIM-2") {
				return
			}
			// The close is the last check: a close that does not come
			// breaks the requirement that asks for it, not the Error
			// replies' (EA-MAL-3, EA-ERR-1), which were judged above.
			closeIDs := slices.DeleteFunc(slices.Clone(mc.Requirements), func(id string) bool { return id != "EA-MAL-5" && id != "EA-LIM-2" })
			if len(mc.Optional) == 0 {
				s.failLast(c.ExpectClosed(s.w.closing), closeIDs)
				return
			}
			// An Error with one of the optional codes may come first.
			want := fmt.Sprintf("the connection closed within the %s, after an optional Error %v", s.w.closing, mc.Optional)
			o, err := c.ExpectNoSuccess(s.w.closing)
			Expect(err).To(Conform())
			switch {
			case o.Silent:
				s.failLast(&harness.Failure{Got: "the connection still open", Want: want, Transcript: c.Transcript().Tail(40)}, closeIDs)
			case o.Reply != nil && !slices.Contains(mc.Optional, o.Reply.Msg.GetError().GetCode()):
				s.fail(c, nil, o.Reply.String(), want)
			case o.Reply != nil:
				s.failLast(c.ExpectClosed(s.w.closing), closeIDs)
			}
		},
		shoulds,
	)

	It("len32 and varint: serves the next request after an undecodable body", req(sMalformed, "EA-MAL-4"), specTimeout(), func(ctx SpecContext) {
		if !cfg.framed() {
			Skip("for len32 and varint framing: in raw framing nothing delimits an undecodable body")
		}
		c := begin(ctx).dial()
		Expect(c.SendRaw(c.FrameBody([]byte{0xff, 0xff, 0xff, 0xff}))).To(Conform())
		Expect(c.Send(protocol.EchoRequest("after an undecodable body"))).To(Conform())
		r, err := c.ExpectReply() // the Error reply a server should send first, or the echo
		Expect(err).To(Conform())
		if r.Msg.GetError() != nil {
			Expect(c.ExpectEcho("after an undecodable body")).To(Conform())
		} else {
			Expect(r.Msg.GetEchoMessage().GetContent()).To(Equal("after an undecodable body"), "EA-MAL-4: got %s, want an Error reply or the echo", r)
		}
		Expect(c.Probe()).To(Conform())
	})
})
