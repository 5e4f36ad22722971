package suite

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"echoadd/protocol"
	"echoadd/suite/harness"
)

// PROTOCOL.md section 11, Shutdown. Each spec starts a fresh server from
// the server command and stops it with SIGTERM; against a target address
// they skip.
var _ = Describe("Shutdown", func() {
	cfg := Current()

	DescribeTable("closes idle connections (clients see EOF) and exits 0 within its grace period",
		func(ctx SpecContext, sig syscall.Signal) {
			s := begin(ctx)
			s.needServerCmd()
			p := s.mustStart()
			var clients []*harness.Client
			for i := range 4 {
				c := s.dialAddr(p.Addr)
				Expect(c.Echo(fmt.Sprintf("client %d, idle from now on", i))).To(Conform())
				clients = append(clients, c)
			}
			exited := stopInBackground(p, sig, s.w.grace)
			eof := harness.Window{Name: "grace period", D: s.w.grace}
			for _, c := range clients {
				Expect(c.ExpectClosed(eof)).To(Conform())
			}
			checkExit(s, p, <-exited)
		},
		Entry("on SIGTERM", req(sShutdown, "EA-STOP-3", "EA-STOP-4"), Label(lifecycle), specTimeout(), syscall.SIGTERM),
		Entry("on SIGINT", req(sShutdown, "EA-STOP-3", "EA-STOP-4"), Label(lifecycle), specTimeout(), syscall.SIGINT),
	)

	It("on SIGTERM, stops accepting connections at once", req(sShutdown, "EA-STOP-1"), Label(lifecycle), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		s.needServerCmd()
		p := s.mustStart()
		Expect(s.dialAddr(p.Addr).Echo("served before the stop")).To(Conform())
		Expect(p.Signal(syscall.SIGTERM)).To(Succeed())
		// Refused means refused: a connect that times out is left pending
		// in a listening socket's full backlog (PROTOCOL.md section 11).
		var last error
		refused := NewGomega(func(string, ...int) {}).Eventually(func() error {
			conn, err := net.DialTimeout("tcp", p.Addr, 100*time.Millisecond)
			switch {
			case errors.Is(err, syscall.ECONNREFUSED):
				return nil
			case err == nil:
				conn.Close()
				last = errors.New("accepted")
			default:
				last = err
			}
			return last
		}).WithContext(ctx).WithTimeout(s.w.stopping).WithPolling(10 * time.Millisecond).Should(Succeed())
		if !refused {
			s.fail(nil, nil, fmt.Sprintf("connections to %s not refused %v after SIGTERM (the last connect: %v)", p.Addr, s.w.stopping, last),
				"them refused at once (the listening socket closed)")
		}
	})

	It("on SIGTERM, answers a request already received before closing its connection", req(sShutdown, "EA-STOP-2"), Label(lifecycle), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		s.needServerCmd()
		p := s.mustStart()
		c := s.dialAddr(p.Addr)
		// A request is surely received whole once its reply has started.
		// The reply must then be completed, not cut or reset, before the
		// close. (No client can make a server be between reading a request
		// and writing its reply when the signal lands: a server's send
		// buffer grows to megabytes, so even a 1 MiB reply may be written
		// out already; what this catches is a stop that aborts connections.)
		n, size := contentForSize(min(cfg.MaxMessageSize, 1<<20))
		content := pattern(n)
		c.Note("a %d-byte echo request; SIGTERM once its reply has started", size)
		Expect(c.Send(protocol.EchoRequest(content))).To(Conform())
		Expect(c.AwaitReplyStart(s.w.latency)).To(Conform())
		exited := stopInBackground(p, syscall.SIGTERM, s.w.grace)
		Expect(c.ExpectEcho(content)).To(Conform())
		// The reply came whole: a close that does not follow is EA-STOP-3's.
		s.failLast(c.ExpectClosed(harness.Window{Name: "grace period", D: s.w.grace}), []string{"EA-STOP-3"})
		<-exited
	})

	It("can be restarted on the same port at once", req(sShutdown, "EA-STOP-5"), Label(lifecycle), specTimeout(), func(ctx SpecContext) {
		s := begin(ctx)
		s.needServerCmd()
		p := s.mustStart()
		for i := range 4 { // connections the server closes on stop: its side waits in TIME_WAIT
			Expect(s.dialAddr(p.Addr).Echo(fmt.Sprintf("client %d before the restart", i))).To(Conform())
		}
		exit := p.Stop(s.w.grace)
		again, err := s.start(p.Port)
		if err != nil {
			s.fail(nil, nil, fmt.Sprintf("no restart on port %d after %v: %v", p.Port, exit, err), "a server listening on the same port at once")
		}
		Expect(s.dialAddr(again.Addr).Echo("after the restart")).To(Conform())
	})
})

// stopInBackground sends sig and waits for the exit (SIGKILL a while after
// grace), delivering the Exit on the channel.
func stopInBackground(p *harness.Process, sig syscall.Signal, grace time.Duration) <-chan harness.Exit {
	exited := make(chan harness.Exit, 1)
	go func() { exited <- p.StopWith(sig, grace+2*time.Second) }()
	return exited
}

// checkExit holds a stopped server to EA-STOP-4.
func checkExit(s *session, p *harness.Process, e harness.Exit) {
	if e.Code != 0 || e.Killed || e.After > s.w.grace {
		var details []string
		if hint := p.ShellHint(e); hint != "" {
			details = append(details, "hint: "+hint)
		}
		details = append(details, p.OutputSection())
		s.fail(nil, []string{"EA-STOP-4"}, e.String(), fmt.Sprintf("exit status 0 within %v of the signal", s.w.grace), details...)
	}
}
