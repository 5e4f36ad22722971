package suite

import (
	"math"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// PROTOCOL.md section 5, Add. Operands are written out by hand so that an
// explicit 0 and an omitted operand are both on the wire as stated. Where b
// is not 0 the sum is not a, so that a server returning a, or echoing the
// request's bytes back (which decode as result = a), fails.
var _ = Describe("Add", func() {
	DescribeTable("adds a and b",
		func(ctx SpecContext, a, b *int32, want int32) {
			c := begin(ctx).dial()
			Expect(c.SendRaw(c.FrameBody(addBody(a, b)))).To(Conform())
			var av, bv int32
			if a != nil {
				av = *a
			}
			if b != nil {
				bv = *b
			}
			Expect(c.ExpectSum(av, bv, want)).To(Conform())
			Expect(c.Probe()).To(Conform()) // the connection still serves, and nothing more came
		},
		Entry("10 + 20 = 30", req(sAdd, "EA-ADD-1"), specTimeout(), ptr(10), ptr(20), int32(30)),
		Entry("-5 + 3 = -2", req(sAdd, "EA-ADD-1"), specTimeout(), ptr(-5), ptr(3), int32(-2)),
		Entry("-100 + -23 = -123", req(sAdd, "EA-ADD-1"), specTimeout(), ptr(-100), ptr(-23), int32(-123)),
		Entry("1 + -1 = 0", req(sAdd, "EA-ADD-1"), specTimeout(), ptr(1), ptr(-1), int32(0)),
		Entry("1000000 + 2345678 = 3345678", req(sAdd, "EA-ADD-1"), specTimeout(), ptr(1000000), ptr(2345678), int32(3345678)),
		Entry("0 + 0 = 0, both zeros written out", req(sAdd, "EA-ADD-1"), specTimeout(), ptr(0), ptr(0), int32(0)),
		Entry("a = 7 alone (b omitted) = 7", req(sAdd, "EA-ADD-3"), specTimeout(), ptr(7), nil, int32(7)),
		Entry("b = 5 alone (a omitted) = 5", req(sAdd, "EA-ADD-3"), specTimeout(), nil, ptr(5), int32(5)),
		Entry("both omitted (an empty AddRequest) = 0", req(sAdd, "EA-ADD-3"), specTimeout(), nil, nil, int32(0)),
		Entry("INT32_MAX + 1 = INT32_MIN", req(sAdd, "EA-ADD-2"), specTimeout(), ptr(math.MaxInt32), ptr(1), int32(math.MinInt32)),
		Entry("INT32_MIN + -1 = INT32_MAX", req(sAdd, "EA-ADD-2"), specTimeout(), ptr(math.MinInt32), ptr(-1), int32(math.MaxInt32)),
		Entry("INT32_MAX + INT32_MAX = -2", req(sAdd, "EA-ADD-2"), specTimeout(), ptr(math.MaxInt32), ptr(math.MaxInt32), int32(-2)),
		Entry("INT32_MIN + INT32_MIN = 0", req(sAdd, "EA-ADD-2"), specTimeout(), ptr(math.MinInt32), ptr(math.MinInt32), int32(0)),
	)
})
