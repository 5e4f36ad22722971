package faulty

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"echoadd/protocol"
)

const (
	// largeReply is where truncate-large cuts a reply.
	largeReply = 512
	// slowDelay is how late slow's replies to requests over slowSize are
	// (EA-CONN-6 allows 1 s). Only large requests, so that a run stays short.
	slowDelay = 1500 * time.Millisecond
	slowSize  = 4 << 10
	// split-write cuts replies over splitSize in two, splitPause apart.
	splitSize  = 1000
	splitPause = 100 * time.Millisecond
	// stop-no-drain writes large replies in pieces of streamPiece bytes,
	// streamPause apart, so that a stop can come in the middle of one.
	streamPiece = 16 << 10
	streamPause = 2 * time.Millisecond
	// keepAliveDelay is how long after a batch of replies keep-alive writes
	// its unknown field: later than a reply's quiet window of 50 ms.
	keepAliveDelay = 300 * time.Millisecond
	// mergeQuiet is the gap that ends a message for merge.
	mergeQuiet = 10 * time.Millisecond
	// lingerTimeout bounds how long a connection closed after an Error
	// reply reads and drops what the client still sends.
	lingerTimeout = time.Second
)

var errClose = errors.New("faulty: close the connection")

// conn is one client connection, served by one goroutine.
type conn struct {
	srv *Server
	nc  net.Conn

	// Owned by the serving goroutine.
	in          []byte    // received, not yet consumed
	requestFrom time.Time // when the partly received request in `in` was first seen
	readAt      time.Time // when the last read returned
	pending     [][]byte  // encoded replies not yet written
	delay       bool      // slow: a request in this batch was large
	replies     int       // replies written
	lastLook    bool      // the one read allowed after draining began was made

	mu       sync.Mutex // guards draining
	draining bool
}

func newConn(s *Server, nc net.Conn) *conn { return &conn{srv: s, nc: nc} }

// drain makes the connection answer what it has received and close.
func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	c.nc.SetReadDeadline(time.Unix(1, 0))
}

func (c *conn) isDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

func (c *conn) serve() {
	defer c.srv.done(c)
	defer c.nc.Close()
	buf := make([]byte, 64<<10)
	if c.srv.Fault == Greeting {
		c.nc.Write([]byte{0x78, 0x00}) //nolint:errcheck // the client may be gone
	}
	for {
		if err := c.serveBuffered(); err != nil {
			c.flush()
			if errors.Is(err, errLinger) && c.srv.Fault == StayOpen {
				io.Copy(io.Discard, c.nc) //nolint:errcheck // until the client closes: no request is read any more
			} else if errors.Is(err, errLinger) {
				c.lingerClose()
			}
			return
		}
		if err := c.flush(); err != nil {
			return
		}
		if c.srv.Fault == CloseAfterOne && c.replies > 0 {
			return
		}
		n, err := c.read(buf)
		if n > 0 {
			c.readAt = time.Now()
			if c.srv.Fault == Merge {
				n += c.readUntilQuiet(buf[n:])
				if err := c.mergeRead(buf[:n]); err != nil {
					c.flush()
					return
				}
				continue
			}
			c.in = append(c.in, buf[:n]...)
		}
		if err != nil {
			c.readFailed(err)
			return
		}
	}
}

var errLinger = errors.New("faulty: error reply sent, linger and close")

// serveBuffered answers every whole request in c.in.
func (c *conn) serveBuffered() error {
	for len(c.in) > 0 {
		msg, n, err := c.split(c.in)
		if errors.Is(err, protocol.ErrIncomplete) {
			c.in = c.in[n:]
			return nil
		}
		if err != nil {
			c.queue(protocol.ErrorReplyFor(err))
			return errLinger
		}
		c.requestFrom = time.Time{}
		if len(msg) > slowSize {
			c.delay = true
		}
		if err := c.handle(msg); err != nil {
			c.in = c.in[:0]
			return err
		}
		c.in = c.in[n:]
	}
	c.in = c.in[:0:cap(c.in)]
	return nil
}

// split delimits the next request.
func (c *conn) split(buf []byte) ([]byte, int, error) {
	max := c.srv.maxMessageSize()
	if c.srv.Fault == Len32Low16 && c.srv.Framing == protocol.Len32 {
		if len(buf) < 4 {
			return nil, 0, protocol.ErrIncomplete
		}
		size := int(binary.BigEndian.Uint16(buf[2:])) // the high 16 bits are "always zero"
		if size > max {
			return nil, 0, &protocol.TooLargeError{Size: uint64(size), Max: max}
		}
		if len(buf) < 4+size {
			return nil, 0, protocol.ErrIncomplete
		}
		return buf[4 : 4+size], 4 + size, nil
	}
	if c.srv.Fault == Len32LE && c.srv.Framing == protocol.Len32 {
		if len(buf) < 4 {
			return nil, 0, protocol.ErrIncomplete
		}
		size := int(binary.LittleEndian.Uint32(buf)) // 00 00 00 0d reads as 218 MB
		if len(buf) < 4+size {
			return nil, 0, protocol.ErrIncomplete
		}
		return buf[4 : 4+size], 4 + size, nil
	}
	return c.srv.Framing.Split(buf, max)
}

// mergeRead is merge's reading: whatever one read returns is one message.
// In raw framing the whole read is decoded as one request (protobuf merges
// the fields); in framed modes the first whole frame is served and the
// other whole frames of the read are dropped, a partial one kept.
func (c *conn) mergeRead(chunk []byte) error {
	if c.srv.Framing == protocol.Raw {
		return c.handle(slices.Clone(chunk))
	}
	c.in = append(c.in, chunk...)
	for first := true; len(c.in) > 0; first = false {
		msg, n, err := c.split(c.in)
		if errors.Is(err, protocol.ErrIncomplete) {
			return nil
		}
		if err != nil {
			c.queue(protocol.ErrorReplyFor(err))
			return errClose
		}
		if first {
			if err := c.handle(msg); err != nil {
				return err
			}
		}
		c.in = c.in[n:]
	}
	return nil
}

// readUntilQuiet is merge's idea of a message boundary: it keeps reading
// into p until nothing arrives for mergeQuiet, and returns how many bytes
// it read.
func (c *conn) readUntilQuiet(p []byte) int {
	total := 0
	for total < len(p) {
		c.mu.Lock()
		draining := c.draining
		if !draining {
			c.nc.SetReadDeadline(time.Now().Add(mergeQuiet))
		}
		c.mu.Unlock()
		if draining {
			return total
		}
		n, err := c.nc.Read(p[total:])
		total += n
		if err != nil {
			return total // quiet, or an error the next read sees again
		}
	}
	return total
}

// read reads from the client with the deadline the protocol allows: the
// read timeout while a request is partly received, the idle timeout
// between requests.
func (c *conn) read(p []byte) (int, error) {
	c.mu.Lock()
	draining := c.draining
	if !draining {
		var deadline time.Time
		switch {
		case len(c.in) > 0 && c.srv.ReadTimeout > 0 && c.srv.Fault != Len32LE: // len32-le waits for ever
			if c.requestFrom.IsZero() {
				c.requestFrom = time.Now()
			}
			deadline = c.requestFrom.Add(c.srv.ReadTimeout)
		case len(c.in) == 0 && c.srv.IdleTimeout > 0 && !(c.srv.Fault == NoIdleTimeout && c.replies > 0):
			deadline = time.Now().Add(c.srv.IdleTimeout) // EA-LIM-4: readFailed closes, silently
		}
		c.nc.SetReadDeadline(deadline)
	}
	c.mu.Unlock()
	if draining {
		return c.lastRead(p)
	}
	n, err := c.nc.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.isDraining() {
		return c.lastRead(p)
	}
	return n, err
}

// lastRead takes, without waiting, what the client sent before the stop
// (EA-STOP-2); a second call ends the reading.
func (c *conn) lastRead(p []byte) (int, error) {
	if c.lastLook {
		return 0, io.EOF
	}
	c.lastLook = true
	n, err := readNoWait(c.nc, p)
	if n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// readFailed ends the connection after a read error.
func (c *conn) readFailed(err error) {
	switch {
	case errors.Is(err, syscall.ECONNRESET) && c.srv.Fault == ExitOnReset:
		c.exit(1)
	case errors.Is(err, os.ErrDeadlineExceeded) && len(c.in) > 0:
		c.queue(protocol.ErrorReply(protocol.Code_CODE_TIMEOUT, "")) // EA-LIM-3
		c.flush()
		c.lingerClose()
	default:
		c.flush() // EOF: the replies due go out (EA-CONN-5)
	}
}

func (c *conn) exit(code int) {
	if c.srv.Exit != nil {
		c.srv.Exit(code)
	}
	c.nc.Close()
}

// handle answers one delimited request.
func (c *conn) handle(msg []byte) error {
	if c.srv.Fault == Reflect {
		c.pending = append(c.pending, c.frame(slices.Clone(msg)))
		return nil
	}
	req, err := protocol.DecodeRequest(msg)
	if err != nil {
		switch c.srv.Fault {
		case GarbageSuccess:
			c.queue(protocol.EchoReply(""))
		case ExitOnMalformed:
			c.exit(1)
			return errClose
		default:
			c.queue(protocol.ErrorReplyFor(err)) // EA-MAL-2, EA-MAL-3
		}
		return nil
	}
	switch m := req.GetMessage().(type) {
	case *protocol.ClientMessage_EchoMessage:
		content := m.EchoMessage.GetContent()
		if c.srv.Fault == NulTruncate {
			if i := indexNUL(content); i >= 0 {
				content = content[:i]
			}
		}
		c.queue(protocol.EchoReply(content))
	case *protocol.ClientMessage_AddRequest:
		a, b := m.AddRequest.GetA(), m.AddRequest.GetB()
		switch c.srv.Fault {
		case AddReturnsA:
			c.queue(protocol.AddReply(a))
		case WrongField:
			c.queue(protocol.EchoReply(strconv.Itoa(int(a + b))))
		case OmittedIsError:
			if !bothOperands(msg) {
				c.queue(protocol.ErrorReply(protocol.Code_CODE_MALFORMED, "add needs a and b"))
				return nil
			}
			c.queue(protocol.AddReply(a + b))
		case OverflowCrash:
			if sum := int64(a) + int64(b); sum != int64(int32(sum)) {
				return errClose
			}
			c.queue(protocol.AddReply(a + b))
		default:
			c.queue(protocol.AddReply(a + b))
		}
	}
	return nil
}

func indexNUL(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return i
		}
	}
	return -1
}

// bothOperands reports whether the add request in msg has fields a and b on
// the wire.
func bothOperands(msg []byte) bool {
	var body []byte
	for b := msg; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return false
		}
		if num == 2 && typ == protowire.BytesType {
			body, _ = protowire.ConsumeBytes(b[n:])
		}
		b = b[n+m:]
	}
	hasA, hasB := false, false
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return false
		}
		m := protowire.ConsumeFieldValue(num, typ, body[n:])
		if m < 0 {
			return false
		}
		hasA, hasB = hasA || num == 1, hasB || num == 2
		body = body[n+m:]
	}
	return hasA && hasB
}

// queue encodes a reply to be written before the next read.
func (c *conn) queue(reply *protocol.ServerMessage) {
	if c.srv.Fault == NoDetail && reply.GetError() != nil {
		reply.GetError().Detail = ""
	}
	body, err := proto.Marshal(reply)
	if err != nil {
		return
	}
	if c.srv.Fault == TwoMembers && reply.GetAddResponse() != nil {
		body = append([]byte{0x0a, 0x00}, body...)
	}
	c.pending = append(c.pending, c.frame(body))
}

// frame puts a reply's encoding into its framing, with the framing faults.
func (c *conn) frame(body []byte) []byte {
	f, size := c.srv.Framing, len(body)
	var b []byte
	switch {
	case c.srv.Fault == VarintOneByte && f == protocol.Varint:
		b = append(b, byte(size))
	case c.srv.Fault == Len32Low16 && f == protocol.Len32:
		b = append(b, 0, 0, byte(size>>8), byte(size))
	case c.srv.Fault == RawLenPrefix && f == protocol.Raw:
		b = binary.BigEndian.AppendUint32(b, uint32(size))
	default:
		b = f.AppendFrame(b, body)
		body = nil
	}
	b = append(b, body...)
	if c.srv.Fault == ExtraBytes {
		if f == protocol.Raw {
			b = append(b, '\r', '\n')
		} else {
			b = f.AppendFrame(b, nil) // an empty frame
		}
	}
	if c.srv.Fault == TruncateLarge && len(b) > largeReply {
		b = b[:largeReply]
	}
	return b
}

// flush writes the pending replies, each with one Write, except for the
// writing faults.
func (c *conn) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	if c.srv.Fault == Reorder {
		c.reverseEchoes()
	}
	if c.srv.Fault == Slow && c.delay {
		time.Sleep(time.Until(c.readAt.Add(slowDelay)))
	}
	c.delay = false
	defer func() { c.pending = c.pending[:0] }()
	for _, b := range c.pending {
		if c.srv.Fault == SplitWrite && len(b) > splitSize {
			if _, err := c.nc.Write(b[:len(b)/2]); err != nil {
				return err
			}
			time.Sleep(splitPause)
			b = b[len(b)/2:]
		}
		for c.srv.Fault == StopNoDrain && len(b) > streamPiece {
			if _, err := c.nc.Write(b[:streamPiece]); err != nil {
				return err
			}
			time.Sleep(streamPause)
			b = b[streamPiece:]
		}
		if _, err := c.nc.Write(b); err != nil {
			return err
		}
		c.replies++
		if c.srv.Fault == CloseAfterOne {
			return errClose
		}
	}
	if c.srv.Fault == KeepAlive {
		time.AfterFunc(keepAliveDelay, func() { c.nc.Write([]byte{0x78, 0x00}) }) //nolint:errcheck // the client may be gone
	}
	return nil
}

// reverseEchoes is reorder's fault: the echo replies among the pending
// ones swap places last-first; other replies stay where they are.
func (c *conn) reverseEchoes() {
	var at []int
	for i, b := range c.pending {
		if c.isEcho(b) {
			at = append(at, i)
		}
	}
	for i, j := 0, len(at)-1; i < j; i, j = i+1, j-1 {
		c.pending[at[i]], c.pending[at[j]] = c.pending[at[j]], c.pending[at[i]]
	}
}

// isEcho reports whether an encoded reply frame is an echo reply.
func (c *conn) isEcho(frame []byte) bool {
	msg, n, err := c.srv.Framing.Split(frame, len(frame))
	if err != nil || n != len(frame) {
		return false
	}
	var reply protocol.ServerMessage
	return proto.Unmarshal(msg, &reply) == nil && reply.GetEchoMessage() != nil
}

// lingerClose closes after an Error reply while the client may still be
// sending: FIN first, then drop what comes for a while, so that the kernel
// does not reset the connection before the client has read the reply.
func (c *conn) lingerClose() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil || c.isDraining() {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.CopyN(io.Discard, c.nc, 4<<20)
}

// readNoWait reads what nc has already received without waiting.
func readNoWait(nc net.Conn, p []byte) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	if err := nc.SetReadDeadline(time.Time{}); err != nil {
		return 0, err
	}
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true
	}); err != nil {
		return 0, err
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EINTR):
		return 0, nil
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
