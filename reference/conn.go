package reference

import (
	"cmp"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"echoadd/protocol"
	"echoadd/reference/internal/eventloop"
)

// This file is the goroutine-per-connection engine: one goroutine reads a
// connection through a protocol.Decoder, answers every whole request in the
// buffer, and writes the replies when it must read again.

const (
	// flushThreshold makes a batch of replies go out before it grows past
	// this, even if more requests are buffered.
	flushThreshold = 64 << 10

	// lingerTimeout bounds how long a connection the server closes is read
	// and dropped first (see lingerClose). Time alone, as on the epoll
	// engine: a cap on bytes would close, and so reset, under a client that
	// sends faster.
	lingerTimeout = time.Second

	// drainReads bounds the reads that take, without waiting, what a
	// client sent before Shutdown (lastRead).
	drainReads = 64
)

// aLongTimeAgo is a read deadline in the past: it wakes a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// errDraining ends a connection's reading when the server shuts down.
var errDraining = errors.New("reference: server shutting down")

// conn is one client connection.
type conn struct {
	srv *Server  // immutable
	nc  net.Conn // immutable; Close and SetReadDeadline may come from Shutdown and Close
	log *slog.Logger

	// rejected is set before the goroutine starts and read-only after: the
	// connection is over MaxConns and only gets Error CODE_OVERLOADED.
	rejected bool

	// Owned by the connection's goroutine.
	dec         *protocol.Decoder
	out         []byte    // encoded replies not yet written
	writeErr    error     // the first write error; no write is tried after it
	requestFrom time.Time // when a partly received request was first seen waiting; zero between requests
	deadline    time.Time // the read deadline last set
	drainLeft   int       // reads left to lastRead; set when draining begins
	idleAtDrain bool      // draining found it waiting for a request, with nothing pending, and nothing came

	mu        sync.Mutex // guards draining and lingering; held while the goroutine sets a read deadline
	draining  bool       // Shutdown: finish what is buffered, then close
	lingering bool       // lingerClose owns the read deadline
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, log: s.logger().With(slog.String("remote", nc.RemoteAddr().String()))}
	c.dec = protocol.NewDecoder(c, s.Framing, s.maxMessageSize())
	if s.budget != nil {
		c.dec.SetBudget(s.budget)
	}
	return c
}

// remote names the connection in a log line.
func (c *conn) remote() []slog.Attr {
	return []slog.Attr{slog.String("remote", c.nc.RemoteAddr().String())}
}

// serve is the connection's goroutine.
func (c *conn) serve() {
	defer c.srv.connDone(c)
	if c.rejected {
		if leftAlready(c.nc) { // left at once (a scan, a health check): nobody to refuse, no refusal to log
			c.nc.Close()
			return
		}
		c.srv.refusals.add(c.remote)
		c.queue(protocol.ErrorReply(protocol.Code_CODE_OVERLOADED, "")) // EA-LIM-5
		c.flush()
		c.lingerClose()
		return
	}
	c.log.Debug("connection opened")
	reason := c.loop()
	c.dec.Release()
	c.log.Debug("connection closed", slog.String("why", reason))
}

// loop serves requests until the connection must close, closes it and says
// why.
func (c *conn) loop() string {
	handle := c.srv.handler()
	for {
		msg, err := c.dec.Next()
		if err != nil {
			return c.finish(err)
		}
		c.requestFrom = time.Time{}
		req, err := protocol.DecodeRequest(msg)
		if err != nil {
			// The frame was delimited, so the stream is still in sync
			// (EA-MAL-2, EA-MAL-3, EA-MAL-4).
			c.log.Debug("malformed request", slog.Any("err", err))
			c.queue(protocol.ErrorReplyFor(err))
		} else {
			c.queue(handle(req))
		}
		if c.writeErr != nil {
			return c.finish(c.writeErr)
		}
	}
}

// finish ends the connection after err from Decoder.Next or a write; every
// complete request read before it has its reply in c.out.
func (c *conn) finish(err error) string {
	switch {
	case c.writeErr != nil:
		c.nc.Close()
		if errors.Is(c.writeErr, os.ErrDeadlineExceeded) {
			c.srv.faults.writeTimeout.add(c.remote)
			return "write timeout"
		}
		return "write failed: " + c.writeErr.Error()
	case errors.Is(err, io.EOF):
		// The client half-closed: the replies still due go out, then we
		// close (EA-CONN-5).
		c.flush()
		c.nc.Close()
		return "client closed"
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.flush()
		c.nc.Close()
		return "client closed inside a request"
	case c.isDraining() && c.idleAtDrain && len(c.out) == 0 && unsent(c.nc) == 0:
		// Nothing was pending and nothing came: no reply is in flight for
		// a reset to destroy, and an idle client must not hold up the stop.
		// Replies the kernel still holds for a client slow to read are in
		// flight: a close now, and the client's next bytes, would reset
		// them away.
		c.nc.Close()
		return "server shutting down"
	case c.isDraining():
		c.flush()
		c.lingerClose() // a close with input unread would reset the replies in flight
		return "server shutting down"
	case errors.Is(err, os.ErrDeadlineExceeded) && c.dec.Buffered() > 0:
		buffered := c.dec.Buffered()
		c.srv.faults.readTimeout.add(func() []slog.Attr { return append(c.remote(), slog.Int("buffered", buffered)) })
		c.queue(protocol.ErrorReply(protocol.Code_CODE_TIMEOUT, "")) // EA-LIM-3
		c.flush()
		c.lingerClose()
		return "read timeout"
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.flush()
		c.lingerClose()
		return "idle timeout" // EA-LIM-4
	case errors.Is(err, protocol.ErrOverloaded):
		// The server's buffers are full (MaxBuffered): this request cannot
		// be received, so it is refused and the connection closed.
		c.srv.bufferRefusals.add(c.remote)
		c.queue(protocol.ErrorReplyFor(err))
		c.flush()
		c.lingerClose()
		return "buffers full"
	case protocol.Fatal(err) && protocol.ErrorCode(err) != protocol.Code_CODE_UNSPECIFIED:
		// Too large or unsplittable: the stream is out of sync (EA-MAL-5,
		// EA-LIM-2).
		c.srv.faults.stream.add(func() []slog.Attr { return append(c.remote(), slog.Any("err", err)) })
		c.queue(protocol.ErrorReplyFor(err))
		c.flush()
		c.lingerClose()
		return err.Error()
	case peerGone(err):
		// The client reset or abandoned the connection: no error of the
		// server (EA-TRANS-1), so only "connection closed" says why, at
		// debug level, as on the epoll engine. Nothing can be sent.
		c.nc.Close()
		return err.Error()
	default:
		c.log.Warn("connection failed", slog.Any("err", err))
		c.flush()
		c.nc.Close()
		return err.Error()
	}
}

// peerGone reports whether a read error means the peer ended the
// connection abruptly (a reset, a write to a connection it closed, an abort)
// or the network lost it, rather than a failure of the server.
func peerGone(err error) bool {
	for _, errno := range []syscall.Errno{syscall.ECONNRESET, syscall.EPIPE, syscall.ECONNABORTED, syscall.ETIMEDOUT} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// queue appends reply to the replies waiting to be written, and writes them
// out if they have grown large.
func (c *conn) queue(reply *protocol.ServerMessage) {
	out, err := c.srv.Framing.AppendMessage(c.out, reply)
	if err != nil {
		// Only an empty message in raw framing fails, and no reply is empty.
		c.log.Warn("cannot encode reply", slog.Any("err", err))
		return
	}
	c.out = out
	if len(c.out) >= flushThreshold {
		c.flush()
	}
}

// flush writes the queued replies with one Write: whole replies only, so no
// reply is ever split across writes (EA-FRAME-2).
func (c *conn) flush() error {
	if c.writeErr != nil || len(c.out) == 0 {
		return c.writeErr
	}
	if c.srv.WriteTimeout > 0 {
		// A Write that the socket takes at once returns before the
		// deadline; one blocked by a client that does not read fails at it.
		c.nc.SetWriteDeadline(time.Now().Add(c.srv.WriteTimeout))
	}
	large := cap(c.out) > flushThreshold
	if large {
		// A large reply counts against MaxBuffered while it is written
		// (the write blocks while the client does not read).
		c.srv.budget.Add(cap(c.out))
		defer c.srv.budget.Add(-cap(c.out))
	}
	_, c.writeErr = c.nc.Write(c.out)
	if large {
		c.out = nil // do not keep a large echo's buffer on an idle connection
	} else {
		c.out = c.out[:0]
	}
	return c.writeErr
}

// Read is what the Decoder reads from. The Decoder reads only when no whole
// request is left in its buffer, so this is where the replies to everything
// received so far are written out, and where the read deadline is chosen:
// IdleTimeout when no request is in progress, ReadTimeout from the moment a
// request's first bytes were seen waiting.
func (c *conn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	if !c.armDeadline() {
		return c.lastRead(p)
	}
	n, err := c.nc.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.isDraining() {
		// Woken from waiting by Shutdown: idle, unless a request was
		// partly received, or lastRead finds one.
		c.idleAtDrain = n == 0 && c.dec.Buffered() == 0
		return c.lastRead(p)
	}
	return n, err
}

// armDeadline sets the read deadline for the next read; it reports false if
// the connection is draining, when Shutdown owns the deadline.
func (c *conn) armDeadline() bool {
	var deadline time.Time
	if c.dec.Buffered() == 0 {
		c.requestFrom = time.Time{}
		if c.srv.IdleTimeout > 0 {
			deadline = time.Now().Add(c.srv.IdleTimeout)
		}
	} else {
		if c.requestFrom.IsZero() {
			c.requestFrom = time.Now()
		}
		if c.srv.ReadTimeout > 0 {
			deadline = c.requestFrom.Add(c.srv.ReadTimeout)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		return false
	}
	if !deadline.Equal(c.deadline) {
		c.deadline = deadline
		c.nc.SetReadDeadline(deadline) // fails only if closed; the Read then says so
	}
	return true
}

// lastRead reads the connection's socket after draining began: it takes
// what the client sent before Shutdown without waiting for more, so that
// requests already received by the host still get their replies
// (EA-STOP-2), up to drainReads reads. Reading ends at the first that
// finds nothing.
func (c *conn) lastRead(p []byte) (int, error) {
	if c.drainLeft == 0 {
		return 0, errDraining
	}
	c.drainLeft--
	n, err := readNoWait(c.nc, p)
	if n > 0 {
		c.idleAtDrain = false
		return n, nil
	}
	if err == nil {
		err = errDraining
	}
	return 0, err
}

func (c *conn) isDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// drain makes the connection finish the requests it has and close; it wakes
// a goroutine blocked in Read. Called by Shutdown with the server's mutex
// held.
func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.draining {
		c.draining = true
		c.drainLeft = drainReads
		if !c.lingering {
			c.nc.SetReadDeadline(aLongTimeAgo)
		}
	}
}

// lingerClose closes a connection the server is done with while the client
// may still be sending (after an Error reply, or at Shutdown): closing a
// socket with unread bytes makes the kernel send a reset, which can destroy
// the replies before the client reads them. So it sends FIN first, then
// reads and drops what comes for up to lingerTimeout (longer while the
// kernel still holds replies, up to WriteTimeout or MaxUnsentLinger) or
// until the client closes, then closes. Close cuts the wait short.
func (c *conn) lingerClose() {
	defer c.nc.Close()
	c.dec.Release() // no request is read any more: give its bytes back now

	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	from := time.Now()
	for {
		c.mu.Lock()
		c.lingering = true
		c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
		c.mu.Unlock()
		_, err := io.Copy(io.Discard, c.nc) // ends at the client's FIN, the deadline, or Close
		// Replies the kernel still holds for a client slow to read would
		// be reset away by its next bytes after the close: linger on while
		// there are any, within the write timeout (or a bound without one,
		// as the epoll engine's).
		limit := cmp.Or(c.srv.WriteTimeout, eventloop.MaxUnsentLinger)
		if !errors.Is(err, os.ErrDeadlineExceeded) || unsent(c.nc) == 0 || time.Since(from) >= limit {
			return
		}
	}
}
