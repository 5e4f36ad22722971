package suite

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// PROTOCOL.md section 1, Transport.
var _ = Describe("Transport", func() {
	It("is unchanged by clients that connect and disconnect without sending anything", req(sTransport, "EA-TRANS-1"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		before := s.dial()
		Expect(before.Echo("before")).To(Conform())
		for range 20 {
			Expect(s.dial().Close()).To(Succeed())
		}
		Expect(before.Echo("still served")).To(Conform())
		Expect(s.dial().Echo("new client")).To(Conform())
	})

	It("keeps accepting: 50 connections one after another are each served", req(sTransport, "EA-TRANS-1"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		for i := range 50 {
			c := s.dial()
			Expect(c.Echo(fmt.Sprintf("connection %d", i+1))).To(Conform())
			Expect(c.Close()).To(Succeed())
		}
	})
})
