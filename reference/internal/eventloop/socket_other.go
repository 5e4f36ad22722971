//go:build !linux

package eventloop

// Unsent is the Linux one's fallback: it cannot tell, so a stop and a
// linger behave as if the kernel held nothing.
func Unsent(fd int) int { return 0 }

// LeftAlready is the Linux one's fallback: it cannot tell, so a client
// refused at the limit gets its refusal even if it has left.
func LeftAlready(fd int) bool { return false }
