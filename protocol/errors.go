package protocol

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrIncomplete is returned by Framing.Split when the buffer does not yet
// hold a whole frame: the caller reads more bytes and calls Split again.
var ErrIncomplete = errors.New("protocol: incomplete frame, need more bytes")

// ErrOverloaded is returned by a Decoder whose Budget refuses the memory to
// buffer more of a request: the server has too much buffered for its other
// connections. The request is lost, so the connection is closed after the
// Error reply (CODE_OVERLOADED).
var ErrOverloaded = errors.New("protocol: the server has no memory left to buffer this request; retry later")

// TooLargeError reports a frame whose declared size is above the limit
// (EA-LIM-2). It is returned as soon as the prefix or tag is read, before
// anything is allocated for the body.
type TooLargeError struct {
	Size uint64 // declared size of the message in bytes (saturates at 2^64-1)
	Max  int    // the limit in force
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("protocol: message of %d bytes is larger than the maximum of %d bytes", e.Size, e.Max)
}

// FramingError reports bytes that cannot be split into messages: an invalid
// tag in raw framing, an overlong varint length prefix (EA-MAL-5). The
// stream cannot be resynchronised after it.
type FramingError struct {
	Framing Framing
	Offset  int    // offset of the offending bytes in the buffer given to Split
	Reason  string // what was wrong, for people
}

func (e *FramingError) Error() string {
	return fmt.Sprintf("protocol: %s framing error at byte %d: %s", e.Framing, e.Offset, e.Reason)
}

// RequestError reports a frame that was delimited but is not a valid request
// (EA-MAL-2): undecodable protobuf, invalid UTF-8, a wrong wire type, or no
// oneof set. The stream stays in sync after it.
type RequestError struct {
	Code Code  // CODE_MALFORMED or CODE_EMPTY_REQUEST
	Err  error // the decoder's error, if any
}

func (e *RequestError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("protocol: %s: %v", describeCode(e.Code), e.Err)
	}
	return "protocol: " + describeCode(e.Code)
}

func (e *RequestError) Unwrap() error { return e.Err }

// describeCode is the human wording of a Code, used in errors and in Error
// replies' detail.
func describeCode(c Code) string {
	switch c {
	case Code_CODE_MALFORMED:
		return "malformed request"
	case Code_CODE_EMPTY_REQUEST:
		return "request sets neither echo_message nor add_request"
	case Code_CODE_TOO_LARGE:
		return "request too large"
	case Code_CODE_FRAMING:
		return "framing error"
	case Code_CODE_OVERLOADED:
		return "server at its connection limit"
	case Code_CODE_TIMEOUT:
		return "request not completed within the read timeout"
	default:
		return "error"
	}
}

// ErrorCode maps an error from this package to the Code an Error reply
// carries for it: what a server sends back when Split, Decoder.Next or
// DecodeRequest fails. A stream that ends inside a frame
// (io.ErrUnexpectedEOF) is CODE_FRAMING; a read deadline that expires
// (os.ErrDeadlineExceeded, as net.Conn reports it) is CODE_TIMEOUT. Other
// errors map to CODE_UNSPECIFIED.
func ErrorCode(err error) Code {
	var tooLarge *TooLargeError
	var framing *FramingError
	var request *RequestError
	switch {
	case errors.As(err, &tooLarge):
		return Code_CODE_TOO_LARGE
	case errors.As(err, &framing):
		return Code_CODE_FRAMING
	case errors.As(err, &request):
		return request.Code
	case errors.Is(err, ErrOverloaded):
		return Code_CODE_OVERLOADED
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Code_CODE_FRAMING
	case errors.Is(err, os.ErrDeadlineExceeded):
		return Code_CODE_TIMEOUT
	default:
		return Code_CODE_UNSPECIFIED
	}
}

// Fatal reports whether err leaves the byte stream out of sync, so that the
// connection must be closed after the Error reply (EA-MAL-5, EA-LIM-2). A
// RequestError is not fatal: the frame boundary is known.
func Fatal(err error) bool {
	var request *RequestError
	return err != nil && !errors.As(err, &request)
}
