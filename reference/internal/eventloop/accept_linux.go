package eventloop

// The accepting side of the engine: Serve's loop, which hands each new
// socket to a loop.

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Serve accepts connections on ln and serves them on the loops until ln
// fails or the engine stops; then it returns ErrClosed, or the accept error.
// Called after Shutdown or Close, it closes ln and returns ErrClosed (as
// Shutdown closes the listeners it knows of), so that no client waits in a
// backlog nobody takes.
// Each connection's descriptor is duplicated and the net.Conn closed;
// connections that are not sockets (a wrapped net.Conn) go to
// Config.Fallback. After each Accept of a *net.TCPListener or
// *net.UnixListener, the connections already waiting are taken with
// accept4(2) directly, without making a net.Conn for each.
func (e *Engine) Serve(ln net.Listener) error {
	e.mu.Lock()
	if e.state != running {
		e.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	e.listeners[ln] = struct{}{}
	e.serving.Add(1)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.listeners, ln)
		e.mu.Unlock()
		e.serving.Done()
	}()

	err := e.accept(ln)
	select {
	case <-e.quit:
		return ErrClosed
	default:
		return err
	}
}

// rawListener returns the listener's descriptor access, for accept4. (Go's
// listeners support Control only: Read returns EINVAL, so Accept is what
// waits for readiness.)
func rawListener(ln net.Listener) syscall.RawConn {
	var rc syscall.RawConn
	var err error
	switch l := ln.(type) {
	case *net.TCPListener:
		rc, err = l.SyscallConn()
	case *net.UnixListener:
		rc, err = l.SyscallConn()
	default:
		return nil
	}
	if err != nil {
		return nil
	}
	return rc
}

func (e *Engine) accept(ln net.Listener) error {
	rc := rawListener(ln)
	var backoff time.Duration
	outage := AcceptOutage{Log: e.log}
	for {
		c, err := ln.Accept()
		if err != nil {
			if TemporaryAcceptError(err) {
				if backoff = e.pause(backoff, err, &outage); e.stopped() {
					return ErrClosed
				}
				continue
			}
			return err
		}
		backoff = 0
		outage.Accepted()
		peer := c.RemoteAddr()
		fd, err := takeFD(c)
		if err != nil {
			if e.cfg.Fallback != nil {
				e.cfg.Fallback(c)
			} else {
				e.log.Debug("connection not adoptable, closed", "remote", c.RemoteAddr(), "err", err)
				c.Close()
			}
			continue
		}
		e.adopt(fd, peer)
		if rc != nil {
			// The rest of the backlog, if any; an error is left for Accept
			// to report.
			_ = rc.Control(func(lfd uintptr) {
				for range 256 {
					nfd, sa, err := unix.Accept4(int(lfd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
					if err != nil {
						return
					}
					e.adopt(nfd, netAddr(sa))
				}
			})
		}
	}
}

// takeFD duplicates c's descriptor, non-blocking, and closes c.
func takeFD(c net.Conn) (int, error) {
	var rc syscall.RawConn
	var err error
	switch s := c.(type) {
	case *net.TCPConn:
		rc, err = s.SyscallConn()
	case *net.UnixConn:
		rc, err = s.SyscallConn()
	default:
		return -1, errors.New("eventloop: not a *net.TCPConn or *net.UnixConn")
	}
	if err != nil {
		return -1, err
	}
	nfd := -1
	var dupErr error
	if err := rc.Control(func(fd uintptr) {
		nfd, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("fcntl", dupErr)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	c.Close()
	return nfd, nil
}

// pause waits before the next accept after a temporary error, doubling from
// 5 ms to 1 s, or until the engine stops.
func (e *Engine) pause(d time.Duration, err error, outage *AcceptOutage) time.Duration {
	d = min(max(2*d, 5*time.Millisecond), time.Second)
	outage.Failed(err, d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-e.quit:
	}
	return d
}

// stopped reports whether Shutdown or Close has begun.
func (e *Engine) stopped() bool {
	select {
	case <-e.quit:
		return true
	default:
		return false
	}
}

// adopt hands fd, a new non-blocking socket, to the least loaded loop; peer
// is its client's address (kept for RemoteAddr: once the client has reset,
// getpeername fails).
func (e *Engine) adopt(fd int, peer net.Addr) {
	// Go sets TCP_NODELAY on the connections it accepts; so do we. On a
	// Unix socket it fails, harmlessly.
	// It succeeding is also how a TCP connection is told from others.
	c := &Conn{fd: fd, peer: peer}
	c.tcp = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) == nil
	if limit := int64(e.cfg.MaxConns); limit > 0 && e.conns.Add(1) > limit {
		e.conns.Add(-1)
		if LeftAlready(fd) {
			// A client that connected and left at once (a port scan, a TCP
			// health check, a storm of them): nobody to refuse, and no
			// refusal to log.
			unix.Close(fd)
			return
		}
		if e.cfg.Refused != nil {
			e.cfg.Refused(c)
		}
		c.state = stateClosing
		c.out = e.cfg.Overloaded[:len(e.cfg.Overloaded):len(e.cfg.Overloaded)]
	} else {
		if limit == 0 {
			e.conns.Add(1)
		}
		c.counted = true
	}
	best := e.loops[0]
	for _, l := range e.loops[1:] {
		if l.load.Load() < best.load.Load() {
			best = l
		}
	}
	if !best.enqueue(c) {
		unix.Close(fd)
		if c.counted {
			e.conns.Add(-1)
		}
	}
}
