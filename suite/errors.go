package suite

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"echoadd/protocol"
)

// PROTOCOL.md section 7, Errors.
var _ = Describe("Errors", func() {
	cfg := Current()

	It("answers a request it cannot serve with an Error that has the case's code and a detail", req(sErrors, "EA-ERR-1"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		c := s.dial()
		if cfg.framed() {
			Expect(c.SendRaw(c.FrameBody(nil))).To(Conform()) // an empty message: no request set
			r, err := c.ExpectErrorReply(protocol.Code_CODE_EMPTY_REQUEST)
			Expect(err).To(Conform())
			s.expectDetail(c, r)
		}
		Expect(c.SendRaw(c.FrameBody([]byte{0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28}))).To(Conform()) // content that is not UTF-8
		r, err := c.ExpectErrorReply(protocol.Code_CODE_MALFORMED)
		Expect(err).To(Conform())
		s.expectDetail(c, r)
	})

	DescribeTable("sends field 3 only as an Error message",
		func(ctx SpecContext, body []byte) {
			s := begin(ctx)
			c := s.dial()
			Expect(c.SendRaw(c.FrameBody(body))).To(Conform())
			r, err := c.ExpectErrorReply() // checks field 3 decodes as an Error
			Expect(err).To(Conform())
			s.expectDetail(c, r)
		},
		Entry("for content that is not UTF-8", req(sErrors, "EA-ERR-2"), specTimeout(), []byte{0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28}),
		Entry("for a request field of the wrong wire type", req(sErrors, "EA-ERR-2"), specTimeout(), []byte{0x08, 0x01}),
		Entry("for an echo request whose inside is cut short", req(sErrors, "EA-ERR-2"), specTimeout(), []byte{0x0a, 0x03, 0x0a, 0x05, 0x41}),
	)
})
