//go:build !linux

package reference

import "net"

// unsent is the Linux one's fallback: it cannot tell, so the stop and the
// linger behave as if the kernel held nothing (see lingerClose).
func unsent(net.Conn) int { return 0 }

// leftAlready is the Linux one's fallback: it cannot tell, so a client refused
// at the limit gets its refusal even if it has left.
func leftAlready(net.Conn) bool { return false }
