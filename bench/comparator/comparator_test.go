package comparator

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"echoadd/bench"
	"echoadd/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start serves a comparator on a random loopback port and stops it when the
// test ends.
func start(t *testing.T, f protocol.Framing) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Framing: f}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return l.Addr().String()
}

type client struct {
	t    *testing.T
	conn net.Conn
	enc  *protocol.Encoder
	dec  *bench.ReplyReader // sees field 3 as a reply in raw framing too
}

func dial(t *testing.T, addr string, f protocol.Framing) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, conn: c, enc: protocol.NewEncoder(c, f), dec: bench.NewReplyReader(c, f, 0)}
}

func (c *client) send(m *protocol.ClientMessage) {
	c.t.Helper()
	if err := c.enc.Encode(m); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) reply() *protocol.ServerMessage {
	c.t.Helper()
	b, err := c.dec.Next()
	if err != nil {
		c.t.Fatalf("reading reply: %v", err)
	}
	m, err := protocol.DecodeReply(b)
	if err != nil {
		c.t.Fatalf("decoding reply %x: %v", b, err)
	}
	return m
}

func TestEchoAndAdd(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", 4096) // 64 KiB: crosses buffer boundaries
	for _, f := range protocol.Framings {
		t.Run(f.String(), func(t *testing.T) {
			c := dial(t, start(t, f), f)
			for _, content := range []string{"hello", "", "héllo ✓", "a\x00b", long} {
				c.send(protocol.EchoRequest(content))
				if got := c.reply(); got.GetEchoMessage() == nil || got.GetEchoMessage().GetContent() != content {
					t.Fatalf("echo of %d bytes: got %v", len(content), abbreviate(got))
				}
			}
			for _, tc := range []struct{ a, b, want int32 }{
				{1, 2, 3}, {0, 0, 0}, {-5, 3, -2}, {math.MaxInt32, 1, math.MinInt32}, {math.MinInt32, -1, math.MaxInt32},
			} {
				c.send(protocol.AddRequestOf(tc.a, tc.b))
				if got := c.reply(); got.GetAddResponse() == nil || got.GetAddResponse().GetResult() != tc.want {
					t.Fatalf("%d + %d: got %v, want %d", tc.a, tc.b, got, tc.want)
				}
			}
		})
	}
}

func abbreviate(m *protocol.ServerMessage) string {
	s := m.String()
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Requests written together, and one request written byte by byte, are each
// answered in order (EA-FRAME-3, EA-FRAME-6, EA-CONN-4).
func TestPipelinedAndSplit(t *testing.T) {
	for _, f := range protocol.Framings {
		t.Run(f.String(), func(t *testing.T) {
			c := dial(t, start(t, f), f)
			var batch []byte
			for i := range 16 {
				var err error
				batch, err = f.AppendMessage(batch, protocol.AddRequestOf(int32(i), 100))
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.conn.Write(batch); err != nil {
				t.Fatal(err)
			}
			for i := range 16 {
				if got := c.reply().GetAddResponse().GetResult(); got != int32(i)+100 {
					t.Fatalf("reply %d: got %d", i, got)
				}
			}
			one, err := f.AppendMessage(nil, protocol.EchoRequest("piecewise"))
			if err != nil {
				t.Fatal(err)
			}
			for i := range one {
				if _, err := c.conn.Write(one[i : i+1]); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.reply().GetEchoMessage().GetContent(); got != "piecewise" {
				t.Fatalf("piecewise echo: got %q", got)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		framing protocol.Framing
		body    []byte // framed by the test
		code    protocol.Code
		closes  bool
	}{
		{"invalid UTF-8", protocol.Len32, []byte{0x0a, 0x03, 0x0a, 0x01, 0xff}, protocol.Code_CODE_MALFORMED, false},
		{"empty request", protocol.Len32, []byte{}, protocol.Code_CODE_EMPTY_REQUEST, false},
		{"truncated field", protocol.Varint, []byte{0x0a, 0x05, 0x0a}, protocol.Code_CODE_MALFORMED, false},
		{"raw invalid tag", protocol.Raw, []byte{0x0f}, protocol.Code_CODE_FRAMING, true},
		{"raw field 1 as varint", protocol.Raw, []byte{0x08, 0x01}, protocol.Code_CODE_MALFORMED, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, start(t, tc.framing), tc.framing)
			if err := (protocol.IllegalWriter{W: c.conn}).WriteFrame(tc.framing, uint64(len(tc.body)), tc.body); err != nil {
				t.Fatal(err)
			}
			got := c.reply()
			if got.GetError() == nil || got.GetError().GetCode() != tc.code {
				t.Fatalf("got %v, want Error %v", got, tc.code)
			}
			if tc.closes {
				if _, err := c.dec.Next(); !errors.Is(err, io.EOF) {
					t.Fatalf("after a fatal error: got %v, want EOF", err)
				}
				return
			}
			c.send(protocol.EchoRequest("still there"))
			if got := c.reply().GetEchoMessage().GetContent(); got != "still there" {
				t.Fatalf("after the error: got %q", got)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	for _, f := range []protocol.Framing{protocol.Len32, protocol.Varint} {
		t.Run(f.String(), func(t *testing.T) {
			c := dial(t, start(t, f), f)
			if err := (protocol.IllegalWriter{W: c.conn}).WriteFrame(f, 1<<30, nil); err != nil {
				t.Fatal(err)
			}
			if got := c.reply().GetError().GetCode(); got != protocol.Code_CODE_TOO_LARGE {
				t.Fatalf("got %v, want CODE_TOO_LARGE", got)
			}
		})
	}
}

// A half-close gets the replies due, then EOF (EA-CONN-5).
func TestHalfClose(t *testing.T) {
	c := dial(t, start(t, protocol.Len32), protocol.Len32)
	c.send(protocol.EchoRequest("last"))
	if err := c.conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got := c.reply().GetEchoMessage().GetContent(); got != "last" {
		t.Fatalf("got %q", got)
	}
	if _, err := c.dec.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("got %v, want EOF", err)
	}
}

// Shutdown closes idle connections: the client sees EOF.
func TestShutdownClosesConnections(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Framing: protocol.Raw}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	c := dial(t, l.Addr().String(), protocol.Raw)
	c.send(protocol.EchoRequest("x")) // a round trip: the server has the connection
	c.reply()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := c.dec.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("got %v, want EOF", err)
	}
}

// FuzzDecodeAgreesWithProto: the hand decoder answers any request body as
// the protocol package's reading (proto.Unmarshal, plus the wire-type
// check) does: the same echo or sum, merged and overridden oneof fields
// included, or an Error with the same code.
func FuzzDecodeAgreesWithProto(f *testing.F) {
	cat := func(ms ...*protocol.ClientMessage) []byte {
		var b []byte
		for _, m := range ms {
			e, err := proto.Marshal(m)
			if err != nil {
				f.Fatal(err)
			}
			b = append(b, e...)
		}
		return b
	}
	for _, seed := range [][]byte{
		cat(protocol.EchoRequest("x")),
		cat(protocol.EchoRequest("x"), protocol.AddRequestOf(1, 2)),                    // echo then add
		cat(protocol.AddRequestOf(1, 2), protocol.EchoRequest("y")),                    // add then echo
		cat(protocol.AddRequestOf(7, 0), protocol.AddRequestOf(0, 9)),                  // add merged
		cat(protocol.AddRequestOf(7, 8), protocol.AddRequestOf(1, 0)),                  // add overridden
		cat(protocol.EchoRequest("x"), protocol.EchoRequest("")),                       // echo merged with empty
		append([]byte{0x18, 0x05}, cat(protocol.EchoRequest("z"))...),                  // unknown field skipped
		cat(protocol.AddRequestOf(math.MaxInt32, 1)),                                   // wraps
		{0x0a, 0x03, 0x0a, 0x01, 0xff},                                                 // invalid UTF-8
		{0x0a, 0x02, 0x08, 0x01},                                                       // echo content as varint
		{0x12, 0x02, 0x0a, 0x00},                                                       // add operand as bytes
		{},                                                                             // empty
		{0x0a, 0x05, 0x0a},                                                             // truncated field
		{0x12, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // a as 10-byte varint
	} {
		f.Add(seed)
	}
	h := NewHandler(protocol.Len32, 0)
	f.Fuzz(func(t *testing.T, in []byte) {
		want, wantErr := protocol.DecodeRequest(in)
		reply := h.AppendReply(nil, in)
		body, n, err := protocol.Len32.Split(reply, 0)
		if err != nil || n != len(reply) {
			t.Fatalf("reply % x: %v, or more than one reply", reply, err)
		}
		got, err := protocol.DecodeReply(body)
		if err != nil {
			t.Fatalf("reply % x does not decode: %v", body, err)
		}
		var re *protocol.RequestError
		switch m := want.GetMessage().(type) {
		case nil:
			if !errors.As(wantErr, &re) {
				t.Fatalf("protocol.DecodeRequest(% x) = %v, want a *RequestError", in, wantErr)
			}
			if got.GetError().GetCode() != re.Code {
				t.Fatalf("% x: got %v, want Error %v (%v)", in, got, re.Code, wantErr)
			}
		case *protocol.ClientMessage_EchoMessage:
			if got.GetEchoMessage() == nil || got.GetEchoMessage().GetContent() != m.EchoMessage.GetContent() {
				t.Fatalf("% x: got %v, want echo %q", in, got, m.EchoMessage.GetContent())
			}
		case *protocol.ClientMessage_AddRequest:
			if got.GetAddResponse() == nil || got.GetAddResponse().GetResult() != m.AddRequest.GetA()+m.AddRequest.GetB() {
				t.Fatalf("% x: got %v, want sum of %v", in, got, m.AddRequest)
			}
		}
	})
}
