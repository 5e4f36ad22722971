package suite

import (
	"fmt"
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// PROTOCOL.md section 4, Echo.
var _ = Describe("Echo", func() {
	It(`echoes "Hello, World!" and nothing more`, req(sEcho, "EA-ECHO-1", "EA-CONN-1"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		c := s.dial()
		Expect(c.Echo("Hello, World!")).To(Conform())
		Expect(c.ExpectSilence(s.w.quiet)).To(Conform())
	})

	DescribeTable("echoes content byte for byte",
		func(ctx SpecContext, content string) {
			c := begin(ctx).dial()
			Expect(c.Echo(content)).To(Conform())
			Expect(c.Probe()).To(Conform())
		},
		Entry("empty content", req(sEcho, "EA-ECHO-2"), specTimeout(), ""),
		Entry("multi-byte UTF-8", req(sEcho, "EA-ECHO-2"), specTimeout(), "héllo, wörld: 世界, Ελληνικά, 😀🌍"),
		Entry("NUL bytes", req(sEcho, "EA-ECHO-2"), specTimeout(), "a\x00b\x00\x00c\x00"),
		Entry("a single NUL byte", req(sEcho, "EA-ECHO-2"), specTimeout(), "\x00"),
		Entry("NUL, control characters and UTF-8 mixed", req(sEcho, "EA-ECHO-2"), specTimeout(), "\x00é\r\n\t\x7f世\x01\x00"),
	)

	// Content lengths at and around common buffer sizes; a request above
	// the declared maximum is skipped, and the largest request the maximum
	// allows is sent.
	maxSize := Current().MaxMessageSize
	maxContent, maxEncoded := contentForSize(maxSize)
	sizeEntries := []TableEntry{}
	for _, n := range []int{127, 128, 255, 256, 511, 512, 513, 1000, 1023, 1024, 1025, 4095, 4096, 4097, 65535, 65536, 65537} {
		sizeEntries = append(sizeEntries, Entry(fmt.Sprintf("%d bytes of content", n), req(sEcho, "EA-ECHO-3"), specTimeout(), n))
	}
	sizeEntries = append(sizeEntries, Entry(fmt.Sprintf("the largest request the declared maximum allows (%d bytes of content, a %d-byte request)", maxContent, maxEncoded), req(sEcho, "EA-ECHO-3"), specTimeout(), maxContent))
	DescribeTable("echoes content of any length up to the maximum message size",
		func(ctx SpecContext, n int) {
			if size := echoSize(n); size > maxSize {
				Skip(fmt.Sprintf("a %d-byte echo request is above the declared maximum of %d bytes", size, maxSize))
			}
			c := begin(ctx).dial()
			Expect(c.Echo(pattern(n))).To(Conform())
			Expect(c.Probe()).To(Conform())
		},
		sizeEntries,
	)

	// Up to 1,000: a server within the 1 s bound but slow (40 ms a reply)
	// would run the spec out of its time budget, a harness error, so the
	// echoes stop at half the budget, after 100 at least.
	It("answers up to 1,000 sequential echoes of random content on one connection, and nothing more", req(sEcho, "EA-ECHO-1", "EA-CONN-3", "EA-CONN-1"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		c := s.dial()
		rng := rand.New(rand.NewPCG(uint64(GinkgoRandomSeed()), 1000))
		start, n := time.Now(), 0
		for ; n < 1000 && (n < 100 || time.Since(start) < s.w.spec/2); n++ {
			Expect(c.Echo(randomText(rng, rng.IntN(200)))).To(Conform())
		}
		c.Note("%d echoes in %v", n, time.Since(start).Round(time.Millisecond))
		Expect(c.ExpectSilence(s.w.quiet)).To(Conform())
	})
})
