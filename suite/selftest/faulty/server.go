package faulty

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"echoadd/protocol"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("faulty: server closed")

// Server is a correct Echo/Add server but for its Fault.
type Server struct {
	Fault          Fault
	Framing        protocol.Framing
	MaxMessageSize int           // 0 means protocol.DefaultMaxMessageSize
	ReadTimeout    time.Duration // a request left partly sent this long closes the connection; 0 means none
	IdleTimeout    time.Duration // a connection with no request in progress this long is closed; 0 means none
	MaxConns       int           // a connection beyond this many gets Error CODE_OVERLOADED and is closed; 0 means no limit
	// Exit ends the process, for the faults that do (exit-on-reset,
	// exit-on-malformed). Nil means those faults close the connection.
	Exit func(code int)

	mu       sync.Mutex         // guards the fields below
	l        net.Listener       // the listener Serve accepts on
	conns    map[*conn]struct{} // connections being served
	stopping bool               // Shutdown was called
	wg       sync.WaitGroup     // one per connection goroutine

	stop     chan struct{} // closed by Shutdown; guarded by mu until made
	stopped  atomic.Bool   // set by Shutdown, read by busy-idle's spinner
	spinning atomic.Bool   // busy-idle's spinner has started
}

func (s *Server) maxMessageSize() int {
	switch {
	case s.Fault == SmallBuffer:
		return 512
	case s.MaxMessageSize <= 0:
		return protocol.DefaultMaxMessageSize
	}
	return s.MaxMessageSize
}

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.l = l
	s.mu.Unlock()

	switch s.Fault {
	case Serial:
		return s.acceptLoop(l, false)
	case Pool4:
		errs := make(chan error, 4)
		for range 4 {
			go func() { errs <- s.acceptLoop(l, false) }()
		}
		err := <-errs
		for range 3 {
			<-errs
		}
		return err
	case RefuseAfterFirst:
		nc, err := l.Accept()
		if err != nil {
			return s.acceptErr(err)
		}
		l.Close()
		s.track(nc, true)
		<-s.stopChan() // keeps running, refusing everyone else
		return ErrServerClosed
	default:
		return s.acceptLoop(l, true)
	}
}

// acceptLoop accepts and serves connections, each on its own goroutine if
// concurrent, else in turn.
func (s *Server) acceptLoop(l net.Listener, concurrent bool) error {
	for {
		nc, err := l.Accept()
		if err != nil {
			if err := s.acceptErr(err); err != nil {
				return err
			}
			continue
		}
		c := s.track(nc, concurrent)
		if !concurrent && c != nil {
			c.serve()
		}
	}
}

// acceptErr returns nil for an error worth retrying after a pause.
func (s *Server) acceptErr(err error) error {
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		return ErrServerClosed
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		time.Sleep(10 * time.Millisecond)
		return nil
	}
	return err
}

// track registers a new connection and, if goroutine, starts serving it.
func (s *Server) track(nc net.Conn, goroutine bool) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		nc.Close()
		return nil
	}
	if s.overLimit() {
		s.refuse(nc)
		return nil
	}
	c := newConn(s, nc)
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	if goroutine {
		go c.serve()
	}
	return c
}

// overLimit reports whether one more connection would be over MaxConns
// (EA-LIM-5). The caller holds mu.
func (s *Server) overLimit() bool {
	if s.MaxConns <= 0 {
		return false
	}
	if s.Fault == ConnLimitOffByOne {
		return len(s.conns) > s.MaxConns
	}
	return len(s.conns) >= s.MaxConns
}

// refuse answers a connection beyond MaxConns with Error CODE_OVERLOADED
// and closes it (EA-LIM-5). One small write to a new connection does not
// block for long; the deadline bounds it anyway.
func (s *Server) refuse(nc net.Conn) {
	defer nc.Close()
	b, err := s.Framing.AppendMessage(nil, protocol.ErrorReply(protocol.Code_CODE_OVERLOADED, ""))
	if err != nil {
		return
	}
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	nc.Write(b)
}

func (s *Server) done(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
	if s.Fault == BusyIdle && s.spinning.CompareAndSwap(false, true) {
		go s.spin()
	}
}

// spin is busy-idle's leftover poller: it keeps a CPU busy until Shutdown.
func (s *Server) spin() {
	for i := 0; !s.stopped.Load(); i++ {
		if i%1024 == 0 {
			time.Sleep(0) // stay preemptible; still a busy loop
		}
	}
}

func (s *Server) stopChan() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop == nil {
		s.stop = make(chan struct{})
	}
	return s.stop
}

// leavePending stops accepting without closing the listener, and waits
// 1.5 s before the stop goes on: the kernel completes handshakes into the
// backlog meanwhile, then, with it full, leaves connections pending. The
// backlog becomes PendingBacklog only now (Linux takes a second listen(2)
// as a change of it), so that the server is otherwise served as well as
// any: with Go's, the system's maximum, pending connections would take
// thousands of connects to fill it.
func (s *Server) leavePending() {
	s.mu.Lock()
	l, _ := s.l.(*net.TCPListener)
	s.mu.Unlock()
	if l == nil {
		return
	}
	l.SetDeadline(time.Unix(1, 0)) // Accept fails at once; acceptErr retries it, to no avail
	if raw, err := l.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) { syscall.Listen(int(fd), PendingBacklog) })
	}
	time.Sleep(1500 * time.Millisecond)
}

// Shutdown stops accepting, lets every connection answer the requests it
// has received, closes them and returns when they are done or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.Fault == StopPending {
		s.leavePending()
	}
	s.stopped.Store(true)
	stop := s.stopChan()
	s.mu.Lock()
	if !s.stopping {
		close(stop)
	}
	s.stopping = true
	if s.l != nil {
		s.l.Close()
	}
	for c := range s.conns {
		switch s.Fault {
		case StopKeepConns:
			// forgets its connections
		case StopNoDrain:
			// main exits at once; this is for an in-process Shutdown
			c.nc.Close()
		default:
			c.drain()
		}
	}
	s.mu.Unlock()

	quiet := make(chan struct{})
	go func() { s.wg.Wait(); close(quiet) }()
	if s.Fault == StopKeepConns {
		<-quiet // waits for clients that have no reason to leave
		return nil
	}
	select {
	case <-quiet:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-quiet
		return ctx.Err()
	}
}
