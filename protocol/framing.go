package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Framing is how messages are delimited on a connection (PROTOCOL.md
// "Framing"). A listener speaks exactly one framing.
type Framing int

const (
	// Raw is the original form: a message is its encoding, with no prefix.
	// Requests are delimited by parsing top-level ClientMessage fields
	// (EA-FRAME-1).
	Raw Framing = iota
	// Len32 prefixes each message with its length as 4 bytes, big-endian
	// (EA-FRAME-4).
	Len32
	// Varint prefixes each message with its length as a protobuf varint, as
	// protodelim and Java's writeDelimitedTo do (EA-FRAME-5).
	Varint
)

// DefaultMaxMessageSize is the reference server's limit when none is set.
const DefaultMaxMessageSize = 1 << 20

// MinMaxMessageSize is the size every implementation must accept (EA-LIM-1):
// what the original client reads at once.
const MinMaxMessageSize = 1024

// Framings lists every framing, in the order the flags document them.
var Framings = []Framing{Raw, Len32, Varint}

func (f Framing) String() string {
	switch f {
	case Raw:
		return "raw"
	case Len32:
		return "len32"
	case Varint:
		return "varint"
	default:
		return fmt.Sprintf("Framing(%d)", int(f))
	}
}

// ParseFraming parses a framing name as the command-line flags spell it.
func ParseFraming(s string) (Framing, error) {
	for _, f := range Framings {
		if f.String() == s {
			return f, nil
		}
	}
	return 0, fmt.Errorf("unknown framing %q: use raw, len32 or varint", s)
}

// Set and Type let a *Framing be a command-line flag value.
func (f *Framing) Set(s string) error {
	v, err := ParseFraming(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

func (f *Framing) Type() string { return "framing" }

// MaxPrefixLen is the longest length prefix any framing writes.
const MaxPrefixLen = binary.MaxVarintLen64

// Split finds the first whole message at the start of buf, the byte-slice
// core that Decoder and any event-driven reader share.
//
// It returns the message's encoding (aliasing buf), the number of bytes of
// buf consumed, and an error. The caller always drops n bytes, then:
//   - err == nil: msg is one message (possibly empty, in framed modes);
//   - err == ErrIncomplete: buf holds no whole message yet; read more;
//   - *TooLargeError or *FramingError: the stream is unusable (see Fatal).
//
// In raw framing, top-level fields other than 1 and 2 are skipped by their
// wire type; n counts them even when the error is ErrIncomplete or a fatal
// error (the offending field starts at n). A skipped field counts against
// max like a request. max <= 0 means DefaultMaxMessageSize. Split allocates
// nothing but its error values, and checks a declared size against max as
// soon as it is read, before waiting for the body.
//
// Split delimits requests (ClientMessage); SplitReply delimits replies.
func (f Framing) Split(buf []byte, max int) (msg []byte, n int, err error) {
	return f.split(buf, max, requestFields)
}

// SplitReply is Split for replies (ServerMessage), as a client reads them:
// in raw framing, a top-level field 1, 2 or 3 of any wire type is one reply
// (EA-ERR-2); in len32 and varint framing it is the same as Split.
func (f Framing) SplitReply(buf []byte, max int) (msg []byte, n int, err error) {
	return f.split(buf, max, replyFields)
}

// Top-level field numbers that are one message each in raw framing.
const (
	requestFields = 2 // ClientMessage: 1 echo_message, 2 add_request
	replyFields   = 3 // ServerMessage: 1 echo_message, 2 add_response, 3 error
)

func (f Framing) split(buf []byte, max int, lastField protowire.Number) (msg []byte, n int, err error) {
	if max <= 0 {
		max = DefaultMaxMessageSize
	}
	switch f {
	case Len32:
		if len(buf) < 4 {
			return nil, 0, ErrIncomplete
		}
		size := binary.BigEndian.Uint32(buf)
		if uint64(size) > uint64(max) {
			return nil, 0, &TooLargeError{Size: uint64(size), Max: max}
		}
		end := 4 + int(size)
		if len(buf) < end {
			return nil, 0, ErrIncomplete
		}
		return buf[4:end:end], end, nil
	case Varint:
		size, k := protowire.ConsumeVarint(buf)
		if k < 0 {
			if errors.Is(protowire.ParseError(k), io.ErrUnexpectedEOF) {
				return nil, 0, ErrIncomplete
			}
			return nil, 0, &FramingError{Framing: f, Reason: "length prefix is not a varint of at most 10 bytes and 64 bits"}
		}
		if size > uint64(max) {
			return nil, 0, &TooLargeError{Size: size, Max: max}
		}
		end := k + int(size)
		if len(buf) < end {
			return nil, 0, ErrIncomplete
		}
		return buf[k:end:end], end, nil
	case Raw:
		return splitRaw(buf, max, lastField)
	default:
		return nil, 0, fmt.Errorf("protocol: %v is not a framing", f)
	}
}

// splitRaw delimits raw messages by their top-level fields (EA-FRAME-1):
// each whole field numbered 1 to lastField, of any wire type, is one
// message; other fields are skipped by their wire type; an invalid tag is a
// framing error (EA-MAL-5). A request field of the wrong wire type is
// delimited here and rejected by DecodeRequest.
func splitRaw(buf []byte, max int, lastField protowire.Number) (msg []byte, n int, err error) {
	for n < len(buf) {
		rest := buf[n:]
		num, typ, tagLen := protowire.ConsumeTag(rest)
		if tagLen < 0 {
			perr := protowire.ParseError(tagLen)
			if errors.Is(perr, io.ErrUnexpectedEOF) {
				return nil, n, ErrIncomplete
			}
			return nil, n, &FramingError{Framing: Raw, Offset: n, Reason: fmt.Sprintf("invalid field tag (%v)", perr)}
		}
		if num > protowire.MaxValidNumber {
			return nil, n, &FramingError{Framing: Raw, Offset: n, Reason: fmt.Sprintf("invalid field tag (field number %d is above %d)", num, protowire.MaxValidNumber)}
		}
		var size int // bytes of the whole field, tag included
		switch typ {
		case protowire.VarintType:
			_, k := protowire.ConsumeVarint(rest[tagLen:])
			if k < 0 {
				if errors.Is(protowire.ParseError(k), io.ErrUnexpectedEOF) {
					return nil, n, ErrIncomplete
				}
				return nil, n, &FramingError{Framing: Raw, Offset: n + tagLen, Reason: "varint longer than 10 bytes or above 64 bits"}
			}
			size = tagLen + k
		case protowire.Fixed32Type:
			size = tagLen + 4
		case protowire.Fixed64Type:
			size = tagLen + 8
		case protowire.BytesType:
			length, k := protowire.ConsumeVarint(rest[tagLen:])
			if k < 0 {
				if errors.Is(protowire.ParseError(k), io.ErrUnexpectedEOF) {
					return nil, n, ErrIncomplete
				}
				return nil, n, &FramingError{Framing: Raw, Offset: n + tagLen, Reason: "length is a varint longer than 10 bytes or above 64 bits"}
			}
			if head := uint64(tagLen + k); length > uint64(max) || head+length > uint64(max) {
				return nil, n, &TooLargeError{Size: saturatingAdd(head, length), Max: max}
			}
			size = tagLen + k + int(length)
		default:
			return nil, n, &FramingError{Framing: Raw, Offset: n, Reason: fmt.Sprintf("field %d has wire type %d, which no message uses (groups and types 6 and 7 are not allowed)", num, typ)}
		}
		if size > max {
			return nil, n, &TooLargeError{Size: uint64(size), Max: max}
		}
		if len(rest) < size {
			return nil, n, ErrIncomplete
		}
		if num <= lastField {
			return rest[:size:size], n + size, nil
		}
		n += size // not a message field: skipped (EA-FRAME-1)
	}
	return nil, n, ErrIncomplete
}

// saturatingAdd is a + b, or the largest uint64 if that overflows.
func saturatingAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

// AppendFrame appends msg with f's length prefix (none in raw framing).
func (f Framing) AppendFrame(dst, msg []byte) []byte {
	return append(f.AppendPrefix(dst, len(msg)), msg...)
}

// AppendPrefix appends the length prefix of a size-byte message in framing
// f (nothing in raw framing), for writers that encode the message itself in
// place after it.
func (f Framing) AppendPrefix(dst []byte, size int) []byte {
	switch f {
	case Len32:
		return binary.BigEndian.AppendUint32(dst, uint32(size))
	case Varint:
		return protowire.AppendVarint(dst, uint64(size))
	}
	return dst
}
