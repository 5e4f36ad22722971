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
})

// checkReplyKind fails the spec unless r sets kind and decodes strictly.
func checkReplyKind(c *harness.Client, r *harness.Reply, kind string) {
	GinkgoHelper()
	Expect(c.ExpectKind(r, kind)).To(Conform())
}
