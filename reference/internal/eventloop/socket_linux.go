package eventloop

import "golang.org/x/sys/unix"

// What the kernel knows of a connection that the server's own buffers do
// not say; both engines ask (the goroutine engine through the descriptor of
// its net.Conn).

// Unsent is how many bytes written to fd the kernel still holds, not yet
// taken by the client (SIOCOUTQ); 0 when it cannot tell.
func Unsent(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	if err != nil {
		return 0
	}
	return n
}

// LeftAlready reports whether the client of fd, a new connection, has
// already closed or reset it: a peek finds the end of the stream, or the
// reset.
func LeftAlready(fd int) bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return (err == nil && n == 0) || err == unix.ECONNRESET
}
