package suite

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"echoadd/protocol"
	"echoadd/suite/harness"
)

// idleCPUThreshold is the most CPU time a server with no request in
// progress may use over the measuring window (EA-CONC-4); /proc counts in
// 10 ms ticks.
const idleCPUThreshold = 50 * time.Millisecond

// ConcurrentClients is how many clients EA-CONC-1's spec has served at
// once: a connection limit below it fails that spec.
const ConcurrentClients = 100

// ConcurrentClientsLabels are that spec's labels, for a runner to tell
// whether its label filter selects it.
func ConcurrentClientsLabels() []string { return labels(sConcurrency, []string{"EA-CONC-1"}) }

// PROTOCOL.md section 10, Concurrency. Kept to seconds: the checks are
// about being served at all, and within the EA-CONN-6 bound, not speed.
var _ = Describe("Concurrency", func() {
	It("serves 100 clients at once, 50 requests each, each reply correct", req(sConcurrency, "EA-CONC-1"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		s.crowd = true
		clients := make([]*harness.Client, ConcurrentClients)
		Expect(parallel(len(clients), func(i int) (err error) {
			clients[i], err = s.tryShared()
			return err
		})).To(Conform())
		// Every client is connected before any sends.
		Expect(parallel(len(clients), func(i int) error {
			c := clients[i]
			for j := range 50 {
				var err error
				if j%2 == 0 {
					err = c.Echo(fmt.Sprintf("client %d, request %d", i, j))
				} else {
					err = c.Add(int32(i), int32(j*1000))
				}
				if err != nil {
					return refusedAtLimit(err, c.Name(), i, len(clients), s.cfg.MaxConns)
				}
			}
			return nil
		})).To(Conform())
	})

	It("serves a new client at once while many others are idle, slow, or stalled halfway through a request", req(sConcurrency, "EA-CONC-2"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		const idle, stalled = 16, 16 // more than a small fixed pool of workers
		// This spec is about the others: the new client must be served. In
		// raw framing a server may take one read for one request (EA-FRAME-3
		// is a SHOULD there), so whether the slow and stalled clients are
		// served in the end is judged only in the framed modes (EA-FRAME-6).
		reassembles := s.cfg.Framing != protocol.Raw
		for range idle {
			s.dial()
		}
		var halves []*harness.Client
		var rests [][]byte
		for i := range stalled {
			c := s.dial()
			b, err := c.Frame(protocol.EchoRequest(fmt.Sprintf("stalled %d: %s", i, pattern(64))))
			Expect(err).NotTo(HaveOccurred())
			Expect(c.SendRaw(b[:len(b)/2])).To(Conform())
			halves, rests = append(halves, c), append(rests, b[len(b)/2:])
		}
		// Slow clients send a request a byte at a time meanwhile, well
		// within any read timeout.
		var slow []*harness.Client
		for range 4 {
			slow = append(slow, s.dial())
		}
		slowDone := make(chan error, 1)
		sends := make([]struct { // each slow client's send, for skipIfSlowSend
			took   time.Duration
			pieces int
		}, len(slow))
		go func() {
			slowDone <- parallel(len(slow), func(i int) error {
				content := fmt.Sprintf("slow client %d", i)
				b, err := slow[i].Frame(protocol.EchoRequest(content))
				if err != nil {
					return err
				}
				var every []int
				for j := 1; j < len(b); j++ {
					every = append(every, j)
				}
				start := time.Now()
				err = slow[i].SendSplit(cut(b, every...), s.piecePause(s.w.pause, len(b)))
				sends[i].took, sends[i].pieces = time.Since(start), len(b)
				if err != nil {
					return err
				}
				if !reassembles {
					return nil // serving a request sent in pieces is EA-FRAME-3's, a SHOULD in raw
				}
				return slow[i].ExpectEcho(content)
			})
		}()

		stalledAt := time.Now()
		fresh := s.dial() // each reply is held to the EA-CONN-6 bound
		for i := range 10 {
			Expect(fresh.Echo(fmt.Sprintf("while %d clients wait, request %d", idle+stalled+len(slow), i))).To(Conform())
		}
		slowErr := <-slowDone
		for _, send := range sends { // before slowErr: a read timeout may rightly have ended a send the machine slowed
			s.skipIfSlowSend(send.took, send.pieces)
		}
		Expect(slowErr).To(Conform())
		if rt := s.cfg.ReadTimeout; rt > 0 && time.Since(stalledAt) > rt/2 {
			return // the server may rightly be closing the stalled connections (EA-LIM-3)
		}
		if !reassembles {
			return // as for the slow clients: their own replies are EA-FRAME-3's in raw
		}
		for i, c := range halves { // the stalled clients are served once they finish
			Expect(c.SendRaw(rests[i])).To(Conform())
			Expect(c.ExpectEcho(fmt.Sprintf("stalled %d: %s", i, pattern(64)))).To(Conform())
		}
	})

	It("is unaffected by 200 rapid connect/disconnect cycles", req(sConcurrency, "EA-CONC-3"), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		before := s.dial()
		Expect(before.Echo("before the churn")).To(Conform())
		for i := range 200 {
			c := s.dial()
			if i%2 == 1 {
				Expect(c.SendRaw(c.FrameBody(marshal(protocol.EchoRequest("gone before the reply"))))).To(Conform())
			}
			Expect(c.Close()).To(Succeed())
		}
		Expect(before.Echo("after the churn")).To(Conform())
		Expect(s.dial().Echo("a new client after the churn")).To(Conform())
	})

	DescribeTable("is unaffected by clients that leave in the middle of a request",
		func(ctx SpecContext, reset bool) {
			s := begin(ctx)
			before := s.dial()
			Expect(before.Echo("before they leave")).To(Conform())
			for i := range 16 {
				c := s.dial()
				b, err := c.Frame(protocol.EchoRequest(pattern(200 + i)))
				Expect(err).NotTo(HaveOccurred())
				Expect(c.SendRaw(b[:len(b)/2])).To(Conform())
				if reset {
					Expect(c.Reset()).To(Succeed())
				} else {
					Expect(c.Close()).To(Succeed())
				}
			}
			Expect(before.Echo("after they left")).To(Conform())
			Expect(s.dial().Echo("a new client after they left")).To(Conform())
		},
		Entry("16 clients that reset the connection (RST)", req(sConcurrency, "EA-CONC-3"), specTimeout(), true),
		Entry("16 clients that close the connection", req(sConcurrency, "EA-CONC-3"), specTimeout(), false),
	)

	It("uses no measurable CPU while no request is in progress", req(sConcurrency, "EA-CONC-4"), Label(lifecycle), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		s.needServerCmd()
		if runtime.GOOS != "linux" {
			Skip("reading a process's CPU time needs Linux's /proc")
		}
		p := s.mustStart()
		var clients []*harness.Client
		for i := range 8 {
			c := s.dialAddr(p.Addr)
			for j := range 20 {
				Expect(c.Echo(fmt.Sprintf("client %d, request %d", i, j))).To(Conform())
			}
			clients = append(clients, c)
		}
		for _, c := range clients[:4] { // four leave; four stay connected, idle
			Expect(c.Close()).To(Succeed())
		}
		before, err := p.CPUTime()
		if err != nil {
			Fail(harnessErrorPrefix + ": reading the server's CPU time: " + err.Error())
		}
		measure := time.NewTimer(s.w.cpuWindow) // the measuring window, not a wait for an event
		select {
		case <-measure.C:
		case <-ctx.Done():
			measure.Stop()
			Fail("interrupted while measuring")
		}
		after, err := p.CPUTime()
		if err != nil {
			s.fail(nil, []string{"EA-CONC-4"}, "the server process gone while idle: "+err.Error(), "it running, idle")
		}
		if used := after - before; used > idleCPUThreshold {
			s.fail(nil, nil, fmt.Sprintf("%v of CPU time over %v with 4 idle connections and no request in progress, right after 4 other clients had closed their connections", used, s.w.cpuWindow),
				fmt.Sprintf("at most %v (as /proc counts it, in 10 ms ticks)", idleCPUThreshold),
				"hint: a read loop that keeps reading after a read returned 0 bytes (end of stream) spins on a closed connection; so does polling with no wait")
		}
	})
})

// refusedAtLimit says what an Error CODE_OVERLOADED to client i of n (its
// connection is name) is: the server refused a client at its connection
// limit, which breaks EA-CONC-1 (n clients at once are served), not
// EA-MSG-1. Other failures pass as they are.
func refusedAtLimit(err error, name string, i, n, maxConns int) error {
	var f *harness.Failure
	if !errors.As(err, &f) || f.Refusal == nil || f.Refusal.Msg.GetError().GetCode() != protocol.Code_CODE_OVERLOADED {
		return err
	}
	limit := "the server at its connection limit"
	if maxConns > 0 {
		limit += fmt.Sprintf("; the declared --max-conns is %d", maxConns)
	}
	f.IDs, f.Among, f.Else = []string{"EA-CONC-1"}, nil, nil
	f.Got = fmt.Sprintf("client #%d of %d (%s) refused with Error %v %q (%s)", i+1, n, name, f.Refusal.Msg.GetError().GetCode(), f.Refusal.Msg.GetError().GetDetail(), limit)
	f.Want = fmt.Sprintf("all %d clients served at once", n)
	return f
}
