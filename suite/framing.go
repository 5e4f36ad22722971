package suite

import (
	"encoding/binary"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/protobuf/encoding/protowire"

	"echoadd/protocol"
	"echoadd/suite/harness"
)

// PROTOCOL.md section 2, Framing.
var _ = Describe("Framing", func() {
	cfg := Current()

	// One spec per framing, checking each reply's prefix exactly, at sizes
	// whose length needs 1, 2 and 3 bytes of varint (and 3 bytes of len32).
	formats := []struct {
		framing protocol.Framing
		id      string
		text    string
	}{
		{protocol.Raw, "EA-FRAME-1", "raw: each reply is its encoding with no prefix"},
		{protocol.Len32, "EA-FRAME-4", "len32: each reply is behind its length as 4 bytes, big-endian"},
		{protocol.Varint, "EA-FRAME-5", "varint: each reply is behind its length as a varint"},
	}
	for _, f := range formats {
		var entries []TableEntry
		for _, n := range []int{13, 200, 70000} {
			entries = append(entries, Entry(fmt.Sprintf("%d bytes of content", n), req(sFraming, f.id), specTimeout(), n))
		}
		DescribeTable(f.text,
			func(ctx SpecContext, n int) {
				if cfg.Framing != f.framing {
					Skip(fmt.Sprintf("for %s framing; the target speaks %s", f.framing, cfg.Framing))
				}
				if size := echoSize(n); size > cfg.MaxMessageSize {
					Skip(fmt.Sprintf("a %d-byte request is above the declared maximum of %d bytes", size, cfg.MaxMessageSize))
				}
				s := begin(ctx)
				c := s.dial()
				content := pattern(n)
				Expect(c.Send(protocol.EchoRequest(content))).To(Conform())
				r, err := c.ExpectReply()
				Expect(err).To(Conform())
				checkReplyKind(c, r, "echo_message")
				if r.Msg.GetEchoMessage().GetContent() != content {
					s.fail(c, []string{"EA-ECHO-1"}, r.String(), "the echo of the content sent")
				}
				checkPrefix(s, c, r, f.id)
				Expect(c.Probe()).To(Conform())
			},
			entries,
		)
	}

	It("raw: skips top-level fields other than 1 and 2, whatever their wire type", req(sFraming, "EA-FRAME-1"), specTimeout(), func(ctx SpecContext) {
		if cfg.framed() {
			Skip(fmt.Sprintf("for raw framing; the target speaks %s", cfg.Framing))
		}
		c := begin(ctx).dial()
		var b []byte
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, 42)
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, []byte("not a request"))
		b = protowire.AppendTag(b, 5, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, 0xdeadbeef)
		b = protowire.AppendTag(b, 6, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, 1)
		b = append(b, marshal(protocol.EchoRequest("after four other fields"))...)
		Expect(c.SendRaw(b)).To(Conform())
		Expect(c.ExpectEcho("after four other fields")).To(Conform())
		Expect(c.Probe()).To(Conform())
	})

	DescribeTable("raw: writes each reply at once, so that a client's one read gets it whole",
		func(ctx SpecContext, n int) {
			if cfg.framed() {
				Skip(fmt.Sprintf("for raw framing; the target speaks %s", cfg.Framing))
			}
			s := begin(ctx)
			c := s.dial()
			content := pattern(n)
			Expect(c.Send(protocol.EchoRequest(content))).To(Conform())
			r, err := c.ExpectReply()
			Expect(err).To(Conform())
			checkReplyKind(c, r, "echo_message")
			if spread := r.Last.Sub(r.First); spread > s.w.oneWrite {
				s.fail(c, nil, fmt.Sprintf("a %d-byte reply arriving over %v", len(r.Frame), spread.Round(time.Millisecond)), fmt.Sprintf("all of it within %v of its first byte (one write)", s.w.oneWrite))
			}
		},
		Entry("a 17-byte reply", req(sFraming, "EA-FRAME-2"), specTimeout(), 13),
		Entry("a 506-byte reply", req(sFraming, "EA-FRAME-2"), specTimeout(), 500),
		Entry("a 1024-byte reply", req(sFraming, "EA-FRAME-2"), specTimeout(), 1018),
	)

	It("serves a request that arrives in pieces, with pauses between them", req(sFraming, pieceIDs()...), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		c := s.dial()
		content := pattern(100)
		b, err := c.Frame(protocol.EchoRequest(content))
		Expect(err).NotTo(HaveOccurred())
		s.sendInPieces(c, cut(b, 1, 3, len(b)/2), s.w.pause)
		Expect(c.ExpectEcho(content)).To(Conform())

		b, err = c.Frame(protocol.AddRequestOf(-7, 1000))
		Expect(err).NotTo(HaveOccurred())
		var every []int // one byte per write
		for i := 1; i < len(b); i++ {
			every = append(every, i)
		}
		s.sendInPieces(c, cut(b, every...), s.w.pause)
		Expect(c.ExpectSum(-7, 1000, 993)).To(Conform())
	})

	It("serves a request cut in two at every offset", req(sFraming, pieceIDs()...), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		c := s.dial()
		for _, m := range []*protocol.ClientMessage{protocol.EchoRequest("Hello, World!"), protocol.AddRequestOf(10, 20)} {
			b, err := c.Frame(m)
			Expect(err).NotTo(HaveOccurred())
			for k := 1; k < len(b); k++ {
				s.sendInPieces(c, cut(b, k), s.w.pause/4)
				expectAnswers(c, []*protocol.ClientMessage{m})
			}
		}
	})

	It("answers two requests that arrive in one write, in order", req(sFraming, pieceIDs()...), specTimeout(), func(ctx SpecContext) {
		c := begin(ctx).dial()
		Expect(c.Send(protocol.EchoRequest("first of two"), protocol.AddRequestOf(30, 12))).To(Conform())
		Expect(c.ExpectEcho("first of two")).To(Conform())
		Expect(c.ExpectSum(30, 12, 42)).To(Conform())
		Expect(c.Probe()).To(Conform())
	})

	It("answers two requests whose bytes are cut inside the second, in order", req(sFraming, pieceIDs()...), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		c := s.dial()
		first, err := c.Frame(protocol.EchoRequest("first"))
		Expect(err).NotTo(HaveOccurred())
		both, err := c.Frame(protocol.EchoRequest("first"), protocol.EchoRequest("second, cut in two"))
		Expect(err).NotTo(HaveOccurred())
		s.sendInPieces(c, cut(both, len(first)+3), s.w.pause)
		Expect(c.ExpectEcho("first")).To(Conform())
		Expect(c.ExpectEcho("second, cut in two")).To(Conform())
	})
})

// cut splits b at the given offsets.
func cut(b []byte, at ...int) [][]byte {
	var parts [][]byte
	prev := 0
	for _, i := range at {
		if i > prev && i < len(b) {
			parts = append(parts, b[prev:i])
			prev = i
		}
	}
	return append(parts, b[prev:])
}

// checkPrefix checks a reply's framing prefix byte for byte.
func checkPrefix(s *session, c *harness.Client, r *harness.Reply, id string) {
	body, got := r.Body(), r.Frame[:r.Prefix]
	switch c.Framing() {
	case protocol.Len32:
		if want := binary.BigEndian.AppendUint32(nil, uint32(len(body))); string(got) != string(want) {
			s.fail(c, []string{id}, fmt.Sprintf("the prefix % x before a %d-byte message", got, len(body)), fmt.Sprintf("% x", want))
		}
	case protocol.Varint:
		// A non-minimal varint is still the length (PROTOCOL.md: a server
		// SHOULD write minimal ones, which no requirement line names).
		if v, n := protowire.ConsumeVarint(got); n != len(got) || v != uint64(len(body)) {
			s.fail(c, []string{id}, fmt.Sprintf("the prefix % x before a %d-byte message", got, len(body)), fmt.Sprintf("the varint % x", protowire.AppendVarint(nil, uint64(len(body)))))
		}
		if want := protowire.AppendVarint(nil, uint64(len(body))); string(got) != string(want) {
			c.Note("the prefix % x is a non-minimal varint (minimal: % x)", got, want)
		}
	}
	if c.Framing() == protocol.Raw && body[0] != 0x0a {
		s.fail(c, []string{id}, fmt.Sprintf("a reply starting % x", body[:1]), "the encoding of a ServerMessage setting echo_message, which starts 0a")
	}
}
