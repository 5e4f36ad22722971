//go:build linux

package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The epoll driver serves every connection from one goroutine: one
// epoll_wait for all the replies that are ready, then a read and a write per
// connection, with raw non-blocking system calls. A goroutine per connection
// costs the load generator two to three times as much CPU per request, and on
// a machine it shares with the server that CPU is taken from the server: the
// figures then say more about the client than about the server.

const epollSupported = true

// epollDriver owns the descriptors of the workers it drives.
type epollDriver struct {
	epfd    int
	workers []*worker
	events  []unix.EpollEvent
}

// epollConn is a worker's state under the epoll driver.
type epollConn struct {
	fd      int    // -1: closed after a failure
	pending []byte // the rest of a batch the socket did not take yet
	t0      time.Time
	moved   time.Time // the batch's last progress: a request written or a reply received
	got     int       // replies of the batch received
	sent    int       // requests sent in this phase
	busy    bool      // a batch is in flight
	events  uint32    // registered: EPOLLIN; with EPOLLOUT while the socket refuses part of a batch; none between phases after stray input
}

var errWouldBlock = errors.New("would block")

// fdReader reads a non-blocking descriptor; errWouldBlock when it is empty.
type fdReader struct{ fd *int }

func (r fdReader) Read(p []byte) (int, error) {
	for {
		n, err := rawIO(unix.SYS_READ, *r.fd, p)
		switch {
		case err == nil && n == 0 && len(p) > 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, errWouldBlock
		default:
			return 0, os.NewSyscallError("read", err)
		}
	}
}

func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// newEpollDriver takes over the workers' connections: each descriptor is
// duplicated, made non-blocking and added to a new epoll instance, and the
// net.Conn is closed, so that Go's own poller no longer watches it.
func newEpollDriver(workers []*worker) (*epollDriver, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	d := &epollDriver{epfd: epfd, workers: workers, events: make([]unix.EpollEvent, 256)}
	for _, w := range workers {
		w.ep.fd = -1
		if w.conn == nil {
			continue
		}
		fd, err := takeFD(w.conn)
		w.conn = nil
		if err != nil {
			d.close()
			return nil, fmt.Errorf("connection %d: %w", w.id, err)
		}
		w.ep.fd = fd
		w.ep.events = unix.EPOLLIN
		w.rr.r = fdReader{&w.ep.fd}
		ev := unix.EpollEvent{Events: w.ep.events, Fd: int32(fd), Pad: int32(w.id)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			d.close()
			return nil, os.NewSyscallError("epoll_ctl", err)
		}
	}
	return d, nil
}

// takeFD duplicates c's descriptor, non-blocking, and closes c.
func takeFD(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := rc.Control(func(s uintptr) {
		fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	})
	c.Close()
	if cerr != nil {
		return -1, cerr
	}
	if err != nil {
		return -1, os.NewSyscallError("fcntl", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}

func (d *epollDriver) close() {
	for _, w := range d.workers {
		if w.ep.fd >= 0 {
			unix.Close(w.ep.fd)
			w.ep.fd = -1
		}
	}
	unix.Close(d.epfd)
}

// timeoutScan is how often connections are checked for a late reply.
const timeoutScan = 50 * time.Millisecond

// run is one phase: every connection sends batches until stop, the
// deadline, or limit requests (0: none); a batch in flight is finished, or
// fails after load.Timeout. Only a measured phase records figures.
func (d *epollDriver) run(load *Load, stop *atomic.Bool, deadline time.Time, limit int, measured bool) {
	busy := 0
	for _, w := range d.workers {
		w.ep.sent = 0
		if w.ep.fd >= 0 && d.next(w, stop, deadline, limit) {
			busy++
		}
	}
	lastScan := time.Now()
	for busy > 0 {
		wait := timeoutScan
		if left := time.Until(deadline); left > 0 && left < wait {
			wait = left + time.Millisecond
		}
		n, err := unix.EpollWait(d.epfd, d.events, int(wait/time.Millisecond))
		if err != nil && err != unix.EINTR {
			for _, w := range d.workers {
				if w.ep.busy {
					d.fail(w, "connection %d: epoll_wait: %v", w.id, err)
				}
			}
			return
		}
		for i := range max(n, 0) {
			ev := d.events[i]
			w := d.workers[ev.Pad]
			if !w.ep.busy {
				// Input no batch asked for, or a hang-up, after this
				// connection's last batch of the phase: stop watching it
				// (level-triggered, it would be reported again and again);
				// its next batch reads it as a reply.
				d.watch(w, 0)
				continue
			}
			if w.ep.pending != nil && !d.flush(w) {
				busy--
				continue
			}
			if !d.receive(w, measured) {
				busy--
				continue
			}
			if w.ep.got < w.batch || w.ep.pending != nil {
				continue
			}
			if w.refused || w.surplus(measured) {
				d.drop(w)
				busy--
				continue
			}
			if !d.next(w, stop, deadline, limit) {
				busy--
			}
		}
		if now := time.Now(); now.Sub(lastScan) >= timeoutScan {
			lastScan = now
			for _, w := range d.workers {
				if w.ep.busy && now.Sub(w.ep.moved) > load.Timeout {
					w.failed(os.ErrDeadlineExceeded)
					d.fail(w, "connection %d: reading the reply to request %d: timeout, no reply within %v", w.id, w.seq-uint64(w.batch-w.ep.got), load.Timeout)
					busy--
				}
			}
		}
	}
}

// next sends w's next batch, if the phase goes on; it reports whether w
// has a batch in flight.
func (d *epollDriver) next(w *worker, stop *atomic.Bool, deadline time.Time, limit int) bool {
	w.ep.busy = false
	if stop.Load() || !time.Now().Before(deadline) || (limit > 0 && w.ep.sent >= limit) {
		return false
	}
	if !d.watch(w, w.ep.events|unix.EPOLLIN) {
		return false
	}
	w.ep.sent += w.fill(limit, w.ep.sent)
	w.ep.got = 0
	w.ep.busy = true
	w.ep.t0 = time.Now()
	w.ep.moved = w.ep.t0
	w.ep.pending = w.wbuf
	return d.flush(w)
}

// flush writes what is left of w's batch; it reports false after a failure.
func (d *epollDriver) flush(w *worker) bool {
	for len(w.ep.pending) > 0 {
		k, err := rawIO(unix.SYS_WRITE, w.ep.fd, w.ep.pending)
		switch err {
		case nil:
			w.ep.pending = w.ep.pending[k:]
			if w.batch > 1 {
				w.ep.moved = time.Now() // as in receive: a long batch going out is no silence
			}
			continue
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return d.watch(w, unix.EPOLLIN|unix.EPOLLOUT)
		}
		w.writeFailed(w.batch, err)
		d.drop(w)
		return false
	}
	w.ep.pending = nil
	return d.watch(w, unix.EPOLLIN)
}

// watch registers events for w if they differ from what is registered;
// it reports false after a failure.
func (d *epollDriver) watch(w *worker, events uint32) bool {
	if events == w.ep.events {
		return true
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(w.ep.fd), Pad: int32(w.id)}
	if err := unix.EpollCtl(d.epfd, unix.EPOLL_CTL_MOD, w.ep.fd, &ev); err != nil {
		d.fail(w, "connection %d: epoll_ctl: %v", w.id, err)
		return false
	}
	w.ep.events = events
	return true
}

// receive checks the replies that have arrived; it reports false after a
// failure.
func (d *epollDriver) receive(w *worker, measured bool) bool {
	for w.ep.got < w.batch {
		body, err := w.rr.Next()
		if err == errWouldBlock {
			return true
		}
		if err != nil {
			w.readFailed(w.batch-w.ep.got, err)
			d.drop(w)
			return false
		}
		w.check(w.ep.got, body, w.ep.t0, measured)
		w.ep.got++
		if w.batch > 1 {
			w.ep.moved = time.Now() // a long pipelined batch is no silence
		}
	}
	return true
}

func (d *epollDriver) fail(w *worker, format string, args ...any) {
	w.errs.add(false, format, args...)
	d.drop(w)
}

// drop closes a failed connection; later phases skip it.
func (d *epollDriver) drop(w *worker) {
	unix.Close(w.ep.fd)
	w.ep.fd = -1
	w.ep.busy = false
	w.ep.events = 0
	w.ep.pending = nil
}
