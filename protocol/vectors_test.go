package protocol

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// vectorDir holds the wire vectors; testdata/README.md ("vectors")
// describes the format.
const vectorDir = "../testdata/vectors"

// A vector is one message on the wire in one framing, with its meaning.
type vector struct {
	Name      string
	Framing   Framing
	Direction string // "request" or "reply"
	Wire      []byte // the framed bytes
	Meaning   string // the message in protobuf text format
	Expect    Code   // CODE_UNSPECIFIED: decodes to Meaning; else the error code
	Canonical bool   // encoding Meaning gives exactly Wire
	File      string
	Line      int
}

func (v vector) String() string { return fmt.Sprintf("%s/%s/%s", v.Framing, v.Direction, v.Name) }

// loadVectors reads every *.vec file in dir.
func loadVectors(tb testing.TB, dir string) []vector {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.vec"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatalf("no *.vec files in %s", dir)
	}
	var all []vector
	for _, file := range files {
		vs, err := parseVectorFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		all = append(all, vs...)
	}
	return all
}

// parseVectorFile parses records of "key: value" lines separated by blank
// lines; '#' starts a comment line; hex lines concatenate, and spaces and
// '|' in them are ignored.
func parseVectorFile(file string) ([]vector, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out     []vector
		cur     *vector
		hexText strings.Builder
		seen    map[string]bool
	)
	finish := func() error {
		if cur == nil {
			return nil
		}
		defer func() { cur = nil }()
		b, err := hex.DecodeString(hexText.String())
		if err != nil {
			return fmt.Errorf("%s:%d: %s: bad hex: %v", file, cur.Line, cur.Name, err)
		}
		cur.Wire = b
		for _, k := range []string{"name", "framing", "direction", "hex", "meaning"} {
			if !seen[k] {
				return fmt.Errorf("%s:%d: record lacks %q", file, cur.Line, k)
			}
		}
		if cur.Direction != "request" && cur.Direction != "reply" {
			return fmt.Errorf("%s:%d: direction %q is neither request nor reply", file, cur.Line, cur.Direction)
		}
		out = append(out, *cur)
		return nil
	}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") {
			continue
		}
		if text == "" {
			if err := finish(); err != nil {
				return nil, err
			}
			continue
		}
		key, value, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want \"key: value\", got %q", file, line, text)
		}
		value = strings.TrimSpace(value)
		if cur == nil {
			cur = &vector{Canonical: true, File: file, Line: line}
			hexText.Reset()
			seen = map[string]bool{}
		}
		if seen[key] && key != "hex" {
			return nil, fmt.Errorf("%s:%d: %q given twice", file, line, key)
		}
		seen[key] = true
		switch key {
		case "name":
			cur.Name = value
		case "framing":
			if cur.Framing, err = ParseFraming(value); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", file, line, err)
			}
		case "direction":
			cur.Direction = value
		case "hex":
			hexText.WriteString(strings.NewReplacer(" ", "", "|", "").Replace(value))
		case "meaning":
			cur.Meaning = value
		case "expect":
			c, ok := Code_value[value]
			if !ok {
				return nil, fmt.Errorf("%s:%d: unknown code %q", file, line, value)
			}
			cur.Expect = Code(c)
		case "canonical":
			cur.Canonical = value != "no"
		case "note":
		default:
			return nil, fmt.Errorf("%s:%d: unknown key %q", file, line, key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// meaning parses v.Meaning into the message type of v's direction.
func (v vector) meaning(tb testing.TB) proto.Message {
	tb.Helper()
	var m proto.Message = new(ClientMessage)
	if v.Direction == "reply" {
		m = new(ServerMessage)
	}
	if err := prototext.Unmarshal([]byte(v.Meaning), m); err != nil {
		tb.Fatalf("%s:%d: meaning %q: %v", v.File, v.Line, v.Meaning, err)
	}
	return m
}

// split splits as v's direction requires.
func (v vector) split(buf []byte, max int) ([]byte, int, error) {
	if v.Direction == "reply" {
		return v.Framing.SplitReply(buf, max)
	}
	return v.Framing.Split(buf, max)
}

// decode decodes a delimited message as v's direction requires.
func (v vector) decode(msg []byte) (proto.Message, error) {
	if v.Direction == "reply" {
		return DecodeReply(msg)
	}
	return DecodeRequest(msg)
}

// TestVectors checks each vector: it is exactly one frame, it decodes to its
// meaning (or to its expected error code), and, when canonical, encoding
// the meaning gives exactly its bytes.
func TestVectors(t *testing.T) {
	vectors := loadVectors(t, vectorDir)
	names := map[string]bool{}
	for _, v := range vectors {
		t.Run(v.String(), func(t *testing.T) {
			if names[v.String()] {
				t.Fatalf("%s:%d: duplicate vector", v.File, v.Line)
			}
			names[v.String()] = true
			msg, n, err := v.split(v.Wire, 0)
			if err != nil || n != len(v.Wire) {
				t.Fatalf("Split(% x) = n %d, err %v; want one whole frame of %d bytes", v.Wire, n, err, len(v.Wire))
			}
			got, err := v.decode(msg)
			if v.Expect != Code_CODE_UNSPECIFIED {
				if ErrorCode(err) != v.Expect {
					t.Fatalf("decode(% x): err %v (code %v); want code %v", msg, err, ErrorCode(err), v.Expect)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode(% x): %v", msg, err)
			}
			want := v.meaning(t)
			if !proto.Equal(got, want) {
				t.Fatalf("decode(% x) = %v; want %v", msg, prototext.Format(got), v.Meaning)
			}
			if !v.Canonical {
				return
			}
			enc, err := v.Framing.AppendMessage(nil, want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, v.Wire) {
				t.Fatalf("AppendMessage(%s):\n got % x\nwant % x", v.Meaning, enc, v.Wire)
			}
		})
	}
}

// TestVectorsRequired pins the vectors that existing implementations agree
// on, so that editing the files cannot silently drop them.
func TestVectorsRequired(t *testing.T) {
	hello := "48656c6c6f2c20576f726c6421"
	want := map[string]string{
		"raw/request/echo-hello":     "0a0f0a0d" + hello,
		"len32/request/echo-hello":   "00000011" + "0a0f0a0d" + hello,
		"varint/request/echo-hello":  "11" + "0a0f0a0d" + hello,
		"raw/request/add-10-20":      "1204080a1014",
		"raw/reply/add-10-20":        "1202081e",
		"len32/request/add-10-20":    "00000006" + "1204080a1014",
		"len32/reply/add-10-20":      "00000004" + "1202081e",
		"varint/request/add-10-20":   "06" + "1204080a1014",
		"varint/reply/add-10-20":     "04" + "1202081e",
		"len32/request/empty-frame":  "00000000",
		"varint/request/empty-frame": "00",
	}
	got := map[string]string{}
	for _, v := range loadVectors(t, vectorDir) {
		got[v.String()] = hex.EncodeToString(v.Wire)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("vector %s = %q; want %q", name, got[name], w)
		}
	}
}

// TestVectorsStream feeds all vectors of one framing and direction through
// a Decoder as one stream, under readers that cut it differently.
func TestVectorsStream(t *testing.T) {
	vectors := loadVectors(t, vectorDir)
	readers := map[string]func(io.Reader) io.Reader{
		"whole":        func(r io.Reader) io.Reader { return r },
		"one-byte":     iotest.OneByteReader,
		"half":         iotest.HalfReader,
		"data-eof":     iotest.DataErrReader,
		"one-byte-eof": func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(r)) },
	}
	for _, f := range Framings {
		for _, dir := range []string{"request", "reply"} {
			var stream []byte
			var want []vector
			for _, v := range vectors {
				if v.Framing == f && v.Direction == dir {
					stream = append(stream, v.Wire...)
					want = append(want, v)
				}
			}
			for rname, wrap := range readers {
				t.Run(fmt.Sprintf("%s/%s/%s", f, dir, rname), func(t *testing.T) {
					d := NewDecoder(wrap(bytes.NewReader(stream)), f, 0)
					if dir == "reply" {
						d = NewReplyDecoder(wrap(bytes.NewReader(stream)), f, 0)
					}
					for _, v := range want {
						msg, err := d.Next()
						if err != nil {
							t.Fatalf("before %s: %v", v.Name, err)
						}
						wmsg, _, _ := v.split(v.Wire, 0)
						if !bytes.Equal(msg, wmsg) {
							t.Fatalf("%s: got % x; want % x", v.Name, msg, wmsg)
						}
					}
					if _, err := d.Next(); !errors.Is(err, io.EOF) {
						t.Fatalf("after the last vector: err %v; want io.EOF", err)
					}
				})
			}
		}
	}
}
