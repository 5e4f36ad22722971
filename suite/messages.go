package suite

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"echoadd/protocol"
	"echoadd/suite/harness"
)

// PROTOCOL.md section 3, Messages.
var _ = Describe("Messages", func() {
	It("replies to an echo with echo_message and to an add with add_response, each a ServerMessage the schema decodes", req(sMessages, "EA-MSG-1"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		c := s.dial()
		for _, tc := range []struct {
			request *protocol.ClientMessage
			kind    string
		}{
			{protocol.EchoRequest("Hello, World!"), "echo_message"},
			{protocol.EchoRequest(""), "echo_message"},
			{protocol.AddRequestOf(10, 20), "add_response"},
			{protocol.AddRequestOf(1, -1), "add_response"}, // result 0: add_response is still set
		} {
			Expect(c.Send(tc.request)).To(Conform())
			r, err := c.ExpectReply()
			Expect(err).To(Conform())
			checkReplyKind(c, r, tc.kind)
		}
	})

	// Section 3's decoding, step 4: what protobuf parsers ignore, a server
	// ignores too. A hand-written decoder that calls these malformed answers
	// an echo or add request with an Error.
	It("reads a request as protobuf does: unknown fields, and fields of EchoMessage and AddRequest with the wrong wire type, are ignored", req(sMessages, "EA-MSG-1"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		c := s.dial()
		for _, tc := range []struct {
			what  string
			body  []byte
			check func() error
		}{
			{"an unknown field 3 (varint 7) inside EchoMessage, after content \"x\"", []byte{0x0a, 0x05, 0x0a, 0x01, 0x78, 0x18, 0x07}, func() error { return c.ExpectEcho("x") }},
			{"EchoMessage's content as a varint (08 01): an echo of \"\"", []byte{0x0a, 0x02, 0x08, 0x01}, func() error { return c.ExpectEcho("") }},
			{"an unknown top-level field 3 (varint 5), then an echo of \"z\"", []byte{0x18, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0x7a}, func() error { return c.ExpectEcho("z") }},
			{"AddRequest a=5, then b as a length-delimited field (12 00): b is omitted, 0", []byte{0x12, 0x04, 0x08, 0x05, 0x12, 0x00}, func() error { return c.ExpectSum(5, 0, 5) }},
			{"AddRequest a=2, b=3, then an unknown field 4 (varint 1)", []byte{0x12, 0x06, 0x08, 0x02, 0x10, 0x03, 0x20, 0x01}, func() error { return c.ExpectSum(2, 3, 5) }},
		} {
			c.Note("%s", tc.what)
			Expect(c.SendRaw(c.FrameBody(tc.body))).To(Conform())
			Expect(tc.check()).To(Conform())
		}
	})
})

// checkReplyKind fails the spec unless r sets kind and decodes strictly.
func checkReplyKind(c *harness.Client, r *harness.Reply, kind string) {
	GinkgoHelper()
	Expect(c.ExpectKind(r, kind)).To(Conform())
}
