package suite

import (
	"fmt"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The original exercise's tests, with the same data, in the same order
// (Ordered), labelled "legacy" and with the requirements they exercise.
var _ = Describe("Legacy parity: the original exercise's tests", Ordered, func() {
	legacyMessages := []string{"Hello, World!", "How are you?", "Goodbye!"}

	It("connects and disconnects", req(sLegacy, "EA-TRANS-1"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		Expect(s.dial().Close()).To(Succeed())
		Expect(s.dial().Echo("Hello, World!")).To(Conform()) // and the server is still there
	})

	It(`echoes "Hello, World!"`, req(sLegacy, "EA-ECHO-1"), specTimeout(), func(ctx SpecContext) {
		Expect(begin(ctx).dial().Echo("Hello, World!")).To(Conform())
	})

	It("echoes three messages on one connection", req(sLegacy, "EA-ECHO-1", "EA-CONN-3"), specTimeout(), func(ctx SpecContext) {
		c := begin(ctx).dial()
		for _, m := range legacyMessages {
			Expect(c.Echo(m)).To(Conform())
		}
	})

	It("serves three clients round-robin", req(sLegacy, "EA-CONC-1", "EA-ECHO-1"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		clients := [3]interface{ Echo(string) error }{s.dial(), s.dial(), s.dial()}
		for _, m := range legacyMessages {
			for i, c := range clients {
				Expect(c.Echo(fmt.Sprintf("client %d: %s", i+1, m))).To(Conform())
			}
		}
	})

	It("adds 10 + 20 = 30", req(sLegacy, "EA-ADD-1"), specTimeout(), func(ctx SpecContext) {
		Expect(begin(ctx).dial().Add(10, 20)).To(Conform())
	})

	It("serves four concurrent client threads of three messages each", req(sLegacy, "EA-CONC-1", "EA-ECHO-1"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		Expect(parallel(4, func(i int) error {
			c, err := s.tryShared()
			if err != nil {
				return err
			}
			for _, m := range legacyMessages {
				if err := c.Echo(fmt.Sprintf("thread %d: %s", i+1, m)); err != nil {
					return err
				}
			}
			return nil
		})).To(Conform())
	})
})

// parallel runs f(0..n-1) at once and returns the first error by index.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
