//go:build unix

package reference

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// readNoWait reads what nc has already received, without waiting for more:
// (0, nil) when nothing is there. The caller must own nc's read deadline.
func readNoWait(nc net.Conn, p []byte) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	// A past deadline fails a read before it is tried; clear it. The file
	// descriptor is non-blocking and the function returns true, so the read
	// is tried once and never waits.
	if err := nc.SetReadDeadline(time.Time{}); err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EINTR):
		return 0, nil
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	default:
		return n, nil
	}
}
