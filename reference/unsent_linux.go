package reference

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// unsent is how many bytes written to nc the kernel still holds, not yet
// taken by the client (SIOCOUTQ); 0 when it cannot tell.
func unsent(nc net.Conn) int {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }) //nolint:errcheck // 0 then
	return n
}

// leftAlready reports whether the client of nc, a new connection, has already
// closed or reset it: a peek finds the end of the stream, or the reset.
func leftAlready(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	rc.Control(func(fd uintptr) { //nolint:errcheck // false then
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		gone = (err == nil && n == 0) || err == unix.ECONNRESET
	})
	return gone
}
