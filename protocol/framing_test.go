package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// unhex decodes hex written with optional spaces and '|'.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "").Replace(s))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// errClass names the kind of error Split, Next or DecodeRequest returned,
// the way a server tells them apart.
func errClass(err error) string {
	var tooLarge *TooLargeError
	var framing *FramingError
	var request *RequestError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrIncomplete):
		return "incomplete"
	case errors.As(err, &tooLarge):
		return "too-large"
	case errors.As(err, &framing):
		return "framing"
	case errors.As(err, &request):
		return "request:" + request.Code.String()
	case err == io.EOF:
		return "eof"
	case err == io.ErrUnexpectedEOF:
		return "unexpected-eof"
	default:
		return "other: " + err.Error()
	}
}

const hello = "0a 0f 0a 0d 48 65 6c 6c 6f 2c 20 57 6f 72 6c 64 21" // echo "Hello, World!"

type splitCase struct {
	name    string
	framing Framing
	reply   bool // SplitReply instead of Split
	in      string
	max     int
	msg     string // hex of the message, when err is "ok"
	n       int
	err     string // errClass
	size    uint64 // TooLargeError.Size, when err is "too-large"
	offset  int    // FramingError.Offset, when err is "framing"
}

var splitCases = []splitCase{
	// raw (EA-FRAME-1)
	{name: "empty", framing: Raw, in: "", err: "incomplete"},
	{name: "echo hello", framing: Raw, in: hello, msg: hello, n: 17, err: "ok"},
	{name: "echo then add: first only", framing: Raw, in: hello + "12 04 08 0a 10 14", msg: hello, n: 17, err: "ok"},
	{name: "add 10 20", framing: Raw, in: "12 04 08 0a 10 14", msg: "12 04 08 0a 10 14", n: 6, err: "ok"},
	{name: "echo empty", framing: Raw, in: "0a 00", msg: "0a 00", n: 2, err: "ok"},
	{name: "tag only", framing: Raw, in: "0a", err: "incomplete"},
	{name: "length cut", framing: Raw, in: "0a 8f", err: "incomplete"},
	{name: "body cut", framing: Raw, in: "0a 0f 0a 0d 48 65", err: "incomplete"},
	{name: "multi-byte tag cut", framing: Raw, in: "80", err: "incomplete"},
	{name: "skip varint field 5", framing: Raw, in: "28 01 | 12 04 08 0a 10 14", msg: "12 04 08 0a 10 14", n: 8, err: "ok"},
	{name: "skip fixed32 field 6", framing: Raw, in: "35 01 02 03 04 | 0a 00", msg: "0a 00", n: 7, err: "ok"},
	{name: "skip fixed64 field 7", framing: Raw, in: "39 01 02 03 04 05 06 07 08 | 0a 00", msg: "0a 00", n: 11, err: "ok"},
	{name: "skip len field 4", framing: Raw, in: "22 02 aa bb | 0a 00", msg: "0a 00", n: 6, err: "ok"},
	{name: "skip field 3 in requests", framing: Raw, in: "1a 00 | 0a 00", msg: "0a 00", n: 4, err: "ok"},
	{name: "skipped field counted when incomplete", framing: Raw, in: "28 01", n: 2, err: "incomplete"},
	{name: "skipped fields counted before partial request", framing: Raw, in: "28 01 | 22 01 ff | 12 04 08", n: 5, err: "incomplete"},
	{name: "partial skipped field not counted", framing: Raw, in: "22 05 aa", err: "incomplete"},
	{name: "partial skipped varint", framing: Raw, in: "28 ff", err: "incomplete"},
	{name: "field 1 as varint is delimited", framing: Raw, in: "08 01 | 0a 00", msg: "08 01", n: 2, err: "ok"},
	{name: "field 2 as fixed32 is delimited", framing: Raw, in: "15 01 02 03 04", msg: "15 01 02 03 04", n: 5, err: "ok"},
	{name: "field 1 as fixed64 is delimited", framing: Raw, in: "09 01 02 03 04 05 06 07 08", msg: "09 01 02 03 04 05 06 07 08", n: 9, err: "ok"},
	{name: "field 0", framing: Raw, in: "00", err: "framing"},
	{name: "field 0 after a skipped field", framing: Raw, in: "28 01 | 02 00", n: 2, err: "framing", offset: 2},
	{name: "field 0 after a request", framing: Raw, in: "0a 00 | 02 00", msg: "0a 00", n: 2, err: "ok"},
	{name: "field number above 2^29-1", framing: Raw, in: "80 80 80 80 10 | 00", err: "framing"},
	{name: "largest field number is skipped", framing: Raw, in: "f8 ff ff ff 0f 00 | 0a 00", msg: "0a 00", n: 8, err: "ok"},
	{name: "wire type 3 (start group)", framing: Raw, in: "0b 0c", err: "framing"},
	{name: "wire type 4 (end group)", framing: Raw, in: "0c", err: "framing"},
	{name: "wire type 6", framing: Raw, in: "0e", err: "framing"},
	{name: "wire type 7", framing: Raw, in: "2f 00", err: "framing"},
	{name: "tag varint of 11 bytes", framing: Raw, in: "ff ff ff ff ff ff ff ff ff ff 01", err: "framing"},
	{name: "length varint of 11 bytes", framing: Raw, in: "0a ff ff ff ff ff ff ff ff ff ff 01", err: "framing", offset: 1},
	{name: "skipped varint of 11 bytes", framing: Raw, in: "28 80 80 80 80 80 80 80 80 80 80 01", err: "framing", offset: 1},
	{name: "too large by one", framing: Raw, in: hello, max: 16, err: "too-large", size: 17},
	{name: "exactly max", framing: Raw, in: hello, max: 17, msg: hello, n: 17, err: "ok"},
	{name: "declared 4 GiB fails at once", framing: Raw, in: "0a ff ff ff ff 0f", err: "too-large", size: 6 + 0xffffffff},
	{name: "declared 2^64-1 saturates", framing: Raw, in: "0a ff ff ff ff ff ff ff ff ff 01", err: "too-large", size: math.MaxUint64},
	{name: "too large skipped field", framing: Raw, in: "28 01 | 22 80 08", max: 1024, n: 2, err: "too-large", size: 3 + 1024},
	{name: "too large fixed64 with tiny max", framing: Raw, in: "09 01 02 03 04 05 06 07 08", max: 4, err: "too-large", size: 9},
	{name: "reply: error field 3", framing: Raw, reply: true, in: "1a 07 08 01 12 03 62 61 64", msg: "1a 07 08 01 12 03 62 61 64", n: 9, err: "ok"},
	{name: "reply: field 3 as varint", framing: Raw, reply: true, in: "18 05 | 0a 00", msg: "18 05", n: 2, err: "ok"},
	{name: "reply: field 4 skipped", framing: Raw, reply: true, in: "22 00 | 12 02 08 1e", msg: "12 02 08 1e", n: 6, err: "ok"},

	// len32 (EA-FRAME-4)
	{name: "empty", framing: Len32, in: "", err: "incomplete"},
	{name: "prefix cut", framing: Len32, in: "00 00 00", err: "incomplete"},
	{name: "zero-length frame", framing: Len32, in: "00 00 00 00", msg: "", n: 4, err: "ok"},
	{name: "echo hello", framing: Len32, in: "00 00 00 11 |" + hello, msg: hello, n: 21, err: "ok"},
	{name: "two frames: first only", framing: Len32, in: "00 00 00 02 | 0a 00 | 00 00 00 02 | 12 00", msg: "0a 00", n: 6, err: "ok"},
	{name: "body cut", framing: Len32, in: "00 00 00 11 | 0a 0f", err: "incomplete"},
	{name: "body not parsed", framing: Len32, in: "00 00 00 01 | ff", msg: "ff", n: 5, err: "ok"},
	{name: "prefix 0xffffffff fails at once", framing: Len32, in: "ff ff ff ff", err: "too-large", size: 0xffffffff},
	{name: "exactly max", framing: Len32, in: "00 00 00 02 | 0a 00", max: 2, msg: "0a 00", n: 6, err: "ok"},
	{name: "max plus one", framing: Len32, in: "00 00 00 03", max: 2, err: "too-large", size: 3},
	{name: "reply same as request", framing: Len32, reply: true, in: "00 00 00 02 | 1a 00", msg: "1a 00", n: 6, err: "ok"},

	// varint (EA-FRAME-5)
	{name: "empty", framing: Varint, in: "", err: "incomplete"},
	{name: "zero-length frame", framing: Varint, in: "00", msg: "", n: 1, err: "ok"},
	{name: "echo hello", framing: Varint, in: "11 |" + hello, msg: hello, n: 18, err: "ok"},
	{name: "prefix cut", framing: Varint, in: "80", err: "incomplete"},
	{name: "prefix of 9 bytes cut", framing: Varint, in: "80 80 80 80 80 80 80 80 80", err: "incomplete"},
	{name: "two-byte prefix", framing: Varint, in: "80 01" + strings.Repeat(" 00", 128), msg: strings.Repeat("00", 128), n: 130, err: "ok"},
	{name: "non-minimal prefix accepted", framing: Varint, in: "82 00 | 0a 00", msg: "0a 00", n: 4, err: "ok"},
	{name: "10-byte prefix 2^64-1", framing: Varint, in: "ff ff ff ff ff ff ff ff ff 01", err: "too-large", size: math.MaxUint64},
	{name: "10-byte prefix above 64 bits", framing: Varint, in: "ff ff ff ff ff ff ff ff ff 02", err: "framing"},
	{name: "prefix of 11 bytes", framing: Varint, in: "80 80 80 80 80 80 80 80 80 80 01", err: "framing"},
	{name: "too large after 3 bytes", framing: Varint, in: "a0 80 40", err: "too-large", size: 1<<20 + 32},
	{name: "exactly 1 MiB declared, body cut", framing: Varint, in: "80 80 40 | 0a", err: "incomplete"},
	{name: "body cut", framing: Varint, in: "11 | 0a 0f", err: "incomplete"},
}

func TestSplit(t *testing.T) {
	for _, tc := range splitCases {
		split, kind := tc.framing.Split, "Split"
		if tc.reply {
			split, kind = tc.framing.SplitReply, "SplitReply"
		}
		t.Run(tc.framing.String()+"/"+kind+"/"+tc.name, func(t *testing.T) {
			in := unhex(t, tc.in)
			msg, n, err := split(in, tc.max)
			if got := errClass(err); got != tc.err {
				t.Fatalf("%s(% x) err = %v (%s); want %s", kind, in, err, got, tc.err)
			}
			if n != tc.n {
				t.Errorf("n = %d; want %d", n, tc.n)
			}
			if want := unhex(t, tc.msg); !bytes.Equal(msg, want) || (err == nil) != (msg != nil) {
				t.Errorf("msg = % x (nil %v); want % x", msg, msg == nil, want)
			}
			var tooLarge *TooLargeError
			if errors.As(err, &tooLarge) {
				wantMax := tc.max
				if wantMax <= 0 {
					wantMax = DefaultMaxMessageSize
				}
				if tooLarge.Size != tc.size || tooLarge.Max != wantMax {
					t.Errorf("TooLargeError{Size %d, Max %d}; want {%d, %d}", tooLarge.Size, tooLarge.Max, tc.size, wantMax)
				}
			}
			var framing *FramingError
			if errors.As(err, &framing) {
				if framing.Framing != tc.framing || framing.Offset != tc.offset {
					t.Errorf("FramingError{%v, Offset %d}; want {%v, %d}", framing.Framing, framing.Offset, tc.framing, tc.offset)
				}
			}
			if err == nil && cap(msg) != len(msg) {
				t.Errorf("msg has spare capacity %d: appending to it would overwrite the next message", cap(msg)-len(msg))
			}
		})
	}
}

// TestSplitNoAllocs checks that Split allocates nothing for what a peer
// declares: a whole or partial frame costs no allocation, and a frame above
// the limit costs only the error value.
func TestSplitNoAllocs(t *testing.T) {
	for _, tc := range splitCases {
		var want float64
		switch tc.err {
		case "ok", "incomplete":
			want = 0
		case "too-large":
			want = 1 // the *TooLargeError
		default:
			continue
		}
		in := unhex(t, tc.in)
		split := tc.framing.Split
		if tc.reply {
			split = tc.framing.SplitReply
		}
		allocs := testing.AllocsPerRun(100, func() { _, _, _ = split(in, tc.max) })
		if allocs > want {
			t.Errorf("%s/%s: Split allocates %v times per run; want at most %v", tc.framing, tc.name, allocs, want)
		}
	}
}

func TestSplitUnknownFraming(t *testing.T) {
	_, _, err := Framing(9).Split([]byte{0}, 0)
	if err == nil || !strings.Contains(err.Error(), "not a framing") {
		t.Fatalf("Framing(9).Split: err %v; want \"not a framing\"", err)
	}
}

func TestAppendFrame(t *testing.T) {
	for _, tc := range []struct {
		framing Framing
		msg     string
		want    string
	}{
		{Raw, hello, hello},
		{Len32, hello, "00 00 00 11 |" + hello},
		{Varint, hello, "11 |" + hello},
		{Len32, "", "00 00 00 00"},
		{Varint, "", "00"},
		{Varint, strings.Repeat("00 ", 300), "ac 02 |" + strings.Repeat("00 ", 300)},
	} {
		got := tc.framing.AppendFrame([]byte{0xee}, unhex(t, tc.msg))
		if want := append([]byte{0xee}, unhex(t, tc.want)...); !bytes.Equal(got, want) {
			t.Errorf("%v.AppendFrame(% x) = % x; want % x", tc.framing, unhex(t, tc.msg), got, want)
		}
	}
}

func TestParseFraming(t *testing.T) {
	for _, f := range Framings {
		got, err := ParseFraming(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFraming(%q) = %v, %v; want %v", f.String(), got, err, f)
		}
		var v Framing
		if err := v.Set(f.String()); err != nil || v != f {
			t.Errorf("Set(%q) = %v, %v", f.String(), v, err)
		}
	}
	if f := Framing(7); f.String() != "Framing(7)" {
		t.Errorf("Framing(7).String() = %q", f.String())
	}
	var v Framing = Len32
	for _, bad := range []string{"", "RAW", "len-32", "protobuf"} {
		if err := v.Set(bad); err == nil || v != Len32 {
			t.Errorf("Set(%q): err %v, value %v; want an error and the value unchanged", bad, err, v)
		}
	}
	if v.Type() != "framing" {
		t.Errorf("Type() = %q", v.Type())
	}
}
