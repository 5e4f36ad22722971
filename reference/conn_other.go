//go:build !unix

package reference

import "net"

// readNoWait is the unix one's fallback: it never reads, so a request still
// in the host's buffers at Shutdown is not answered.
func readNoWait(nc net.Conn, p []byte) (int, error) { return 0, nil }
