package reference

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"echoadd/protocol"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

// testEngine is the engine of the current run of the tests: TestMain runs
// them all once per engine (or only on the one ECHOADD_TEST_ENGINE names),
// and every Server the tests make uses it.
var testEngine string

// engines are the engines this system has.
func engines() []string {
	if DefaultEngine == EngineEpoll {
		return []string{EngineGoroutine, EngineEpoll}
	}
	return []string{EngineGoroutine}
}

func TestMain(m *testing.M) {
	if os.Getenv(childServerEnv) != "" {
		os.Exit(serveAsChild())
	}
	run := engines()
	if e := os.Getenv("ECHOADD_TEST_ENGINE"); e != "" {
		run = []string{e}
	}
	code := 0
	for _, e := range run {
		testEngine = e
		fmt.Printf("--- reference tests on the %s engine\n", e)
		if c := m.Run(); c != 0 {
			code = c
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Named durations. Each bounds a wait that normally ends in milliseconds;
// they are generous because the machine is shared.
const (
	ioDeadline   = 10 * time.Second       // every client read and write
	eventually   = 10 * time.Second       // polling for a condition
	pollInterval = 10 * time.Millisecond  // between polls
	shortTimeout = 300 * time.Millisecond // timeouts under test
)

// start serves s on a fresh 127.0.0.1:0 listener. At cleanup it closes s,
// checks that Serve returned ErrServerClosed and that no goroutine is left.
func start(t *testing.T, s *Server) string {
	t.Helper()
	if s.Engine == "" {
		s.Engine = testEngine
	}
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs last
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// client is a test client built on net.Conn and the protocol codec.
type client struct {
	t   testing.TB
	nc  net.Conn
	f   protocol.Framing
	enc *protocol.Encoder
	dec *protocol.Decoder
}

func dial(t testing.TB, addr string, f protocol.Framing) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioDeadline)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, f: f, enc: protocol.NewEncoder(nc, f), dec: protocol.NewDecoder(nc, f, 4<<20)}
}

func (c *client) send(m proto.Message) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(ioDeadline))
	if err := c.enc.Encode(m); err != nil {
		c.t.Fatalf("send %v: %v", m, err)
	}
}

func (c *client) write(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(ioDeadline))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write %x: %v", b, err)
	}
}

// next reads one reply, or returns the read error.
func (c *client) next() (*protocol.ServerMessage, error) {
	c.nc.SetReadDeadline(time.Now().Add(ioDeadline))
	msg, err := c.nextFrame()
	if err != nil {
		return nil, err
	}
	return protocol.DecodeReply(msg)
}

// nextFrame delimits a reply. Replies use fields 1 to 3; raw Split only
// counts 1 and 2 as messages, so in raw framing field 3 is read by hand.
func (c *client) nextFrame() ([]byte, error) {
	if c.f != protocol.Raw {
		return c.dec.Next()
	}
	return readRawReply(c.nc)
}

// readRawReply reads one raw reply a byte at a time: tag (one byte for
// fields 1-3), varint length, body.
func readRawReply(r io.Reader) ([]byte, error) {
	var msg []byte
	one := make([]byte, 1)
	readByte := func() error {
		if _, err := io.ReadFull(r, one); err != nil {
			if len(msg) > 0 && errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		msg = append(msg, one[0])
		return nil
	}
	if err := readByte(); err != nil {
		return nil, err
	}
	var size, shift uint
	for {
		if err := readByte(); err != nil {
			return nil, err
		}
		size |= uint(msg[len(msg)-1]&0x7f) << shift
		shift += 7
		if msg[len(msg)-1] < 0x80 {
			break
		}
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	return append(msg, body...), nil
}

func (c *client) reply() *protocol.ServerMessage {
	c.t.Helper()
	m, err := c.next()
	if err != nil {
		c.t.Fatalf("reading a reply: %v", err)
	}
	return m
}

func (c *client) expect(want *protocol.ServerMessage) {
	c.t.Helper()
	if got := c.reply(); !proto.Equal(got, want) {
		c.t.Fatalf("reply = %v, want %v", brief(got), brief(want))
	}
}

func (c *client) expectEcho(content string) { c.t.Helper(); c.expect(protocol.EchoReply(content)) }
func (c *client) expectAdd(sum int32)       { c.t.Helper(); c.expect(protocol.AddReply(sum)) }

func (c *client) roundTrip(content string) {
	c.t.Helper()
	c.send(protocol.EchoRequest(content))
	c.expectEcho(content)
}

func (c *client) expectError(code protocol.Code) {
	c.t.Helper()
	got := c.reply()
	if got.GetError().GetCode() != code {
		c.t.Fatalf("reply = %v, want Error %v", brief(got), code)
	}
}

// expectClosed reads until the server closes the connection: EOF or a reset,
// with nothing else before it.
func (c *client) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(ioDeadline))
	var b [1]byte
	n, err := c.nc.Read(b[:])
	switch {
	case n > 0:
		c.t.Fatalf("got byte %02x, want the connection closed", b[0])
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.t.Fatalf("connection still open after %v, want it closed", ioDeadline)
	case err == nil:
		c.t.Fatalf("empty read, want the connection closed")
	}
}

func (c *client) closeWrite() {
	c.t.Helper()
	if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
		c.t.Fatal(err)
	}
}

// brief prints a reply without a 1 MiB echo in it.
func brief(m *protocol.ServerMessage) string {
	if s := m.GetEchoMessage().GetContent(); len(s) > 64 {
		return fmt.Sprintf("echo of %d bytes", len(s))
	}
	return fmt.Sprint(m)
}

// frame puts body behind f's length prefix.
func frame(f protocol.Framing, body []byte) []byte { return f.AppendFrame(nil, body) }

func encode(t testing.TB, f protocol.Framing, m proto.Message) []byte {
	t.Helper()
	b, err := f.AppendMessage(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls cond until it holds or eventually passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %v", what, eventually)
		}
		time.Sleep(pollInterval)
	}
}

func TestServerWireVectors(t *testing.T) {
	for _, v := range wireVectors {
		t.Run(v.name, func(t *testing.T) {
			addr := start(t, &Server{Framing: v.framing})
			c := dial(t, addr, v.framing)
			c.write(mustHex(t, v.request))
			want := mustHex(t, v.reply)
			got := make([]byte, len(want))
			c.nc.SetReadDeadline(time.Now().Add(ioDeadline))
			if _, err := io.ReadFull(c.nc, got); err != nil {
				t.Fatalf("reading the reply: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("reply = %x, want %x", got, want)
			}
		})
	}
}

func TestEchoAndAdd(t *testing.T) {
	for _, f := range protocol.Framings {
		t.Run(f.String(), func(t *testing.T) {
			addr := start(t, &Server{Framing: f})
			c := dial(t, addr, f)
			for _, s := range []string{"Hello, World!", "", "héllo, 世界", "a\x00b", strings.Repeat("long ", 2000)} {
				c.roundTrip(s)
			}
			for _, tc := range []struct{ a, b, sum int32 }{{10, 20, 30}, {-5, 2, -3}, {2147483647, 1, -2147483648}, {0, 0, 0}} {
				c.send(protocol.AddRequestOf(tc.a, tc.b))
				c.expectAdd(tc.sum)
			}
		})
	}
}

func TestRawRequestInPieces(t *testing.T) {
	addr := start(t, &Server{})
	c := dial(t, addr, protocol.Raw)
	for _, b := range encode(t, protocol.Raw, protocol.EchoRequest("Hello, World!")) {
		c.write([]byte{b})
	}
	c.expectEcho("Hello, World!")
}

func TestRequestsTogether(t *testing.T) {
	for _, f := range protocol.Framings {
		t.Run(f.String(), func(t *testing.T) {
			addr := start(t, &Server{Framing: f})
			c := dial(t, addr, f)
			var batch []byte
			for i := range 16 {
				batch = append(batch, encode(t, f, protocol.EchoRequest(fmt.Sprint("request ", i)))...)
				batch = append(batch, encode(t, f, protocol.AddRequestOf(int32(i), 1))...)
			}
			c.write(batch)
			for i := range 16 {
				c.expectEcho(fmt.Sprint("request ", i))
				c.expectAdd(int32(i) + 1)
			}
		})
	}
}

// echoOfSize is an echo request whose encoding is exactly size bytes.
func echoOfSize(t *testing.T, size int) *protocol.ClientMessage {
	for n := size; n > 0; n-- {
		m := protocol.EchoRequest(strings.Repeat("x", n))
		if got := proto.Size(m); got == size {
			return m
		} else if got < size {
			break
		}
	}
	t.Fatalf("no echo request of %d bytes", size)
	return nil
}

func TestMaxMessageSize(t *testing.T) {
	for _, f := range protocol.Framings {
		t.Run(f.String(), func(t *testing.T) {
			addr := start(t, &Server{Framing: f})
			c := dial(t, addr, f)
			largest := echoOfSize(t, protocol.DefaultMaxMessageSize)
			c.send(largest)
			c.expect(protocol.EchoReply(largest.GetEchoMessage().GetContent()))
			c.roundTrip("still usable")

			c.send(echoOfSize(t, protocol.DefaultMaxMessageSize+1))
			c.expectError(protocol.Code_CODE_TOO_LARGE)
			c.expectClosed()

			dial(t, addr, f).roundTrip("others still served")
		})
	}
}

// TestTooLargeClientFinishesWriting: after the Error reply to a too large
// prefix the server reads and drops the rest for a while before it closes,
// so that the client's write of the body succeeds instead of being reset.
func TestTooLargeClientFinishesWriting(t *testing.T) {
	addr := start(t, &Server{Framing: protocol.Len32, MaxMessageSize: protocol.MinMaxMessageSize})
	c := dial(t, addr, protocol.Len32)
	body := make([]byte, 1<<20)
	c.write(frame(protocol.Len32, body)[:4])
	c.expectError(protocol.Code_CODE_TOO_LARGE)
	for chunk := range slices.Chunk(body, 64<<10) {
		c.write(chunk)
	}
	c.closeWrite()
	c.expectClosed()
}

func TestMaxMessageSizeSetting(t *testing.T) {
	addr := start(t, &Server{Framing: protocol.Len32, MaxMessageSize: protocol.MinMaxMessageSize})
	c := dial(t, addr, protocol.Len32)
	c.send(echoOfSize(t, protocol.MinMaxMessageSize))
	c.reply()
	c.send(echoOfSize(t, protocol.MinMaxMessageSize+1))
	c.expectError(protocol.Code_CODE_TOO_LARGE)
	c.expectClosed()
}

// TestMalformed sends bad bytes followed by a valid echo, half-closes and
// reads every reply up to EOF.
func TestMalformed(t *testing.T) {
	const echoed = "after"
	errorReply := func(code protocol.Code) string { return "error " + code.String() }
	invalidUTF8 := mustHex(t, "0a030a01ff")
	tests := []struct {
		name    string
		framing protocol.Framing
		bad     []byte
		want    []string // "error CODE_*" or "echo", in order, then EOF
	}{
		{"raw deadbeef", protocol.Raw, mustHex(t, "deadbeef"), []string{errorReply(protocol.Code_CODE_FRAMING)}},
		{"raw 00ff80", protocol.Raw, mustHex(t, "00ff80"), []string{errorReply(protocol.Code_CODE_FRAMING)}},
		{"raw unknown field only", protocol.Raw, mustHex(t, "2801"), []string{"echo"}},
		{"raw invalid UTF-8", protocol.Raw, invalidUTF8, []string{errorReply(protocol.Code_CODE_MALFORMED), "echo"}},
	}
	for _, f := range []protocol.Framing{protocol.Len32, protocol.Varint} {
		tests = append(tests,
			struct {
				name    string
				framing protocol.Framing
				bad     []byte
				want    []string
			}{f.String() + " deadbeef", f, frame(f, mustHex(t, "deadbeef")), []string{errorReply(protocol.Code_CODE_MALFORMED), "echo"}},
			struct {
				name    string
				framing protocol.Framing
				bad     []byte
				want    []string
			}{f.String() + " 00ff80", f, frame(f, mustHex(t, "00ff80")), []string{errorReply(protocol.Code_CODE_MALFORMED), "echo"}},
			struct {
				name    string
				framing protocol.Framing
				bad     []byte
				want    []string
			}{f.String() + " no oneof", f, frame(f, nil), []string{errorReply(protocol.Code_CODE_EMPTY_REQUEST), "echo"}},
			struct {
				name    string
				framing protocol.Framing
				bad     []byte
				want    []string
			}{f.String() + " invalid UTF-8", f, frame(f, invalidUTF8), []string{errorReply(protocol.Code_CODE_MALFORMED), "echo"}},
		)
	}
	tests = append(tests, struct {
		name    string
		framing protocol.Framing
		bad     []byte
		want    []string
	}{"varint prefix longer than 10 bytes", protocol.Varint, mustHex(t, "ffffffffffffffffffff01"), []string{errorReply(protocol.Code_CODE_FRAMING)}})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := start(t, &Server{Framing: tt.framing})
			bystander := dial(t, addr, tt.framing)
			bystander.roundTrip("before")

			c := dial(t, addr, tt.framing)
			c.write(append(tt.bad, encode(t, tt.framing, protocol.EchoRequest(echoed))...))
			c.closeWrite()
			var got []string
			for {
				m, err := c.next()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						t.Fatalf("after replies %v: %v, want EOF", got, err)
					}
					break
				}
				switch {
				case m.GetError() != nil:
					got = append(got, errorReply(m.GetError().GetCode()))
				case m.GetEchoMessage().GetContent() == echoed:
					got = append(got, "echo")
				default:
					t.Fatalf("success reply %v to malformed input %x (EA-MAL-2)", m, tt.bad)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("replies = %v, want %v", got, tt.want)
			}

			bystander.roundTrip("after")               // EA-MAL-1
			dial(t, addr, tt.framing).roundTrip("new") // EA-MAL-1
		})
	}
}

func TestHalfClose(t *testing.T) {
	for _, f := range protocol.Framings {
		t.Run(f.String(), func(t *testing.T) {
			addr := start(t, &Server{Framing: f})
			c := dial(t, addr, f)
			c.write(append(encode(t, f, protocol.EchoRequest("one")), encode(t, f, protocol.AddRequestOf(1, 2))...))
			c.closeWrite()
			c.expectEcho("one")
			c.expectAdd(3)
			c.expectClosed()
		})
	}
}

func TestConcurrentClients(t *testing.T) {
	addr := start(t, &Server{Framing: protocol.Len32})
	var wg sync.WaitGroup
	for i := range 100 {
		c := dial(t, addr, protocol.Len32)
		wg.Go(func() {
			for j := range 10 {
				if err := c.enc.Encode(protocol.AddRequestOf(int32(i), int32(j))); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				m, err := c.next()
				if got := m.GetAddResponse().GetResult(); err != nil || got != int32(i+j) {
					t.Errorf("client %d: %d+%d = %v, %v", i, i, j, m, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMaxConns(t *testing.T) {
	addr := start(t, &Server{MaxConns: 2})
	first := dial(t, addr, protocol.Raw)
	first.roundTrip("first")
	second := dial(t, addr, protocol.Raw)
	second.roundTrip("second")

	over := dial(t, addr, protocol.Raw)
	over.expectError(protocol.Code_CODE_OVERLOADED)
	over.expectClosed()
	first.roundTrip("first still served")

	first.nc.Close()
	waitFor(t, "served after a slot was freed", func() bool {
		c := dial(t, addr, protocol.Raw)
		defer c.nc.Close()
		c.send(protocol.EchoRequest("third"))
		m, err := c.next()
		return err == nil && m.GetEchoMessage().GetContent() == "third"
	})
}

// buffered is what s's connections hold against MaxBuffered now.
func (s *Server) buffered() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.budget.Used()
}

// TestMaxBuffered: the bytes buffered for partial requests are bounded
// across connections: a request that would take them beyond MaxBuffered
// gets Error CODE_OVERLOADED and a close, everyone else is served, and the
// bytes come back once the requests are done.
func TestMaxBuffered(t *testing.T) {
	for _, f := range protocol.Framings {
		t.Run(f.String(), func(t *testing.T) {
			var logs lockedBuffer
			s := &Server{Framing: f, MaxBuffered: 600 << 10, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			addr := start(t, s)
			large := echoOfSize(t, 300<<10)
			wire := encode(t, f, large)
			const rest = 10

			first := dial(t, addr, f)
			first.write(wire[:len(wire)-rest])
			waitFor(t, "the first request buffered", func() bool { return s.buffered() >= int64(len(wire)-rest) })
			second := dial(t, addr, f)
			second.write(wire[:len(wire)-rest])
			second.expectError(protocol.Code_CODE_OVERLOADED)
			second.expectClosed()
			dial(t, addr, f).roundTrip("small requests served meanwhile")

			first.write(wire[len(wire)-rest:])
			first.expect(protocol.EchoReply(large.GetEchoMessage().GetContent()))
			first.roundTrip("the connection goes on")
			second.nc.Close()
			waitFor(t, "the bytes given back", func() bool { return s.buffered() == 0 })

			third := dial(t, addr, f)
			third.send(large)
			third.expect(protocol.EchoReply(large.GetEchoMessage().GetContent()))

			// Bytes held for a client that leaves mid-request, or without
			// taking its replies, come back too.
			gone := dial(t, addr, f)
			gone.write(wire[:len(wire)-rest])
			waitFor(t, "the partial request buffered", func() bool { return s.buffered() >= int64(len(wire)-rest) })
			gone.nc.Close()
			waitFor(t, "its bytes given back", func() bool { return s.buffered() == 0 })

			notReading := dial(t, addr, f)
			notReading.nc.(*net.TCPConn).SetReadBuffer(64 << 10)
			wrote := make(chan struct{})
			go func() { // until the server stops reading, and the close below
				defer close(wrote)
				for range 32 {
					if _, err := notReading.nc.Write(wire); err != nil {
						return
					}
				}
			}()
			waitFor(t, "replies held", func() bool { return s.buffered() > 0 })
			notReading.nc.Close()
			<-wrote
			waitFor(t, "their bytes given back", func() bool { return s.buffered() == 0 })

			if want := `level=WARN msg="request refused: the server's buffers are full; connection closed" max_buffered=614400 remote=`; !strings.Contains(logs.String(), want) {
				t.Errorf("logs lack %s:\n%s", want, logs.String())
			}
		})
	}
}

// TestMaxBufferedTwiceTheMaximum: with MaxBuffered at its least (twice
// the maximum message size, as the command line allows), requests of the
// maximum size are served however they arrive: several in one write (a
// read then brings the next ones behind a partial one), or in pieces.
func TestMaxBufferedTwiceTheMaximum(t *testing.T) {
	for _, max := range []int{20000, 40000} {
		for _, f := range protocol.Framings {
			t.Run(fmt.Sprintf("%v/%d", f, max), func(t *testing.T) {
				s := &Server{Framing: f, MaxMessageSize: max, MaxBuffered: int64(2 * max)}
				addr := start(t, s)
				largest := echoOfSize(t, max)
				wire := encode(t, f, largest)
				c := dial(t, addr, f)
				c.write(bytes.Repeat(wire, 3))
				for range 3 {
					c.expect(protocol.EchoReply(largest.GetEchoMessage().GetContent()))
				}
				for piece := range slices.Chunk(bytes.Repeat(wire, 2), 1000) {
					c.write(piece)
				}
				for range 2 {
					c.expect(protocol.EchoReply(largest.GetEchoMessage().GetContent()))
				}
				c.nc.Close()
				waitFor(t, "the bytes given back", func() bool { return s.buffered() == 0 })
			})
		}
	}
}

// TestRefusalLogRateLimited: a flood of connections refused at MaxConns
// (EA-LIM-5) does not flood the log: the first refusal is logged at warn
// level at once, those in the next logWindow only at debug level,
// each, and counted in one warn line when a refusal comes after the window.
func TestRefusalLogRateLimited(t *testing.T) {
	var logs lockedBuffer
	var now atomic.Int64
	s := &Server{
		MaxConns: 1,
		Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		clock:    func() time.Duration { return time.Duration(now.Load()) },
	}
	addr := start(t, s)
	held := dial(t, addr, protocol.Raw)
	held.roundTrip("held")
	refuse := func(n int) {
		t.Helper()
		for range n {
			c := dial(t, addr, protocol.Raw)
			c.expectError(protocol.Code_CODE_OVERLOADED)
			c.expectClosed()
			c.nc.Close()
		}
	}
	count := func(level string) (n int) {
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "level="+level+" ") && strings.Contains(line, "refused") {
				n++
			}
		}
		return n
	}
	check := func(warn, debug int, last string) {
		t.Helper()
		if got := count("WARN"); got != warn {
			t.Errorf("%d warn lines about refusals, want %d", got, warn)
		}
		if got := count("DEBUG"); got != debug {
			t.Errorf("%d debug lines about refusals, want %d", got, debug)
		}
		if !strings.Contains(logs.String(), last) {
			t.Errorf("logs lack %s", last)
		}
		if t.Failed() {
			t.Fatalf("logs:\n%s", logs.String())
		}
	}

	refuse(50)
	check(1, 49, `level=WARN msg="connection refused: at the connection limit" max_conns=1`)
	now.Add(int64(logWindow - time.Millisecond))
	refuse(1)
	check(1, 50, `level=DEBUG msg="connection refused: at the connection limit" max_conns=1 remote=`)
	now.Add(int64(time.Millisecond))
	refuse(1) // the window has passed: one line for the 51 since the first
	check(2, 50, `level=WARN msg="connections refused at the connection limit" refused=51 max_conns=1 in_last=10s`)
	refuse(5) // a new window
	check(2, 55, "")
	held.roundTrip("still served")
	// A flood that stops brings no next refusal: the count is logged at
	// the stop, or once its window has ended (flushDue, every second).
	now.Add(int64(3 * time.Second))
	s.refusals.flushDue()
	check(2, 55, "") // the window is still open
	now.Add(int64(logWindow))
	s.refusals.flushDue()
	check(3, 55, `level=WARN msg="connections refused at the connection limit" refused=5 max_conns=1 in_last=13s`)
	s.refusals.flushDue()
	refuse(2) // the flush opened a window: counted only
	now.Add(int64(3 * time.Second))
	s.Close()
	check(4, 57, `level=WARN msg="connections refused at the connection limit" refused=2 max_conns=1 in_last=3s`)
}

// TestReadTimeout: a client that sends a request a byte at a time, slower
// than the read timeout allows, gets Error CODE_TIMEOUT and is closed; an
// idle client, idle for longer than that, is left alone.
func TestReadTimeout(t *testing.T) {
	addr := start(t, &Server{Framing: protocol.Len32, ReadTimeout: shortTimeout})
	idle := dial(t, addr, protocol.Len32)
	idle.roundTrip("idle")

	began := time.Now()
	loris := dial(t, addr, protocol.Len32)
	req := encode(t, protocol.Len32, protocol.EchoRequest(strings.Repeat("s", 200)))
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		tick := time.NewTicker(shortTimeout / 6)
		defer tick.Stop()
		for _, b := range req {
			if _, err := loris.nc.Write([]byte{b}); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); <-sent }()
	loris.expectError(protocol.Code_CODE_TIMEOUT)
	loris.expectClosed()
	if waited := time.Since(began); waited < shortTimeout {
		t.Errorf("closed after %v, before the read timeout of %v", waited, shortTimeout)
	}
	idle.roundTrip("idle for longer than the read timeout, still served")
}

func TestIdleTimeout(t *testing.T) {
	addr := start(t, &Server{IdleTimeout: shortTimeout})
	c := dial(t, addr, protocol.Raw)
	c.roundTrip("then idle")
	began := time.Now()
	c.expectClosed()
	if waited := time.Since(began); waited < shortTimeout/2 {
		t.Errorf("closed after %v, idle timeout is %v", waited, shortTimeout)
	}
}

// A client that sends requests and never reads the replies keeps its
// connection only until a reply the socket refused has waited WriteTimeout;
// without the timeout the server holds the connection, and its replies, for
// as long as the client likes.
func TestWriteTimeout(t *testing.T) {
	req, err := protocol.Len32.AppendMessage(nil, protocol.EchoRequest(strings.Repeat("x", 64<<10)))
	if err != nil {
		t.Fatal(err)
	}
	// flood writes requests until a write fails or stays blocked for wait:
	// once the server stops reading, the socket buffers fill.
	flood := func(nc net.Conn, wait time.Duration) error {
		for range 4096 { // 256 MiB, far beyond any socket buffer
			nc.SetWriteDeadline(time.Now().Add(wait))
			if _, err := nc.Write(req); err != nil {
				return err
			}
		}
		return errors.New("every request was taken: the server never stopped reading")
	}
	t.Run("closed after the write timeout", func(t *testing.T) {
		var logs lockedBuffer
		addr := start(t, &Server{Framing: protocol.Len32, WriteTimeout: shortTimeout, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		c := dial(t, addr, protocol.Len32)
		err := flood(c.nc, eventually)
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("writing to a server that should close the connection: %v, want a reset or broken pipe", err)
		}
		waitFor(t, "the write timeout's log record", func() bool {
			for line := range strings.Lines(logs.String()) {
				if strings.Contains(line, `level=WARN msg="replies not taken within the write timeout: connection closed"`) &&
					strings.Contains(line, "write_timeout=300ms") && strings.Contains(line, "remote=127.0.0.1:") {
					return true
				}
			}
			return false
		})
		// And the debug line says so, on both engines (TestCloseReasons).
		waitFor(t, "the close logged", func() bool {
			return strings.Contains(logs.String(), fmt.Sprintf(`msg="connection closed" remote=%s why="write timeout"`, c.nc.LocalAddr()))
		})
	})
	t.Run("held without one", func(t *testing.T) {
		addr := start(t, &Server{Framing: protocol.Len32})
		c := dial(t, addr, protocol.Len32)
		if err := flood(c.nc, 3*shortTimeout); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("writing until the server stops reading: %v, want the write to block", err)
		}
		c.expectEcho(strings.Repeat("x", 64<<10)) // still served
	})
}

// A loop that always has more to read never parks, so it never enters
// Go's scheduler. A new client must still be accepted and answered while
// such a load runs (EA-CONC-2): it waited for the end of the load when the
// loop's raw system calls left the runtime's monitor (sysmon) in the deep
// sleep it fell into while the server was idle, and nothing polled Go's
// network poller, where the listener waits. The server runs in a child
// process, because here the test's own goroutines keep the runtime
// polling, and without garbage collection, which would poll it too.
// With one P as well: without the fix the stall showed with two Ps, and a
// loop that yielded with runtime.Gosched instead passed with two and
// stalled with one (the scheduler returns to it at once). And with a
// single flooding connection, which the loop serves alone (waitAlone).
func TestNewClientServedWhileTheLoopNeverParks(t *testing.T) {
	if testEngine != EngineEpoll {
		t.Skip("the epoll engine's loop")
	}
	t.Run("default GOMAXPROCS", func(t *testing.T) { newClientWhileTheLoopNeverParks(t, 4) })
	t.Run("GOMAXPROCS=1", func(t *testing.T) { newClientWhileTheLoopNeverParks(t, 4, "GOMAXPROCS=1") })
	t.Run("one connection", func(t *testing.T) { newClientWhileTheLoopNeverParks(t, 1) })
	t.Run("one connection, GOMAXPROCS=1", func(t *testing.T) { newClientWhileTheLoopNeverParks(t, 1, "GOMAXPROCS=1") })
}

func newClientWhileTheLoopNeverParks(t *testing.T, flooders int, env ...string) {
	addr := startChild(t, env...)
	// Each flooder keeps more requests queued than one read takes (64 KiB),
	// so that every round reads a full buffer and goes again, and reads the
	// replies as they come.
	var batch []byte
	for len(batch) < 256<<10 {
		batch, _ = protocol.Len32.AppendMessage(batch, protocol.EchoRequest("x"))
	}
	var answered atomic.Int64 // bytes of replies
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	var conns []net.Conn
	for range flooders {
		nc, err := net.DialTimeout("tcp", addr, ioDeadline)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		conns = append(conns, nc)
	}
	// Idle long enough for sysmon to fall asleep (it checks every 20 µs to
	// 10 ms), then all at once.
	time.Sleep(100 * time.Millisecond)
	for _, nc := range conns {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				nc.SetWriteDeadline(time.Now().Add(ioDeadline))
				if _, err := nc.Write(batch); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			nc.SetReadDeadline(time.Now().Add(eventually + ioDeadline))
			io.Copy(counter{&answered}, nc)
		}()
	}
	for deadline := time.Now().Add(eventually); answered.Load() < int64(len(batch)); time.Sleep(pollInterval) {
		if time.Now().After(deadline) {
			t.Fatalf("the load did not start: %d bytes of replies in %v", answered.Load(), eventually)
		}
	}
	c := dial(t, addr, protocol.Len32)
	before := answered.Load()
	c.roundTrip("while the load runs")
	if answered.Load() == before {
		t.Fatal("no reply to the load came while the new client waited: the load was not running")
	}
}

// counter counts the bytes written to it.
type counter struct{ n *atomic.Int64 }

func (c counter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// childServerEnv makes the test binary serve instead of testing; see
// startChild.
const childServerEnv = "ECHOADD_TEST_CHILD_SERVER"

// serveAsChild serves Len32 on 127.0.0.1:0 with the epoll engine and no
// timeouts, writes the address on stdout, and stops when stdin closes.
func serveAsChild() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s := &Server{Framing: protocol.Len32, Engine: EngineEpoll}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	fmt.Println(ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "Serve:", err)
		return 1
	}
	return 0
}

// startChild starts serveAsChild in a child process (this test binary,
// without garbage collection, with env added to its environment) and
// returns its address; it stops at cleanup.
func startChild(t *testing.T, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childServerEnv+"=1", "GOGC=off"), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		timer := time.AfterFunc(eventually, func() { cmd.Process.Kill() })
		defer timer.Stop()
		if err := cmd.Wait(); err != nil {
			t.Errorf("child server: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the child server did not say its address: %v", err)
	}
	return strings.TrimSpace(line)
}

// holdingServer's requests block in handle until release is called; started
// receives each request as handling begins. release is idempotent and also
// runs at cleanup, before the server is closed, so that a failing test
// cannot leave a handler blocked.
func holdingServer(t *testing.T, f protocol.Framing) (s *Server, started chan *protocol.ClientMessage, release func()) {
	started = make(chan *protocol.ClientMessage, 16)
	released := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	s = &Server{Framing: f, handle: func(req *protocol.ClientMessage) *protocol.ServerMessage {
		started <- req
		<-released
		return Handle(req)
	}}
	return s, started, release
}

// startHolding starts a holdingServer.
func startHolding(t *testing.T, s *Server, release func()) string {
	addr := start(t, s)
	t.Cleanup(release) // before start's Close
	return addr
}

func listenerClosed(addr string) func() bool {
	return func() bool {
		nc, err := net.DialTimeout("tcp", addr, ioDeadline)
		if err == nil {
			nc.Close()
		}
		return err != nil
	}
}

// TestShutdownIdleClients: idle connections close at once, within a
// grace shorter than the linger a busy connection gets: clients that keep
// their side open do not hold up the stop.
func TestShutdownIdleClients(t *testing.T) {
	s := &Server{ShutdownGrace: lingerTimeout / 2}
	addr := start(t, s)
	var clients []*client
	for range 3 {
		c := dial(t, addr, protocol.Raw)
		c.roundTrip("idle")
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range clients {
		c.expectClosed() // EA-STOP-3
	}
	if !listenerClosed(addr)() {
		t.Error("still accepting after Shutdown (EA-STOP-1)")
	}
}

// TestShutdownRequestsInProgress: Shutdown while one request is being
// handled and another is received whole: both get replies (EA-STOP-2), then
// EOF; a partly received request on another connection is dropped.
func TestShutdownRequestsInProgress(t *testing.T) {
	for _, f := range protocol.Framings {
		t.Run(f.String(), func(t *testing.T) {
			s, started, release := holdingServer(t, f)
			addr := startHolding(t, s, release)
			partial := dial(t, addr, f)
			partial.write(encode(t, f, protocol.EchoRequest("never finished"))[:3])
			c := dial(t, addr, f)
			c.write(append(encode(t, f, protocol.EchoRequest("in progress")), encode(t, f, protocol.AddRequestOf(2, 3))...))
			<-started

			shut := make(chan error, 1)
			go func() { shut <- s.Shutdown(context.Background()) }()
			waitFor(t, "refusing connections", listenerClosed(addr))
			partial.expectClosed()
			release()
			c.expectEcho("in progress")
			c.expectAdd(5)
			c.expectClosed()
			if err := <-shut; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

// TestShutdownRequestInHostBuffers: a request that reached the server's host
// while the connection's goroutine was busy, not yet read when Shutdown
// begins, still gets its reply (EA-STOP-2).
func TestShutdownRequestInHostBuffers(t *testing.T) {
	s, started, release := holdingServer(t, protocol.Len32)
	addr := startHolding(t, s, release)
	c := dial(t, addr, protocol.Len32)
	c.send(protocol.EchoRequest("being handled"))
	<-started
	c.send(protocol.EchoRequest("waiting in the socket")) // the goroutine is not reading now
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	waitFor(t, "refusing connections", listenerClosed(addr))
	release()
	c.expectEcho("being handled")
	c.expectEcho("waiting in the socket")
	c.expectClosed()
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestRemoteOfAResetClient: the debug lines of a connection the client
// reset at once still name it (getpeername fails by then).
func TestRemoteOfAResetClient(t *testing.T) {
	const clients = 20
	var logs lockedBuffer
	addr := start(t, &Server{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	for range clients {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write([]byte{0x0a, 0x05})   // part of a request
		nc.(*net.TCPConn).SetLinger(0) // close sends a reset
		nc.Close()
	}
	closed := func() int { return strings.Count(logs.String(), `msg="connection closed"`) }
	waitFor(t, fmt.Sprintf("%d \"connection closed\" lines", clients), func() bool { return closed() >= clients })
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "msg=\"connection ") && !strings.Contains(line, "remote=127.0.0.1:") {
			t.Errorf("a line that does not name the client: %s", line)
		}
	}
}

// TestClientFaultsLogRateLimited: a client can cause a warning per
// connection (here a raw framing error); a flood of them logs the first at
// once and then a count, as refusals do, not a line each.
func TestClientFaultsLogRateLimited(t *testing.T) {
	const bad = 20
	var logs lockedBuffer
	s := &Server{Framing: protocol.Raw, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	addr := start(t, s)
	for range bad {
		c := dial(t, addr, protocol.Raw)
		c.write([]byte{0x00}) // field number 0: a framing error
		c.expectError(protocol.Code_CODE_FRAMING)
		c.expectClosed()
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil { // logs the count not yet logged
		t.Fatal(err)
	}
	out := logs.String()
	first := strings.Count(out, `level=WARN msg="closing connection after a stream error"`)
	counted := strings.Count(out, fmt.Sprintf(`level=WARN msg="connections closed after stream errors" closed=%d`, bad-1))
	if first != 1 || counted != 1 {
		t.Errorf("%d bad connections: %d lines for one and %d with closed=%d, want 1 and 1; the log:\n%s", bad, first, counted, bad-1, out)
	}
}

// TestShutdownRacingServe: a Shutdown that comes while the first Serve is
// starting stops whatever that Serve started (the epoll engine's loops
// leaked when Serve started them after Shutdown had looked for them).
func TestShutdownRacingServe(t *testing.T) {
	defer goleak.VerifyNone(t)
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := &Server{Engine: testEngine}
		served := make(chan error, 1)
		go func() { served <- s.Serve(l) }()
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve = %v, want ErrServerClosed", err)
		}
	}
}

func TestShutdownGraceForcesClose(t *testing.T) {
	s, started, release := holdingServer(t, protocol.Raw)
	s.ShutdownGrace = shortTimeout
	addr := startHolding(t, s, release)
	c := dial(t, addr, protocol.Raw)
	c.send(protocol.EchoRequest("stuck"))
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	c.expectClosed() // closed by force, while the request is still held
	release()
	err := <-shut
	if forced := (*ForcedCloseError)(nil); !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &forced) || forced.Conns != 1 {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded and 1 connection closed by force", err)
	}
}

func TestShutdownContextForcesClose(t *testing.T) {
	s, started, release := holdingServer(t, protocol.Raw)
	addr := startHolding(t, s, release)
	c := dial(t, addr, protocol.Raw)
	c.send(protocol.EchoRequest("stuck"))
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	waitFor(t, "refusing connections", listenerClosed(addr))
	cancel()
	c.expectClosed()
	release()
	err := <-shut
	if forced := (*ForcedCloseError)(nil); !errors.Is(err, context.Canceled) || !errors.As(err, &forced) || forced.Conns != 1 {
		t.Errorf("Shutdown = %v, want context.Canceled and 1 connection closed by force", err)
	}
}

func TestClose(t *testing.T) {
	s, started, release := holdingServer(t, protocol.Raw)
	addr := startHolding(t, s, release)
	idle := dial(t, addr, protocol.Raw)
	busy := dial(t, addr, protocol.Raw)
	busy.send(protocol.EchoRequest("held"))
	<-started
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	idle.expectClosed()
	busy.expectClosed()
	release() // Close waits for the held goroutine
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if !listenerClosed(addr)() {
		t.Error("still accepting after Close")
	}
}

func TestShutdownIdempotent(t *testing.T) {
	s := &Server{}
	addr := start(t, s)
	dial(t, addr, protocol.Raw).roundTrip("hi")
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := s.Shutdown(context.Background()); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
	wg.Go(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	wg.Wait()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown again: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("Serve after Shutdown left its listener open")
	}
	if err := s.ListenAndServe(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ListenAndServe after Shutdown = %v, want ErrServerClosed", err)
	}
}

func TestListenAndServeAddr(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := &Server{ListenAddr: "127.0.0.1:0", Engine: testEngine}
	if s.Addr() != nil {
		t.Fatalf("Addr before serving = %v, want nil", s.Addr())
	}
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe() }()
	waitFor(t, "listening", func() bool { return s.Addr() != nil })
	dial(t, s.Addr().String(), protocol.Raw).roundTrip("hi")
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("ListenAndServe = %v, want ErrServerClosed", err)
	}
}

// lockedBuffer is a log destination the test reads while the server writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLogging(t *testing.T) {
	var logs lockedBuffer
	s := &Server{Framing: protocol.Varint, MaxConns: 7, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	addr := start(t, s)
	c := dial(t, addr, protocol.Varint)
	c.roundTrip("hi")
	c.nc.Close()
	waitFor(t, "logging the close", func() bool { return strings.Contains(logs.String(), "connection closed") })
	out := logs.String()
	for _, want := range []string{
		`level=INFO msg="listening on ` + addr + `" framing=varint max_message_size=1048576 idle_timeout=0s read_timeout=0s write_timeout=0s max_conns=7`,
		`level=DEBUG msg="connection opened"`,
		`level=DEBUG msg="connection closed"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}

// TestCloseReasons: "connection closed" names the same reason on both
// engines for each way a connection ends.
func TestCloseReasons(t *testing.T) {
	var logs lockedBuffer
	s := &Server{
		Framing:     protocol.Len32,
		IdleTimeout: 2 * shortTimeout,
		ReadTimeout: shortTimeout,
		Logger:      slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	addr := start(t, s)
	reasons := map[*client]string{}

	closed := dial(t, addr, protocol.Len32)
	closed.roundTrip("bye")
	closed.nc.Close()
	reasons[closed] = "client closed"

	cut := dial(t, addr, protocol.Len32)
	cut.write([]byte{0, 0, 0, 9, 0x0a})
	cut.closeWrite()
	reasons[cut] = "client closed inside a request"

	idle := dial(t, addr, protocol.Len32)
	idle.roundTrip("idle")
	reasons[idle] = "idle timeout"

	slow := dial(t, addr, protocol.Len32)
	slow.write([]byte{0, 0, 0, 9, 0x0a})
	reasons[slow] = "read timeout"

	// The server's reason stays when the client then resets.
	reset := dial(t, addr, protocol.Len32)
	reset.write([]byte{0, 0, 0, 9, 0x0a})
	reset.expectError(protocol.Code_CODE_TIMEOUT)
	reset.nc.(*net.TCPConn).SetLinger(0)
	reset.write([]byte{1})
	reset.nc.Close()
	reasons[reset] = "read timeout"

	large := dial(t, addr, protocol.Len32)
	large.write([]byte{0xff, 0xff, 0xff, 0xff})
	large.expectError(protocol.Code_CODE_TOO_LARGE)
	reasons[large] = "protocol: message of 4294967295 bytes is larger than the maximum of 1048576 bytes"

	line := func(c *client, why string) string {
		return fmt.Sprintf("msg=\"connection closed\" remote=%s why=%q", c.nc.LocalAddr(), why)
	}
	for c, why := range reasons {
		waitFor(t, "logged: "+why, func() bool { return strings.Contains(logs.String(), line(c, why)) })
	}

	stopped := dial(t, addr, protocol.Len32)
	stopped.roundTrip("until the stop")
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := line(stopped, "server shutting down"); !strings.Contains(logs.String(), want) {
		t.Errorf("logs lack %s:\n%s", want, logs.String())
	}
	for c := range reasons {
		c.nc.Close()
	}
	stopped.nc.Close()
}

// TestLoggingCloseNamesRemote: the debug lines of a connection's open and
// close carry the same remote=, so that they can be matched, also when the
// client resets the connection (getpeername fails on a reset socket).
func TestLoggingCloseNamesRemote(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "reset"}[reset], func(t *testing.T) { testLoggingCloseNamesRemote(t, reset) })
	}
}

func testLoggingCloseNamesRemote(t *testing.T, reset bool) {
	var logs lockedBuffer
	s := &Server{Framing: protocol.Len32, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	addr := start(t, s)
	c := dial(t, addr, protocol.Len32)
	c.roundTrip("hi")
	remote := c.nc.LocalAddr().String()
	if reset {
		if err := c.nc.(*net.TCPConn).SetLinger(0); err != nil {
			t.Fatal(err)
		}
	}
	c.nc.Close()
	waitFor(t, "logging the close", func() bool { return strings.Contains(logs.String(), "connection closed") })
	out := logs.String()
	for _, want := range []string{
		`msg="connection opened" remote=` + remote,
		`msg="connection closed" remote=` + remote,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}

// TestPeerResetLoggedAtDebug: a client that resets its connection, with or
// without having sent a byte, is no error of the server (EA-TRANS-1): the
// close is logged at debug level and nothing at warn.
func TestPeerResetLoggedAtDebug(t *testing.T) {
	for _, roundTrip := range []bool{false, true} {
		t.Run(map[bool]string{false: "silent", true: "after a request"}[roundTrip], func(t *testing.T) {
			var logs lockedBuffer
			s := &Server{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			addr := start(t, s)
			c := dial(t, addr, protocol.Raw)
			remote := c.nc.LocalAddr().String()
			if roundTrip {
				c.roundTrip("hi")
			}
			waitFor(t, "logging the open", func() bool { return strings.Contains(logs.String(), `msg="connection opened" remote=`+remote) })
			if err := c.nc.(*net.TCPConn).SetLinger(0); err != nil {
				t.Fatal(err)
			}
			c.nc.Close() // RST
			closed := `level=DEBUG msg="connection closed" remote=` + remote
			waitFor(t, "logging the close", func() bool { return strings.Contains(logs.String(), closed) })
			if out := logs.String(); strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
				t.Errorf("a client's reset logged as a server error:\n%s", out)
			}
		})
	}
}
