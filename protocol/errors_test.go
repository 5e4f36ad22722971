package protocol

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

func TestErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&TooLargeError{Size: 4294967295, Max: 1048576}, "protocol: message of 4294967295 bytes is larger than the maximum of 1048576 bytes"},
		{&FramingError{Framing: Raw, Offset: 3, Reason: "invalid field tag"}, "protocol: raw framing error at byte 3: invalid field tag"},
		{&RequestError{Code: Code_CODE_EMPTY_REQUEST}, "protocol: request sets neither echo_message nor add_request"},
		{&RequestError{Code: Code_CODE_MALFORMED, Err: errWrongWireType}, "protocol: malformed request: a request field has the wrong wire type"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q; want %q", got, tc.want)
		}
	}
}

func TestRequestErrorUnwrap(t *testing.T) {
	inner := errors.New("inner")
	err := fmt.Errorf("wrapped: %w", &RequestError{Code: Code_CODE_MALFORMED, Err: inner})
	if !errors.Is(err, inner) {
		t.Error("errors.Is does not see the decoder's error through RequestError")
	}
	var re *RequestError
	if !errors.As(err, &re) || re.Code != Code_CODE_MALFORMED {
		t.Errorf("errors.As: %v", re)
	}
}

func TestErrorCodeAndFatal(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("reading request: %w", err) }
	for _, tc := range []struct {
		name  string
		err   error
		code  Code
		fatal bool
	}{
		{"nil", nil, Code_CODE_UNSPECIFIED, false},
		{"too large", &TooLargeError{Size: 2, Max: 1}, Code_CODE_TOO_LARGE, true},
		{"too large, wrapped", wrap(&TooLargeError{Size: 2, Max: 1}), Code_CODE_TOO_LARGE, true},
		{"framing", &FramingError{Framing: Varint}, Code_CODE_FRAMING, true},
		{"framing, wrapped", wrap(&FramingError{}), Code_CODE_FRAMING, true},
		{"malformed", &RequestError{Code: Code_CODE_MALFORMED}, Code_CODE_MALFORMED, false},
		{"empty request", wrap(&RequestError{Code: Code_CODE_EMPTY_REQUEST}), Code_CODE_EMPTY_REQUEST, false},
		{"malformed wrapping unexpected EOF", &RequestError{Code: Code_CODE_MALFORMED, Err: io.ErrUnexpectedEOF}, Code_CODE_MALFORMED, false},
		{"stream cut mid-frame", io.ErrUnexpectedEOF, Code_CODE_FRAMING, true},
		{"read deadline", wrap(os.ErrDeadlineExceeded), Code_CODE_TIMEOUT, true},
		{"clean EOF", io.EOF, Code_CODE_UNSPECIFIED, true},
		{"other", errors.New("connection reset"), Code_CODE_UNSPECIFIED, true},
	} {
		if got := ErrorCode(tc.err); got != tc.code {
			t.Errorf("ErrorCode(%s) = %v; want %v", tc.name, got, tc.code)
		}
		if got := Fatal(tc.err); got != tc.fatal {
			t.Errorf("Fatal(%s) = %v; want %v", tc.name, got, tc.fatal)
		}
	}
}

// TestErrorsFromTheCodec checks the code of each error the codec itself
// returns, end to end, as a server maps them.
func TestErrorsFromTheCodec(t *testing.T) {
	for _, tc := range []struct {
		name    string
		framing Framing
		in      string
		code    Code
	}{
		{"undecodable body", Len32, "00 00 00 01 ff", Code_CODE_MALFORMED},
		{"invalid UTF-8", Varint, "05 0a 03 0a 01 ff", Code_CODE_MALFORMED},
		{"wrong wire type", Raw, "08 01", Code_CODE_MALFORMED},
		{"no oneof", Len32, "00 00 00 00", Code_CODE_EMPTY_REQUEST},
		{"cut at EOF", Len32, "00 00 00 05 0a", Code_CODE_FRAMING},
		{"prefix above the limit", Len32, "00 10 00 01", Code_CODE_TOO_LARGE},
		{"invalid tag", Raw, "0f", Code_CODE_FRAMING},
		{"overlong varint prefix", Varint, "80 80 80 80 80 80 80 80 80 80 00", Code_CODE_FRAMING},
	} {
		d := NewDecoder(strings.NewReader(string(unhex(t, tc.in))), tc.framing, 0)
		_, err := d.DecodeRequest()
		if ErrorCode(err) != tc.code {
			t.Errorf("%s: %v gives %v; want %v", tc.name, err, ErrorCode(err), tc.code)
		}
		if reply := ErrorReplyFor(err); reply.GetError().GetCode() != tc.code {
			t.Errorf("%s: ErrorReplyFor = %v", tc.name, reply)
		}
	}
}
