package protocol

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"
)

// readAll calls Next until it fails and returns the messages (copied) and
// the final error.
func readAll(t *testing.T, d *Decoder) ([][]byte, error) {
	t.Helper()
	var msgs [][]byte
	for range 10000 {
		msg, err := d.Next()
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, bytes.Clone(msg))
	}
	t.Fatal("Decoder.Next never failed")
	return nil, nil
}

// chunkReader returns its data in the given chunk sizes, then the rest, then
// io.EOF; a chunk of 0 is a read that returns (0, nil).
type chunkReader struct {
	data   []byte
	chunks []int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.chunks) > 0 {
		n, r.chunks = min(r.chunks[0], n), r.chunks[1:]
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func TestDecoderEOF(t *testing.T) {
	readers := map[string]func([]byte) io.Reader{
		"whole":    func(b []byte) io.Reader { return bytes.NewReader(b) },
		"one-byte": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"data-eof": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
		"one-byte-data-eof": func(b []byte) io.Reader {
			return iotest.DataErrReader(iotest.OneByteReader(bytes.NewReader(b)))
		},
	}
	for _, tc := range []struct {
		name    string
		framing Framing
		in      string
		msgs    []string
		err     string // errClass of the final error
	}{
		{"empty stream", Raw, "", nil, "eof"},
		{"empty stream", Len32, "", nil, "eof"},
		{"empty stream", Varint, "", nil, "eof"},
		{"one request", Raw, hello, []string{hello}, "eof"},
		{"one request", Len32, "00 00 00 11|" + hello, []string{hello}, "eof"},
		{"one request", Varint, "11|" + hello, []string{hello}, "eof"},
		{"two requests", Raw, "0a 00 12 00", []string{"0a 00", "12 00"}, "eof"},
		{"empty frames", Len32, "00 00 00 00 00 00 00 00", []string{"", ""}, "eof"},
		{"empty frames", Varint, "00 00", []string{"", ""}, "eof"},
		{"cut in the tag", Raw, "0a 00 80", []string{"0a 00"}, "unexpected-eof"},
		{"cut in the body", Raw, "0a 00 0a 0f 0a", []string{"0a 00"}, "unexpected-eof"},
		{"cut in the prefix", Len32, "00 00 00 02 0a 00 00 00", []string{"0a 00"}, "unexpected-eof"},
		{"cut in the body", Len32, "00 00 00 11 0a 0f", nil, "unexpected-eof"},
		{"cut in the prefix", Varint, "02 0a 00 80", []string{"0a 00"}, "unexpected-eof"},
		{"cut in the body", Varint, "11 0a 0f", nil, "unexpected-eof"},
		{"trailing skipped field is a clean end", Raw, "0a 00 28 01", []string{"0a 00"}, "eof"},
		{"trailing partial skipped field", Raw, "0a 00 22 05 aa", []string{"0a 00"}, "unexpected-eof"},
		{"framing error after a request", Raw, "0a 00 0f", []string{"0a 00"}, "framing"},
		{"too large after a request", Len32, "00 00 00 00 ff ff ff ff", []string{""}, "too-large"},
		{"varint over 10 bytes", Varint, "ff ff ff ff ff ff ff ff ff ff 01", nil, "framing"},
	} {
		for rname, reader := range readers {
			t.Run(tc.framing.String()+"/"+tc.name+"/"+rname, func(t *testing.T) {
				d := NewDecoder(reader(unhex(t, tc.in)), tc.framing, 0)
				msgs, err := readAll(t, d)
				if len(msgs) != len(tc.msgs) {
					t.Fatalf("got %d messages (% x); want %d", len(msgs), msgs, len(tc.msgs))
				}
				for i := range msgs {
					if want := unhex(t, tc.msgs[i]); !bytes.Equal(msgs[i], want) {
						t.Errorf("message %d = % x; want % x", i, msgs[i], want)
					}
				}
				if got := errClass(err); got != tc.err {
					t.Fatalf("final error %v (%s); want %s", err, got, tc.err)
				}
				if _, again := d.Next(); again != err && errClass(again) != tc.err {
					t.Errorf("Next after the final error: %v; want %v again", again, err)
				}
			})
		}
	}
}

// TestDecoderReadError checks that an error from the reader comes after the
// messages read with it, and as it is.
func TestDecoderReadError(t *testing.T) {
	boom := errors.New("boom")
	in := unhex(t, "0a 00 12 00 0a")
	d := NewDecoder(iotest.DataErrReader(&errAfter{data: in, err: boom}), Raw, 0)
	msgs, err := readAll(t, d)
	if len(msgs) != 2 || !errors.Is(err, boom) {
		t.Fatalf("got %d messages and %v; want 2 and %v", len(msgs), err, boom)
	}
}

// errAfter returns its data in one read, then err.
type errAfter struct {
	data []byte
	err  error
}

func (r *errAfter) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestDecoderEmptyReads checks that reads returning (0, nil) are retried, a
// bounded number of times.
func TestDecoderEmptyReads(t *testing.T) {
	r := &chunkReader{data: unhex(t, "12 04 08 0a 10 14"), chunks: []int{0, 0, 0, 1, 0, 2, 0, 0}}
	msgs, err := readAll(t, NewDecoder(r, Raw, 0))
	if len(msgs) != 1 || err != io.EOF {
		t.Fatalf("got %d messages and %v; want 1 and io.EOF", len(msgs), err)
	}
	stuck := &chunkReader{data: []byte{0x0a}, chunks: make([]int, 1000)}
	if _, err := NewDecoder(stuck, Raw, 0).Next(); err != io.ErrNoProgress {
		t.Fatalf("reader that never returns data: %v; want io.ErrNoProgress", err)
	}
}

func TestDecoderBuffered(t *testing.T) {
	in := unhex(t, "00 00 00 02 0a 00 | 00 00 00 02 12 00 | 00 00")
	d := NewDecoder(bytes.NewReader(in), Len32, 0)
	if d.Buffered() != 0 {
		t.Fatalf("Buffered before reading = %d; want 0", d.Buffered())
	}
	for i, want := range []int{8, 2} {
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
		if d.Buffered() != want {
			t.Errorf("Buffered after message %d = %d; want %d", i+1, d.Buffered(), want)
		}
	}
	if _, err := d.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("partial prefix then EOF: %v; want io.ErrUnexpectedEOF", err)
	}
}

// failAfterReader returns data once, then fails the test if read again.
type failAfterReader struct {
	t    *testing.T
	data []byte
	done bool
}

func (r *failAfterReader) Read(p []byte) (int, error) {
	if r.done {
		r.t.Error("read again after the length prefix")
		return 0, io.EOF
	}
	r.done = true
	return copy(p, r.data), nil
}

// TestDecoderTooLargeAtOnce checks that a prefix above the limit fails as
// soon as it is read, without reading further or growing the buffer
// (EA-LIM-2).
func TestDecoderTooLargeAtOnce(t *testing.T) {
	for _, tc := range []struct {
		framing Framing
		prefix  string
		size    uint64
	}{
		{Len32, "ff ff ff ff", 0xffffffff},
		{Varint, "ff ff ff ff 0f", 0xffffffff},
		{Raw, "0a ff ff ff ff 0f", 6 + 0xffffffff},
	} {
		t.Run(tc.framing.String(), func(t *testing.T) {
			d := NewDecoder(&failAfterReader{t: t, data: unhex(t, tc.prefix)}, tc.framing, 1<<20)
			_, err := d.Next()
			var tooLarge *TooLargeError
			if !errors.As(err, &tooLarge) || tooLarge.Size != tc.size || tooLarge.Max != 1<<20 {
				t.Fatalf("err %v; want TooLargeError{%d, %d}", err, tc.size, 1<<20)
			}
			if len(d.buf) > initialBufferSize {
				t.Errorf("buffer grew to %d bytes", len(d.buf))
			}
		})
	}
}

// TestDecoderLargeMessages reads messages up to the limit through small
// reads, so the buffer grows and compacts.
func TestDecoderLargeMessages(t *testing.T) {
	const max = 64 << 10
	for _, f := range Framings {
		t.Run(f.String(), func(t *testing.T) {
			var stream []byte
			var want []*ClientMessage
			for _, n := range []int{0, 1, 5000, max - 8, 100, max - 4} {
				m := EchoRequest(strings.Repeat("x", n))
				if proto.Size(m) > max {
					continue
				}
				var err error
				if stream, err = f.AppendMessage(stream, m); err != nil {
					t.Fatal(err)
				}
				want = append(want, m)
			}
			d := NewDecoder(iotest.HalfReader(&chunkReader{data: stream, chunks: []int{3, 1000, 7, 70000}}), f, max)
			for i, w := range want {
				got, err := d.DecodeRequest()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !proto.Equal(got, w) {
					t.Fatalf("message %d: content of %d bytes; want %d", i, len(got.GetEchoMessage().GetContent()), len(w.GetEchoMessage().GetContent()))
				}
			}
			if len(d.buf) > max+MaxPrefixLen {
				t.Errorf("buffer of %d bytes; want at most %d", len(d.buf), max+MaxPrefixLen)
			}
			if _, err := d.Next(); err != io.EOF {
				t.Fatalf("at the end: %v; want io.EOF", err)
			}
		})
	}
}

func TestDecoderHugeMax(t *testing.T) {
	d := NewDecoder(bytes.NewReader(unhex(t, "00 00 00 02 0a 00")), Len32, math.MaxInt)
	if _, err := d.Next(); err != nil {
		t.Fatalf("max = MaxInt: %v", err)
	}
}

// TestDecoderRequestErrorKeepsSync checks that a malformed request leaves
// the stream usable (EA-MAL-4).
func TestDecoderRequestErrorKeepsSync(t *testing.T) {
	for _, tc := range []struct {
		framing Framing
		in      string
	}{
		{Raw, "08 01 | 0a 00"},
		{Len32, "00 00 00 01 ff | 00 00 00 02 0a 00"},
		{Varint, "00 | 02 0a 00"},
	} {
		d := NewDecoder(bytes.NewReader(unhex(t, tc.in)), tc.framing, 0)
		if _, err := d.DecodeRequest(); errClass(err) == "ok" || Fatal(err) {
			t.Errorf("%v: first request: err %v; want a non-fatal RequestError", tc.framing, err)
		}
		if m, err := d.DecodeRequest(); err != nil || m.GetEchoMessage() == nil {
			t.Errorf("%v: second request: %v, %v; want the echo", tc.framing, m, err)
		}
	}
}

func TestReplyDecoder(t *testing.T) {
	in := unhex(t, "1a 07 08 01 12 03 62 61 64 | 28 01 | 12 02 08 1e | 1a 02 48 69")
	d := NewReplyDecoder(iotest.OneByteReader(bytes.NewReader(in)), Raw, 0)
	want := []*ServerMessage{ErrorReply(Code_CODE_MALFORMED, "bad"), AddReply(30), ErrorReply(Code_CODE_UNSPECIFIED, "Hi")}
	for i, w := range want {
		got, err := d.DecodeReply()
		if err != nil || !proto.Equal(got, w) {
			t.Fatalf("reply %d: %v, %v; want %v", i, got, err, w)
		}
	}
	if _, err := d.DecodeReply(); err != io.EOF {
		t.Fatalf("at the end: %v; want io.EOF", err)
	}
}

// writeRecorder records each Write call.
type writeRecorder struct{ writes [][]byte }

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

// TestEncoderOneWrite checks that each message is one Write of exactly its
// frame (EA-FRAME-2).
func TestEncoderOneWrite(t *testing.T) {
	for _, v := range loadVectors(t, vectorDir) {
		if !v.Canonical || v.Expect != Code_CODE_UNSPECIFIED {
			continue
		}
		var w writeRecorder
		e := NewEncoder(&w, v.Framing)
		m := v.meaning(t)
		for range 2 {
			if err := e.Encode(m); err != nil {
				t.Fatalf("%s: %v", v, err)
			}
		}
		if len(w.writes) != 2 || !bytes.Equal(w.writes[0], v.Wire) || !bytes.Equal(w.writes[1], v.Wire) {
			t.Errorf("%s: writes % x; want two writes of % x", v, w.writes, v.Wire)
		}
	}
}

// TestEncoderChangedMessage checks that a message changed after it was
// encoded is encoded afresh, not with sizes cached from before.
func TestEncoderChangedMessage(t *testing.T) {
	for _, f := range Framings {
		var buf bytes.Buffer
		e := NewEncoder(&buf, f)
		m := EchoRequest("a")
		if err := e.Encode(m); err != nil {
			t.Fatal(err)
		}
		m.GetEchoMessage().Content = "a longer content"
		if err := e.Encode(m); err != nil {
			t.Fatal(err)
		}
		d := NewDecoder(&buf, f, 0)
		for _, want := range []string{"a", "a longer content"} {
			got, err := d.DecodeRequest()
			if err != nil || got.GetEchoMessage().GetContent() != want {
				t.Fatalf("%v: got %v, %v; want echo %q", f, got, err, want)
			}
		}
	}
}

func TestEncoderErrors(t *testing.T) {
	var w writeRecorder
	if err := NewEncoder(&w, Raw).Encode(&ServerMessage{}); err != ErrEmptyRawMessage {
		t.Errorf("raw empty message: %v; want ErrEmptyRawMessage", err)
	}
	for _, f := range Framings {
		if err := NewEncoder(&w, f).Encode(EchoRequest("\xff")); err == nil {
			t.Errorf("%v: invalid UTF-8 content encoded without error", f)
		}
		dst := []byte{1, 2, 3}
		if got, err := f.AppendMessage(dst, EchoRequest("\xff")); err == nil || !bytes.Equal(got, dst) {
			t.Errorf("%v: AppendMessage of an invalid message = % x, %v; want dst unchanged and an error", f, got, err)
		}
	}
	if len(w.writes) != 0 {
		t.Errorf("failed encodes wrote % x", w.writes)
	}
	if _, err := Framing(9).AppendMessage(nil, EchoRequest("a")); err == nil {
		t.Error("Framing(9).AppendMessage: no error")
	}
	for _, f := range []Framing{Len32, Varint} {
		var buf bytes.Buffer
		if err := NewEncoder(&buf, f).Encode(&ServerMessage{}); err != nil || buf.Len() != 1+3*b2i(f == Len32) {
			t.Errorf("%v: empty message: % x, %v; want a zero-length frame", f, buf.Bytes(), err)
		}
	}
	boom := errors.New("boom")
	if err := NewEncoder(errWriter{boom}, Len32).Encode(AddReply(1)); err != boom {
		t.Errorf("writer error: %v; want %v", err, boom)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// TestIllegalWriter checks that IllegalWriter writes what it is told, each
// call with one Write.
func TestIllegalWriter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(IllegalWriter) error
		want  string
	}{
		{"bytes", func(w IllegalWriter) error { return w.WriteBytes(unhex(t, "0f ff 00")) }, "0f ff 00"},
		{"no bytes", func(w IllegalWriter) error { return w.WriteBytes(nil) }, ""},
		{"len32 overstated", func(w IllegalWriter) error { return w.WriteFrame(Len32, 100, []byte("ab")) }, "00 00 00 64 61 62"},
		{"len32 0xffffffff", func(w IllegalWriter) error { return w.WriteFrame(Len32, 0xffffffff, nil) }, "ff ff ff ff"},
		{"varint 300", func(w IllegalWriter) error { return w.WriteFrame(Varint, 300, []byte("ab")) }, "ac 02 61 62"},
		{"varint 2^64-1", func(w IllegalWriter) error { return w.WriteFrame(Varint, math.MaxUint64, nil) }, "ff ff ff ff ff ff ff ff ff 01"},
		{"raw ignores declared", func(w IllegalWriter) error { return w.WriteFrame(Raw, 100, []byte("ab")) }, "61 62"},
	} {
		var w writeRecorder
		if err := tc.write(IllegalWriter{W: &w}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if want := unhex(t, tc.want); len(w.writes) != 1 || !bytes.Equal(w.writes[0], want) {
			t.Errorf("%s: writes % x; want one write of % x", tc.name, w.writes, want)
		}
	}
	boom := errors.New("boom")
	if err := (IllegalWriter{W: errWriter{boom}}).WriteBytes([]byte{1}); err != boom {
		t.Errorf("writer error: %v; want %v", err, boom)
	}
}

// testBudget is a Budget of limit bytes, for one goroutine.
type testBudget struct{ limit, used int }

func (b *testBudget) Grow(n int) bool {
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *testBudget) Add(n int) { b.used += n }

func (b *testBudget) Left() int { return max(0, b.limit-b.used) }

// A Decoder whose budget refuses to grow returns the messages already
// buffered, then ErrOverloaded (CODE_OVERLOADED, fatal), and reads no more.
func TestDecoderBudgetRefuses(t *testing.T) {
	var stream []byte
	for _, n := range []int{10, 3000, 20000} {
		stream, _ = Len32.AppendMessage(stream, EchoRequest(strings.Repeat("x", n)))
	}
	r := &chunkReader{data: stream}
	d := NewDecoder(r, Len32, 0)
	b := &testBudget{limit: 16 << 10}
	d.SetBudget(b)
	msgs, err := readAll(t, d)
	if len(msgs) != 2 || !errors.Is(err, ErrOverloaded) {
		t.Fatalf("got %d messages, then %v; want 2, then ErrOverloaded", len(msgs), err)
	}
	if ErrorCode(err) != Code_CODE_OVERLOADED || !Fatal(err) {
		t.Errorf("ErrorCode %v, Fatal %v; want CODE_OVERLOADED, fatal", ErrorCode(err), Fatal(err))
	}
	if b.used > b.limit {
		t.Errorf("budget used %d of %d", b.used, b.limit)
	}
	d.Release()
	if b.used != 0 {
		t.Errorf("after Release the budget holds %d bytes; want 0", b.used)
	}
}

// A large message's buffer is charged while it is read and given back, and
// dropped, once the message is returned and nothing follows it: an idle
// connection keeps no large buffer.
func TestDecoderBudgetGivenBack(t *testing.T) {
	large, _ := Len32.AppendMessage(nil, EchoRequest(strings.Repeat("x", 50000)))
	small, _ := Len32.AppendMessage(nil, EchoRequest("hi"))
	pr, pw := io.Pipe()
	d := NewDecoder(pr, Len32, 0)
	b := &testBudget{limit: 1 << 20}
	d.SetBudget(b)
	go func() {
		pw.Write(large)
		pw.Write(small)
		pw.Close()
	}()
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	if b.used < 50000 {
		t.Fatalf("reading 50 KB took %d bytes of the budget", b.used)
	}
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	if b.used != 0 || len(d.buf) > initialBufferSize {
		t.Fatalf("after the large message: budget holds %d bytes, buffer of %d; want 0, at most %d", b.used, len(d.buf), initialBufferSize)
	}
	if _, err := d.Next(); err != io.EOF {
		t.Fatalf("at the end: %v; want io.EOF", err)
	}
}

// Near the budget's limit a Decoder grows by less than twice, so that a
// message that fits in what is left is read, not refused.
func TestDecoderBudgetNearTheLimit(t *testing.T) {
	msg, _ := Len32.AppendMessage(nil, EchoRequest(strings.Repeat("x", 12000)))
	d := NewDecoder(&chunkReader{data: msg, chunks: []int{1000}}, Len32, 0)
	b := &testBudget{limit: 14 << 10}
	d.SetBudget(b)
	if _, err := d.Next(); err != nil {
		t.Fatalf("a message of %d bytes with a budget of %d: %v", len(msg), b.limit, err)
	}
	if b.used > b.limit || b.used < len(msg) {
		t.Errorf("budget used %d of %d for a message of %d bytes", b.used, b.limit, len(msg))
	}
}
