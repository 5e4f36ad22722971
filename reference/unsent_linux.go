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
