// Package comparator is the minimal Echo/Add server the benchmark measures
// other servers against: the fastest plain Go server for the protocol we can
// write. One goroutine per connection, requests decoded by hand with
// protowire (no proto.Unmarshal), one reused read buffer and one reused write
// buffer per connection, and no timeouts, logging or connection limit.
//
// It is meant to be correct on every MUST of PROTOCOL.md, and it sends the
// SHOULD Error replies for malformed input because they cost nothing on the
// fast path. It implements none of the optional limits (read and idle
// timeouts, connection limit).
package comparator

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"echoadd/protocol"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("comparator: server closed")

// initialBufferSize is each connection's first read buffer. It grows, up to
// the maximum message size plus a prefix, only when a message needs it, and
// drops back once that message is done.
const initialBufferSize = 4 << 10

// Server is the comparator server. Set the fields before Serve; do not change
// them afterwards.
type Server struct {
	// Framing is the framing every connection speaks (default Raw).
	Framing protocol.Framing
	// MaxMessageSize is the largest request accepted, in encoded bytes;
	// 0 means protocol.DefaultMaxMessageSize.
	MaxMessageSize int

	mu        sync.Mutex // guards the fields below
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup // one per connection goroutine
}

// Serve accepts connections on l and serves each in its own goroutine until
// Shutdown or Close, when it returns ErrServerClosed. It closes l.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// EMFILE and friends: back off instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !s.track(c) {
			c.Close()
			return ErrServerClosed
		}
		go s.serveConn(c)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers c; false means the server is closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[net.Conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting at once, then ends every connection at its next
// read: whole requests already read are answered first (EA-STOP-2), a
// request still arriving is dropped. It waits for the connections to close
// or for ctx to end, whichever is first; then it closes what is left.
// It may be called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		// Wake a blocked Read; the loop answers what it has and exits.
		c.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close stops at once: listeners and connections are closed.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	return nil
}

func (s *Server) serveConn(c net.Conn) {
	defer s.untrack(c)
	defer c.Close()
	h := NewHandler(s.Framing, s.MaxMessageSize)
	h.Serve(c)
}

// Handler serves one connection's byte stream. It is exported so that the
// benchmarks can drive the request handling without sockets.
type Handler struct {
	framing protocol.Framing
	max     int
	rbuf    []byte // rbuf[start:end] is read but not yet handled
	start   int
	end     int
	wbuf    []byte // replies not yet written
}

// NewHandler returns a Handler for framing f and requests of at most max
// bytes (0 means protocol.DefaultMaxMessageSize).
func NewHandler(f protocol.Framing, max int) *Handler {
	if max <= 0 {
		max = protocol.DefaultMaxMessageSize
	}
	return &Handler{framing: f, max: max, rbuf: make([]byte, initialBufferSize)}
}

// Serve reads requests from rw and writes the replies until the stream ends
// or fails. In raw framing each reply is one Write (EA-FRAME-2); in the
// framed modes the replies to requests that arrived together are written
// with one Write once no whole request is left in the buffer.
func (h *Handler) Serve(rw io.ReadWriter) {
	for {
		n, rerr := rw.Read(h.rbuf[h.end:])
		h.end += n
		if !h.handleBuffered(rw) {
			return
		}
		if rerr != nil {
			// EOF (the client half-closed: every whole request is
			// answered, EA-CONN-5), a reset, or Shutdown's deadline.
			return
		}
		h.makeRoom()
	}
}

// handleBuffered answers every whole request in the buffer; false means the
// connection must close (write failure or fatal framing error).
func (h *Handler) handleBuffered(w io.Writer) bool {
	for {
		msg, n, err := h.framing.Split(h.rbuf[h.start:h.end], h.max)
		h.start += n
		if errors.Is(err, protocol.ErrIncomplete) {
			break
		}
		if err != nil {
			// Too large or not splittable: Error reply, then close
			// (EA-LIM-2, EA-MAL-5).
			h.wbuf = appendErrorReply(h.wbuf, h.framing, err)
			h.flush(w)
			return false
		}
		h.wbuf = h.AppendReply(h.wbuf, msg)
		if h.framing == protocol.Raw {
			if !h.flush(w) {
				return false
			}
		}
	}
	if h.start == h.end {
		h.start, h.end = 0, 0
	}
	return h.flush(w)
}

func (h *Handler) flush(w io.Writer) bool {
	if len(h.wbuf) == 0 {
		return true
	}
	_, err := w.Write(h.wbuf)
	h.wbuf = h.wbuf[:0]
	return err == nil
}

// makeRoom makes free space after h.end for the next Read: it moves a
// partial request to the front, grows the buffer if the request needs it, and
// returns to a small buffer once a large request is done.
func (h *Handler) makeRoom() {
	if h.start == h.end {
		h.start, h.end = 0, 0
		if len(h.rbuf) > 16*initialBufferSize {
			h.rbuf = make([]byte, initialBufferSize)
		}
		return
	}
	if h.end < len(h.rbuf) {
		return
	}
	if h.start > 0 {
		h.end = copy(h.rbuf, h.rbuf[h.start:h.end])
		h.start = 0
		return
	}
	// Split bounds a whole frame by max plus its prefix.
	size := min(2*len(h.rbuf), h.max+protocol.MaxPrefixLen)
	grown := make([]byte, size)
	h.end = copy(grown, h.rbuf[h.start:h.end])
	h.start = 0
	h.rbuf = grown
}

// AppendReply appends the framed reply to the request encoded in msg.
func (h *Handler) AppendReply(dst, msg []byte) []byte {
	r, err := decodeRequest(msg)
	if err != nil {
		return appendErrorReply(dst, h.framing, err)
	}
	switch r.kind {
	case kindEcho:
		// ServerMessage{echo_message: EchoMessage{content}}
		inner := 0
		if len(r.content) > 0 {
			inner = 1 + protowire.SizeBytes(len(r.content))
		}
		body := 1 + protowire.SizeBytes(inner)
		dst = h.framing.AppendPrefix(dst, body)
		dst = append(dst, 0x0a)
		dst = protowire.AppendVarint(dst, uint64(inner))
		if len(r.content) > 0 {
			dst = append(dst, 0x0a)
			dst = protowire.AppendVarint(dst, uint64(len(r.content)))
			dst = append(dst, r.content...)
		}
		return dst
	default:
		// ServerMessage{add_response: AddResponse{result}}, wrapping in
		// 32 bits (EA-ADD-2); an int32 is sign-extended on the wire.
		sum := r.a + r.b
		inner := 0
		if sum != 0 {
			inner = 1 + protowire.SizeVarint(uint64(int64(sum)))
		}
		body := 1 + protowire.SizeBytes(inner)
		dst = h.framing.AppendPrefix(dst, body)
		dst = append(dst, 0x12)
		dst = protowire.AppendVarint(dst, uint64(inner))
		if sum != 0 {
			dst = append(dst, 0x08)
			dst = protowire.AppendVarint(dst, uint64(int64(sum)))
		}
		return dst
	}
}

// appendErrorReply appends the Error reply for err (EA-ERR-1). Off the fast
// path: it allocates.
func appendErrorReply(dst []byte, f protocol.Framing, err error) []byte {
	out, merr := f.AppendMessage(dst, protocol.ErrorReplyFor(err))
	if merr != nil {
		return dst
	}
	return out
}

type kind uint8

const (
	kindNone kind = iota
	kindEcho
	kindAdd
)

type request struct {
	kind    kind
	content []byte // aliases the request bytes
	a, b    int32
}

var (
	errWireType = errors.New("a request field has the wrong wire type")
	errUTF8     = errors.New("echo content is not valid UTF-8")
	errSyntax   = errors.New("cannot parse protobuf")
)

func malformed(err error) error {
	return &protocol.RequestError{Code: protocol.Code_CODE_MALFORMED, Err: err}
}

// decodeRequest decodes a ClientMessage as proto.Unmarshal would: the last
// oneof field wins, a repeated message field of the same case merges into the
// one before, and unknown fields are skipped, as are fields of EchoMessage
// and AddRequest with the wrong wire type. Unlike proto.Unmarshal, a
// top-level field 1 or 2 of the wrong wire type is malformed (PROTOCOL.md
// section 3).
func decodeRequest(b []byte) (request, error) {
	var r request
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return r, malformed(errSyntax)
		}
		b = b[n:]
		switch num {
		case 1, 2:
			if typ != protowire.BytesType {
				return r, malformed(errWireType)
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return r, malformed(errSyntax)
			}
			b = b[n:]
			var err error
			if num == 1 {
				if r.kind != kindEcho {
					r = request{kind: kindEcho}
				}
				err = r.mergeEcho(v)
			} else {
				if r.kind != kindAdd {
					r = request{kind: kindAdd}
				}
				err = r.mergeAdd(v)
			}
			if err != nil {
				return r, err
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return r, malformed(errSyntax)
			}
			b = b[n:]
		}
	}
	if r.kind == kindNone {
		return r, &protocol.RequestError{Code: protocol.Code_CODE_EMPTY_REQUEST}
	}
	return r, nil
}

// consumeTag is protowire.ConsumeTag, which takes field numbers up to
// 2^31-1 (MessageSet's), with protobuf's own bound, 2^29-1, as
// proto.Unmarshal has it: a larger number is invalid wire format.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -1
	}
	return num, typ, n
}

func (r *request) mergeEcho(b []byte) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return malformed(errSyntax)
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType { // of another type: unknown, as protobuf reads it
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed(errSyntax)
			}
			if !utf8.Valid(v) {
				return malformed(errUTF8)
			}
			r.content = v
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return malformed(errSyntax)
		}
		b = b[n:]
	}
	return nil
}

func (r *request) mergeAdd(b []byte) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return malformed(errSyntax)
		}
		b = b[n:]
		if (num == 1 || num == 2) && typ == protowire.VarintType { // of another type: unknown, as protobuf reads it
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return malformed(errSyntax)
			}
			if num == 1 {
				r.a = int32(v)
			} else {
				r.b = int32(v)
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return malformed(errSyntax)
		}
		b = b[n:]
	}
	return nil
}

// ListenAndServe listens on addr (TCP) and serves until Shutdown or Close.
func (s *Server) ListenAndServe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}
