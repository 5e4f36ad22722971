//go:build !linux

package reference

import "net"

// unsent is the Linux one's fallback: it cannot tell, so the stop and the
// linger behave as if the kernel held nothing (see lingerClose).
func unsent(net.Conn) int { return 0 }
