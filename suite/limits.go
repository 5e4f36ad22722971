package suite

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/protobuf/encoding/protowire"

	"echoadd/protocol"
)

// PROTOCOL.md section 9, Limits and timeouts.
var _ = Describe("Limits and timeouts", func() {
	cfg := Current()

	It("accepts a request of 1024 encoded bytes", req(sLimits, "EA-LIM-1"), specTimeout(), func(ctx SpecContext) {
		n, size := contentForSize(protocol.MinMaxMessageSize)
		Expect(size).To(Equal(protocol.MinMaxMessageSize))
		c := begin(ctx).dial()
		Expect(c.Echo(pattern(n))).To(Conform())
		Expect(c.Probe()).To(Conform())
	})

	It("answers a request declared above the maximum with Error (CODE_TOO_LARGE), then closes", req(sLimits, "EA-LIM-2"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		c := s.dial()
		over := cfg.MaxMessageSize + 1
		start := marshal(protocol.EchoRequest(pattern(over)))[:16]
		if cfg.framed() {
			c.Note("a prefix declaring %d bytes, the maximum + 1, and 16 bytes of them", over)
			Expect(c.SendFrame(uint64(over), start)).To(Conform())
		} else {
			// An echo field whose length makes the request max + 1 bytes or more.
			b := protowire.AppendTag(nil, 1, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(cfg.MaxMessageSize))
			c.Note("an echo field declaring %d bytes: a request above the maximum of %d", cfg.MaxMessageSize, cfg.MaxMessageSize)
			Expect(c.SendRaw(append(b, start[:8]...))).To(Conform())
		}
		_, err := c.ExpectErrorReply(protocol.Code_CODE_TOO_LARGE)
		Expect(err).To(Conform())
		Expect(c.ExpectClosed(s.w.closing)).To(Conform())
	})

	It("answers a request of the maximum + 1 bytes, sent whole, with Error (CODE_TOO_LARGE), then closes", req(sLimits, "EA-LIM-2"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		c := s.dial()
		n, size := contentForSize(cfg.MaxMessageSize + 1)
		if size <= cfg.MaxMessageSize {
			n++
		}
		b, err := c.Frame(protocol.EchoRequest(pattern(n)))
		Expect(err).NotTo(HaveOccurred())
		c.Note("an echo request of %d bytes, one write: the maximum is %d", echoSize(n), cfg.MaxMessageSize)
		// The server may close while the request is still arriving; the
		// write failing then is no fault. Its Error reply should still be
		// readable (PROTOCOL.md, section 7: "closed by the server").
		_ = c.SendRaw(b)
		_, err = c.ExpectErrorReply(protocol.Code_CODE_TOO_LARGE)
		Expect(err).To(Conform())
		Expect(c.ExpectClosed(s.w.closing)).To(Conform())
	})

	It("closes a connection whose request stays partly sent for longer than the read timeout", req(sLimits, "EA-LIM-3"), specTimeout(), func(ctx SpecContext) {
		if cfg.ReadTimeout == 0 {
			Skip("the target declares no read timeout")
		}
		s := begin(ctx)
		c := s.dial()
		b, err := c.Frame(protocol.EchoRequest(pattern(100)))
		Expect(err).NotTo(HaveOccurred())
		c.Note("half a request, then nothing: the read timeout is %v", cfg.ReadTimeout)
		Expect(c.SendRaw(b[:len(b)/2])).To(Conform())
		o, err := c.ExpectNoSuccess(s.w.readLimit) // an Error (CODE_TIMEOUT) may come before the close
		Expect(err).To(Conform())
		switch {
		case o.Silent:
			s.fail(c, nil, "the connection still open", fmt.Sprintf("it closed within the %s", s.w.readLimit))
		case o.Reply != nil:
			Expect(c.ExpectClosed(s.w.closing)).To(Conform())
		}
	})

	It("closes a connection idle for longer than the idle timeout", req(sLimits, "EA-LIM-4"), func() {
		Skip("the suite's configuration declares no idle timeout")
	})

	It("answers a connection above the connection limit with Error (CODE_OVERLOADED), then closes it", req(sLimits, "EA-LIM-5"), func() {
		Skip("the suite's configuration declares no connection limit")
	})
})
