package suite

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"echoadd/protocol"
	"echoadd/suite/harness"
)

// PROTOCOL.md section 6, Ordering and connection lifetime.
var _ = Describe("Ordering and connection lifetime", func() {
	cfg := Current()

	It("answers echo and add requests interleaved on one connection, each in turn", req(sOrdering, "EA-CONN-2", "EA-CONN-3"), specTimeout(), func(ctx SpecContext) {
		c := begin(ctx).dial()
		for i := range 20 {
			if i%2 == 0 {
				Expect(c.Echo(fmt.Sprintf("request %d", i))).To(Conform())
			} else {
				Expect(c.Add(int32(i), int32(-1000*i))).To(Conform())
			}
		}
	})

	It("sends exactly one reply per request and nothing else", req(sOrdering, "EA-CONN-1"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		c := s.dial()
		Expect(c.Echo("one reply")).To(Conform())
		Expect(c.ExpectSilence(s.w.quiet)).To(Conform())
		Expect(c.Add(2, 40)).To(Conform())
		// Then idle for a second: a keep-alive or heartbeat, a late
		// duplicate, would come in it.
		Expect(c.ExpectSilence(s.w.unasked)).To(Conform())
		Expect(c.Probe()).To(Conform())
	})

	It("answers every request within 1 s of receiving it", req(sOrdering, "EA-CONN-6"), specTimeout(), func(ctx SpecContext) {
		c := begin(ctx).dial() // the client holds every reply to the bound; here, 50 in a row
		for i := range 50 {
			Expect(c.Echo(pattern(i * 17))).To(Conform())
		}
	})

	// Pipelining: 16 requests before any reply is read.
	pipelined := func(ctx SpecContext, oneWrite bool) {
		if !cfg.framed() {
			Skip("for len32 and varint framing: in raw framing, requests sent together are EA-FRAME-3's (see Framing)")
		}
		c := begin(ctx).dial()
		var msgs []*protocol.ClientMessage
		for i := range 16 {
			if i%2 == 0 {
				msgs = append(msgs, protocol.EchoRequest(fmt.Sprintf("pipelined %d", i)))
			} else {
				msgs = append(msgs, protocol.AddRequestOf(int32(i), 100))
			}
		}
		if oneWrite {
			Expect(c.Send(msgs...)).To(Conform())
		} else {
			for _, m := range msgs {
				Expect(c.Send(m)).To(Conform())
			}
		}
		expectAnswers(c, msgs)
		Expect(c.Probe()).To(Conform())
	}
	It("answers 16 requests sent in one write before any reply is read, in order", req(sOrdering, "EA-CONN-4", "EA-CONN-2"), specTimeout(), func(ctx SpecContext) {
		pipelined(ctx, true)
	})
	It("answers 16 requests written one by one before any reply is read, in order", req(sOrdering, "EA-CONN-4", "EA-CONN-2"), specTimeout(), func(ctx SpecContext) {
		pipelined(ctx, false)
	})

	It("on a half-close, sends the replies still due, then closes", req(sOrdering, "EA-CONN-5"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		c := s.dial()
		msgs := []*protocol.ClientMessage{protocol.EchoRequest("due before the close")}
		if cfg.framed() { // in raw framing, several requests together are EA-FRAME-3's
			msgs = append(msgs, protocol.AddRequestOf(20, 22), protocol.EchoRequest("also due"))
		}
		Expect(c.Send(msgs...)).To(Conform())
		Expect(c.CloseWrite()).To(Succeed())
		expectAnswers(c, msgs)
		Expect(c.ExpectClosed(s.w.closing)).To(Conform())
	})
})

// expectAnswers checks the replies to msgs, in order.
func expectAnswers(c *harness.Client, msgs []*protocol.ClientMessage) {
	GinkgoHelper()
	for _, m := range msgs {
		if e := m.GetEchoMessage(); e != nil {
			Expect(c.ExpectEcho(e.GetContent())).To(Conform())
		} else {
			a, b := m.GetAddRequest().GetA(), m.GetAddRequest().GetB()
			Expect(c.ExpectSum(a, b, a+b)).To(Conform())
		}
	}
}
