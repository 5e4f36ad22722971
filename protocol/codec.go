package protocol

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// initialBufferSize is the Decoder's first buffer: enough for every request
// the original client sends, small enough for many idle connections.
const initialBufferSize = 4 << 10

// Decoder reads messages from an io.Reader in one framing. It never
// allocates for a size the peer declares: the buffer grows only as bytes
// arrive, and a declared size above the limit fails before that. A buffer
// grown beyond its first 4 KiB for a large message is dropped once that
// message is returned and nothing follows it, so that a connection does not
// keep it while idle.
type Decoder struct {
	r       io.Reader
	framing Framing
	max     int
	split   func(Framing, []byte, int) ([]byte, int, error) // Framing.Split or SplitReply
	buf     []byte                                          // buf[start:end] is read but not yet returned
	start   int
	end     int
	readErr error  // deferred until the buffered bytes are used up
	budget  Budget // nil: none
	charged int    // bytes of buf taken from budget
}

// A Budget bounds the memory that many Decoders (and whatever else a server
// buffers) hold between them; see Decoder.SetBudget.
type Budget interface {
	// Grow takes n more bytes if they fit and reports whether they did.
	Grow(n int) bool
	// Add gives -n bytes back (or takes n without a check).
	Add(n int)
	// Left is how much Grow may take now.
	Left() int
}

// SetBudget makes the Decoder take its buffer from b once it grows beyond
// its first 4 KiB: when b refuses, Next returns ErrOverloaded after the
// messages already buffered, instead of reading more. Call Release when done
// with the Decoder to give the bytes back.
func (d *Decoder) SetBudget(b Budget) { d.budget = b }

// Release drops the Decoder's buffer, giving its bytes back to the budget.
// The Decoder stays usable; what it had buffered is gone.
func (d *Decoder) Release() {
	d.buf, d.start, d.end = nil, 0, 0
	if d.charged > 0 {
		d.budget.Add(-d.charged)
		d.charged = 0
	}
}

// takeBudget takes from the budget what a buffer of size bytes needs
// beyond the current one and returns the size taken, or 0 if nothing that
// grows the buffer fits. When size does not fit, a quarter more than now,
// then all that is left, as long as it grows the buffer and stays within
// size: near the limit a large message still fits if it can, in few steps.
func (d *Decoder) takeBudget(size int) int {
	now := len(d.buf)
	for _, s := range [...]int{size, min(size, now+now/4), min(size, now+d.budget.Left())} {
		if s <= now {
			continue
		}
		more := charge(s) - d.charged
		if more <= 0 || d.budget.Grow(more) {
			d.charged += max(more, 0)
			return s
		}
	}
	return 0
}

// charge is how much of a buffer of size bytes counts against a budget:
// all of it once it is larger than the first buffer, which every
// connection has anyway.
func charge(size int) int {
	if size <= initialBufferSize {
		return 0
	}
	return size
}

// NewDecoder returns a Decoder reading f-framed messages of at most max
// bytes from r (max <= 0 means DefaultMaxMessageSize).
func NewDecoder(r io.Reader, f Framing, max int) *Decoder {
	if max <= 0 {
		max = DefaultMaxMessageSize
	}
	return &Decoder{r: r, framing: f, max: max, split: Framing.Split}
}

// NewReplyDecoder returns a Decoder for the replies a client reads: it
// splits with Framing.SplitReply, so that in raw framing an error reply
// (field 3) is delimited too.
func NewReplyDecoder(r io.Reader, f Framing, max int) *Decoder {
	d := NewDecoder(r, f, max)
	d.split = Framing.SplitReply
	return d
}

// Next returns the next message's encoding; it is valid until the next call.
// It returns io.EOF only at a clean boundary, io.ErrUnexpectedEOF when the
// stream ends inside a message, and the typed errors of Split otherwise.
func (d *Decoder) Next() ([]byte, error) {
	for {
		msg, n, err := d.split(d.framing, d.buf[d.start:d.end], d.max)
		d.start += n
		if err == nil {
			return msg, nil
		}
		if !errors.Is(err, ErrIncomplete) {
			return nil, err
		}
		if d.readErr != nil {
			if d.readErr == io.EOF && d.start < d.end {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, d.readErr
		}
		d.fill()
	}
}

// Buffered reports how many bytes have been read but not yet returned: a
// server writes replies out when it reaches 0.
func (d *Decoder) Buffered() int { return d.end - d.start }

// maxEmptyReads is how many reads in a row may return no bytes and no
// error before fill gives up with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// fill reads into the free space, making room first, until it gets bytes
// or an error; the error is kept in readErr.
func (d *Decoder) fill() {
	if d.start == d.end {
		d.start, d.end = 0, 0
		if len(d.buf) > initialBufferSize {
			d.Release() // a large message's buffer: it is done with
		}
	}
	if d.end == len(d.buf) {
		if d.start > 0 {
			d.end = copy(d.buf, d.buf[d.start:d.end])
			d.start = 0
		} else {
			size := max(2*len(d.buf), initialBufferSize)
			// A whole frame is at most the limit plus its prefix; Split fails
			// before the buffered bytes could exceed that.
			if limit := d.max + MaxPrefixLen; limit > 0 { // else it overflowed: no cap
				size = min(size, limit)
			}
			if size <= len(d.buf) {
				// Unreachable while Split keeps its promise.
				d.readErr = fmt.Errorf("protocol: %d buffered bytes and still no whole %v frame", len(d.buf), d.framing)
				return
			}
			if d.budget != nil {
				if size = d.takeBudget(size); size == 0 {
					d.readErr = ErrOverloaded
					return
				}
			}
			grown := make([]byte, size)
			d.end = copy(grown, d.buf[d.start:d.end])
			d.start = 0
			d.buf = grown
		}
	}
	for range maxEmptyReads {
		n, err := d.r.Read(d.buf[d.end:])
		d.end += n
		if err != nil {
			d.readErr = err
			return
		}
		if n > 0 {
			return
		}
	}
	d.readErr = io.ErrNoProgress
}

// DecodeRequest reads and decodes the next request.
func (d *Decoder) DecodeRequest() (*ClientMessage, error) {
	msg, err := d.Next()
	if err != nil {
		return nil, err
	}
	return DecodeRequest(msg)
}

// DecodeReply reads and decodes the next reply; use it on a Decoder from
// NewReplyDecoder.
func (d *Decoder) DecodeReply() (*ServerMessage, error) {
	msg, err := d.Next()
	if err != nil {
		return nil, err
	}
	return DecodeReply(msg)
}

// Encoder writes messages to an io.Writer in one framing, each message with
// a single Write call (EA-FRAME-2).
type Encoder struct {
	w       io.Writer
	framing Framing
	buf     []byte
}

// NewEncoder returns an Encoder writing f-framed messages to w.
func NewEncoder(w io.Writer, f Framing) *Encoder {
	return &Encoder{w: w, framing: f}
}

// Encode marshals m and writes it, framed, with one Write.
func (e *Encoder) Encode(m proto.Message) error {
	b, err := e.framing.AppendMessage(e.buf[:0], m)
	if err != nil {
		return err
	}
	e.buf = b
	_, err = e.w.Write(b)
	return err
}

// ErrEmptyRawMessage is returned when a message that encodes to no bytes is
// to be written in raw framing, where it would be invisible to the peer.
var ErrEmptyRawMessage = errors.New("protocol: an empty message cannot be sent in raw framing")

// AppendMessage appends m's encoding with f's length prefix. On error it
// returns dst unchanged.
func (f Framing) AppendMessage(dst []byte, m proto.Message) ([]byte, error) {
	// proto.Size computes the sizes afresh and caches them for the marshal
	// below; asking it with UseCachedSize would return sizes cached before m
	// was last changed.
	size := proto.Size(m)
	orig := len(dst)
	switch f {
	case Raw:
		if size == 0 {
			return dst, ErrEmptyRawMessage
		}
	case Len32, Varint:
		dst = f.AppendPrefix(dst, size)
	default:
		return dst, fmt.Errorf("protocol: %v is not a framing", f)
	}
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(dst, m)
	if err != nil {
		return dst[:orig], err
	}
	return out, nil
}

// IllegalWriter writes what a strict Encoder never does: arbitrary bytes,
// length prefixes that disagree with the body, truncated frames. It exists
// for the conformance suite's malformed-input cases; a server has no use for
// it.
type IllegalWriter struct {
	W io.Writer
}

// WriteBytes writes b as it is, with one Write.
func (w IllegalWriter) WriteBytes(b []byte) error {
	_, err := w.W.Write(b)
	return err
}

// WriteFrame writes body behind a length prefix that declares declared bytes
// in framing f, whatever len(body) is. In raw framing there is no prefix and
// declared is ignored.
func (w IllegalWriter) WriteFrame(f Framing, declared uint64, body []byte) error {
	var b []byte
	switch f {
	case Len32:
		b = append(b, byte(declared>>24), byte(declared>>16), byte(declared>>8), byte(declared))
	case Varint:
		b = protowire.AppendVarint(b, declared)
	}
	return w.WriteBytes(append(b, body...))
}
