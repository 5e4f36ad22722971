package harness

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// stampedConn reads with the kernel's receive timestamps (SO_TIMESTAMPNS):
// when the bytes reached the socket, not when the harness got to read
// them, which a loaded machine can delay by seconds. Latency is then
// measured as near the server as a client can (EA-CONN-6).
type stampedConn struct {
	raw syscall.RawConn
	oob []byte
}

// stampConn asks for nc's receive timestamps; nil if the kernel refuses.
func stampConn(nc *net.TCPConn) *stampedConn {
	raw, err := nc.SyscallConn()
	if err != nil {
		return nil
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) }); err != nil || serr != nil {
		return nil
	}
	return &stampedConn{raw: raw, oob: make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))))}
}

// read is net.Conn's Read (deadlines, io.EOF) through recvmsg, with when
// the last bytes read arrived; now if the kernel gave no time.
func (s *stampedConn) read(b []byte) (int, time.Time, error) {
	var n, oobn int
	var rerr error
	err := s.raw.Read(func(fd uintptr) bool {
		for {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), b, s.oob, 0)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	now := time.Now()
	switch {
	case err != nil:
		return 0, now, err // a deadline, or the connection closed
	case rerr != nil:
		return 0, now, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("recvmsg", rerr)}
	case n == 0:
		return 0, now, io.EOF
	}
	return n, arrivedAt(s.oob[:oobn], now), nil
}

// arrivedAt is the timestamp in oob, or now if there is none (or it is
// later than now: a clock step).
func arrivedAt(oob []byte, now time.Time) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return now
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			if at := time.Unix(ts.Unix()); at.Before(now) {
				return at
			}
		}
	}
	return now
}
