//go:build linux

package eventloop

import (
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A loop blocks by parking its goroutine in Go's own network poller, not in
// epoll_wait: the loop's epoll descriptor is itself pollable (readable when
// it has events), so it is handed to the runtime as an os.File, and the
// goroutine waits for it the way a goroutine waits for a socket. Blocking in
// a system call instead would keep an OS thread and its P in a syscall
// state: the runtime's sysmon then never sleeps deeply and keeps retaking
// those Ps every 20 µs to 10 ms, which costs CPU on an idle server
// (EA-CONC-4) and latency on a busy one. With the poller, an idle engine
// leaves every P idle.
//
// The loop waits with rc.Read (see loop.run) and then calls epoll_wait only
// with a zero timeout, and read/write only on non-blocking sockets, so they
// use raw system calls: none can block. wait is for an epoll descriptor
// the runtime could not register: it blocks in epoll_wait.
type poller struct {
	epfd     int
	file     *os.File        // owns epfd; nil if it could not be made
	rc       syscall.RawConn // file's, registered with Go's poller; nil: block in epoll_wait instead
	waitOn   *os.File        // the file the loop waits on: file, or loop.waitAlone's
	deadline bool            // a read deadline is set on waitOn
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	p := &poller{epfd: epfd}
	if unix.SetNonblock(epfd, true) != nil {
		return p, nil // blocking epoll_wait then
	}
	p.file = os.NewFile(uintptr(epfd), "epoll")
	rc, err := p.file.SyscallConn()
	// A file the runtime could not register has no deadlines: block in
	// epoll_wait then.
	if err == nil && p.file.SetReadDeadline(time.Time{}) == nil {
		p.rc, p.waitOn = rc, p.file
	}
	return p, nil
}

func (p *poller) close() {
	if p.file != nil {
		p.file.Close()
	} else {
		unix.Close(p.epfd)
	}
}

// wait returns the ready events, blocking in epoll_wait until some arrive
// or until timeout passes (timeout < 0: no limit; 0: do not wait).
func (p *poller) wait(events []unix.EpollEvent, timeout time.Duration) (int, error) {
	if timeout == 0 {
		return epollWaitNow(p.epfd, events)
	}
	msec := -1
	if timeout > 0 {
		msec = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	n, err := unix.EpollWait(p.epfd, events, msec)
	if err == unix.EINTR {
		return 0, nil
	}
	return n, err
}

// setDeadline bounds the current or next RawConn.Read on waitOn: it
// returns os.ErrDeadlineExceeded at t (zero: no limit). It may be called
// from inside the Read's function.
func (p *poller) setDeadline(t time.Time) {
	p.waitOn.SetReadDeadline(t)
	p.deadline = !t.IsZero()
}

// dupFile returns a duplicate of the socket fd registered with Go's poller,
// and its RawConn, for waiting on fd alone (see loop.waitAlone); nil if
// either cannot be had.
func dupFile(fd int) (*os.File, syscall.RawConn) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil
	}
	f := os.NewFile(uintptr(nfd), "connection")
	rc, err := f.SyscallConn()
	if err != nil || f.SetReadDeadline(time.Time{}) != nil { // not registered
		f.Close()
		return nil, nil
	}
	return f, rc
}

// epollWaitNow is epoll_wait without waiting, a raw system call.
func epollWaitNow(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	switch e {
	case 0:
		return int(r), nil
	case unix.EINTR:
		return 0, nil
	default:
		return 0, os.NewSyscallError("epoll_wait", e)
	}
}

// wakeRuntime makes the cheapest system call, getpid, through the
// runtime's system-call entry (entersyscall), which wakes sysmon from its
// deep sleep (see loop.step).
func wakeRuntime() {
	syscall.Syscall(syscall.SYS_GETPID, 0, 0, 0)
}

// read and write on a non-blocking socket: -1 and the errno on failure.
func read(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func writeRaw(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}
