package reference

import (
	"net"
	"syscall"

	"echoadd/reference/internal/eventloop"
)

// unsent is how many bytes written to nc the kernel still holds, not yet
// taken by the client; 0 when it cannot tell (eventloop.Unsent).
func unsent(nc net.Conn) (n int) {
	onFD(nc, func(fd int) { n = eventloop.Unsent(fd) })
	return n
}

// leftAlready reports whether the client of nc, a new connection, has
// already closed or reset it (eventloop.LeftAlready).
func leftAlready(nc net.Conn) (gone bool) {
	onFD(nc, func(fd int) { gone = eventloop.LeftAlready(fd) })
	return gone
}

// onFD runs f on nc's descriptor, if nc has one.
func onFD(nc net.Conn, f func(fd int)) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	if rc, err := sc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { f(int(fd)) }) //nolint:errcheck // f not run: nothing known
	}
}
