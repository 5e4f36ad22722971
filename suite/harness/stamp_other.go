//go:build !linux

package harness

import (
	"net"
	"time"
)

// stampedConn reads with the kernel's receive timestamps; Linux only.
type stampedConn struct{}

// stampConn returns nil: replies are timed when read.
func stampConn(*net.TCPConn) *stampedConn { return nil }

func (*stampedConn) read([]byte) (int, time.Time, error) {
	panic("harness: no receive timestamps here")
}
