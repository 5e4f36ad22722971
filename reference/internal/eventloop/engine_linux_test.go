//go:build linux

package eventloop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"echoadd/protocol"
	"echoadd/reference/internal/eventloop"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Named durations: each bounds a wait that normally ends in milliseconds.
const (
	ioDeadline   = 10 * time.Second
	shortTimeout = 200 * time.Millisecond // timeouts under test
)

// protoHandler is the protocol side as the reference wires it: Split, the
// fast path, protocol.DecodeRequest for the rest.
type protoHandler struct {
	f      protocol.Framing
	max    int
	closed atomic.Int64
}

func (h *protoHandler) OnData(c *eventloop.Conn, in, out []byte) (int, []byte, error) {
	consumed := 0
	for len(out) < 64<<10 {
		msg, n, err := h.f.Split(in[consumed:], h.max)
		consumed += n
		if errors.Is(err, protocol.ErrIncomplete) {
			break
		}
		if err != nil {
			out, _ = h.f.AppendMessage(out, protocol.ErrorReplyFor(err))
			return consumed, out, err
		}
		var ok bool
		if out, ok = eventloop.AppendReply(out, h.f, msg); ok {
			continue
		}
		req, err := protocol.DecodeRequest(msg)
		var reply *protocol.ServerMessage
		if err != nil {
			reply = protocol.ErrorReplyFor(err)
		} else if e := req.GetEchoMessage(); e != nil {
			reply = protocol.EchoReply(e.GetContent())
		} else {
			reply = protocol.AddReply(req.GetAddRequest().GetA() + req.GetAddRequest().GetB())
		}
		out, _ = h.f.AppendMessage(out, reply)
	}
	return consumed, out, nil
}

func (h *protoHandler) OnReadTimeout(c *eventloop.Conn, out []byte) []byte {
	out, _ = h.f.AppendMessage(out, protocol.ErrorReply(protocol.Code_CODE_TIMEOUT, ""))
	return out
}

func (h *protoHandler) OnBuffersFull(c *eventloop.Conn, out []byte) []byte {
	out, _ = h.f.AppendMessage(out, protocol.ErrorReplyFor(protocol.ErrOverloaded))
	return out
}

func (h *protoHandler) OnClose(c *eventloop.Conn, err error) { h.closed.Add(1) }

func (h *protoHandler) OnOpen(c *eventloop.Conn) {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		panic(fmt.Sprintf("RemoteAddr() = %v, want a loopback TCP address", c.RemoteAddr()))
	}
}

type server struct {
	e      *eventloop.Engine
	h      *protoHandler
	addr   string
	served chan error
}

// start runs an engine on a fresh 127.0.0.1:0 listener; at cleanup it
// closes the engine and checks that Serve returned ErrClosed.
func start(t *testing.T, f protocol.Framing, cfg eventloop.Config) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, ln, f, cfg)
}

func startOn(t *testing.T, ln net.Listener, f protocol.Framing, cfg eventloop.Config) *server {
	t.Helper()
	h := &protoHandler{f: f, max: 1 << 20}
	cfg.Handler = h
	e, served := serve(t, ln, cfg)
	return &server{e: e, h: h, addr: ln.Addr().String(), served: served}
}

// serve runs an engine with cfg on ln and returns it with what Serve will
// return; at cleanup it closes the engine and checks that Serve returned
// ErrClosed (a test that takes the result first puts it back).
func serve(t *testing.T, ln net.Listener, cfg eventloop.Config) (*eventloop.Engine, chan error) {
	t.Helper()
	e, err := eventloop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.Serve(ln) }()
	t.Cleanup(func() {
		e.Close()
		if err := <-served; !errors.Is(err, eventloop.ErrClosed) {
			t.Errorf("Serve returned %v, want ErrClosed", err)
		}
	})
	return e, served
}

type client struct {
	t   testing.TB
	nc  net.Conn
	f   protocol.Framing
	dec *protocol.Decoder
}

func dial(t testing.TB, addr string, f protocol.Framing) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioDeadline)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(ioDeadline))
	return &client{t: t, nc: nc, f: f, dec: protocol.NewDecoder(nc, f, 4<<20)}
}

func (c *client) frame(m proto.Message) []byte {
	b, err := c.f.AppendMessage(nil, m)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

func (c *client) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) reply() *protocol.ServerMessage {
	c.t.Helper()
	msg, err := c.dec.Next()
	if err != nil {
		c.t.Fatalf("reading a reply: %v", err)
	}
	m, err := protocol.DecodeReply(msg)
	if err != nil {
		c.t.Fatalf("decoding reply %x: %v", msg, err)
	}
	return m
}

func (c *client) expectEcho(content string) {
	c.t.Helper()
	if got := c.reply(); got.GetEchoMessage() == nil || got.GetEchoMessage().GetContent() != content {
		c.t.Fatalf("got %v, want echo of %d bytes", shorten(got), len(content))
	}
}

func (c *client) expectSum(sum int32) {
	c.t.Helper()
	if got := c.reply(); got.GetAddResponse() == nil || got.GetAddResponse().GetResult() != sum {
		c.t.Fatalf("got %v, want add result %d", shorten(got), sum)
	}
}

func (c *client) expectError(code protocol.Code) {
	c.t.Helper()
	if got := c.reply(); got.GetError().GetCode() != code {
		c.t.Fatalf("got %v, want Error %v", shorten(got), code)
	}
}

// expectEOF reads until the server's FIN, which must come with no more bytes.
func (c *client) expectEOF() {
	c.t.Helper()
	if n := c.dec.Buffered(); n > 0 {
		c.t.Fatalf("%d unexpected bytes before EOF", n)
	}
	var b [64]byte
	n, err := c.nc.Read(b[:])
	if n != 0 || err != io.EOF {
		c.t.Fatalf("read = %d bytes (%x), %v; want EOF", n, b[:n], err)
	}
}

func shorten(m *protocol.ServerMessage) string {
	s := fmt.Sprint(m)
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

func TestEchoAndAddInEveryFraming(t *testing.T) {
	for _, f := range protocol.Framings {
		t.Run(f.String(), func(t *testing.T) {
			s := start(t, f, eventloop.Config{Loops: 3})
			var wg sync.WaitGroup
			for i := range 50 {
				c := dial(t, s.addr, f)
				wg.Go(func() {
					for j := range 20 {
						content := fmt.Sprintf("conn %d request %d ü", i, j)
						c.write(c.frame(protocol.EchoRequest(content)))
						c.expectEcho(content)
						c.write(c.frame(protocol.AddRequestOf(int32(i), int32(j))))
						c.expectSum(int32(i + j))
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestPipelinedAndSplitRequests(t *testing.T) {
	for _, f := range protocol.Framings {
		t.Run(f.String(), func(t *testing.T) {
			s := start(t, f, eventloop.Config{ReadBufferSize: 7}) // every request crosses reads
			c := dial(t, s.addr, f)
			var all []byte
			for i := range 16 {
				all = append(all, c.frame(protocol.EchoRequest(strings.Repeat("ab", i)))...)
			}
			c.write(all)
			for i := range 16 {
				c.expectEcho(strings.Repeat("ab", i))
			}
			// One byte per write.
			for _, b := range c.frame(protocol.AddRequestOf(40, 2)) {
				c.write([]byte{b})
			}
			c.expectSum(42)
		})
	}
}

func TestLargeRepliesWithAClientThatReadsLate(t *testing.T) {
	s := start(t, protocol.Len32, eventloop.Config{})
	c := dial(t, s.addr, protocol.Len32)
	content := strings.Repeat("0123456789", 100_000) // 1 MB, far over the socket buffers
	req := c.frame(protocol.EchoRequest(content))
	// Write 8 requests while reading nothing: the engine must stop reading
	// while its replies wait, and resume once they are taken.
	writeDone := make(chan error, 1)
	go func() {
		for range 8 {
			if _, err := c.nc.Write(req); err != nil {
				writeDone <- err
				return
			}
		}
		writeDone <- nil
	}()
	for range 8 {
		c.expectEcho(content)
	}
	if err := <-writeDone; err != nil {
		t.Fatal(err)
	}
	c.write(c.frame(protocol.AddRequestOf(1, 1)))
	c.expectSum(2)
}

func TestHalfCloseGetsTheRepliesDue(t *testing.T) {
	for _, f := range protocol.Framings {
		t.Run(f.String(), func(t *testing.T) {
			s := start(t, f, eventloop.Config{})
			c := dial(t, s.addr, f)
			var all []byte
			for i := range 10 {
				all = append(all, c.frame(protocol.AddRequestOf(int32(i), 1))...)
			}
			c.write(all)
			if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				c.expectSum(int32(i + 1))
			}
			c.expectEOF()
		})
	}
}

func TestFramingErrorRepliesThenCloses(t *testing.T) {
	s := start(t, protocol.Varint, eventloop.Config{})
	c := dial(t, s.addr, protocol.Varint)
	c.write(c.frame(protocol.EchoRequest("before")))
	c.expectEcho("before")
	// A length prefix above the limit, then more bytes the server will not read.
	c.write(append([]byte{0xff, 0xff, 0xff, 0x0f}, bytes.Repeat([]byte{'x'}, 100_000)...))
	c.expectError(protocol.Code_CODE_TOO_LARGE)
	c.expectEOF()
}

func TestMalformedRequestKeepsTheConnection(t *testing.T) {
	s := start(t, protocol.Len32, eventloop.Config{})
	c := dial(t, s.addr, protocol.Len32)
	c.write([]byte{0, 0, 0, 5, 0x0a, 0x03, 0x0a, 0x01, 0xff}) // invalid UTF-8
	c.expectError(protocol.Code_CODE_MALFORMED)
	c.write([]byte{0, 0, 0, 0}) // no oneof
	c.expectError(protocol.Code_CODE_EMPTY_REQUEST)
	c.write(c.frame(protocol.AddRequestOf(2147483647, 1)))
	c.expectSum(-2147483648)
}

func TestReadTimeoutClosesAPartialRequest(t *testing.T) {
	s := start(t, protocol.Len32, eventloop.Config{ReadTimeout: shortTimeout})
	c := dial(t, s.addr, protocol.Len32)
	c.write(c.frame(protocol.EchoRequest("whole")))
	c.expectEcho("whole")
	c.write([]byte{0, 0, 0, 9, 0x0a}) // and nothing more
	c.expectError(protocol.Code_CODE_TIMEOUT)
	c.expectEOF()
}

func TestIdleTimeoutClosesAnIdleConnection(t *testing.T) {
	s := start(t, protocol.Raw, eventloop.Config{IdleTimeout: shortTimeout})
	c := dial(t, s.addr, protocol.Raw)
	c.write(c.frame(protocol.EchoRequest("x")))
	c.expectEcho("x")
	c.expectEOF()
}

func TestMaxConnsRefusesTheNextConnection(t *testing.T) {
	refusal, _ := protocol.Len32.AppendMessage(nil, protocol.ErrorReply(protocol.Code_CODE_OVERLOADED, ""))
	s := start(t, protocol.Len32, eventloop.Config{MaxConns: 2, Overloaded: refusal})
	a, b := dial(t, s.addr, protocol.Len32), dial(t, s.addr, protocol.Len32)
	for _, c := range []*client{a, b} { // both served: a round trip each
		c.write(c.frame(protocol.EchoRequest("in")))
		c.expectEcho("in")
	}
	over := dial(t, s.addr, protocol.Len32)
	over.expectError(protocol.Code_CODE_OVERLOADED)
	over.expectEOF()
	a.nc.Close()
	// a's slot frees once the engine sees its close; a new client then gets
	// served. Bounded: each refused attempt is a round trip.
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("no slot freed after a client closed")
		}
		c := dial(t, s.addr, protocol.Len32)
		c.write(c.frame(protocol.EchoRequest("again")))
		if got := c.reply(); got.GetEchoMessage().GetContent() == "again" {
			break
		}
		c.nc.Close()
	}
}

func TestShutdownAnswersWhatWasReceivedThenCloses(t *testing.T) {
	for _, f := range protocol.Framings {
		t.Run(f.String(), func(t *testing.T) {
			s := start(t, f, eventloop.Config{})
			busy, idle, partial := dial(t, s.addr, f), dial(t, s.addr, f), dial(t, s.addr, f)
			for _, c := range []*client{busy, idle, partial} {
				c.write(c.frame(protocol.EchoRequest("hello")))
				c.expectEcho("hello")
			}
			var all []byte
			for i := range 16 {
				all = append(all, busy.frame(protocol.AddRequestOf(int32(i), 100))...)
			}
			busy.write(all) // on loopback, in the server's socket once Write returns
			partial.write(partial.frame(protocol.EchoRequest("cut short"))[:3])

			ctx, cancel := context.WithTimeout(context.Background(), ioDeadline)
			defer cancel()
			if err := s.e.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if err := <-s.served; !errors.Is(err, eventloop.ErrClosed) {
				t.Fatalf("Serve returned %v, want ErrClosed", err)
			}
			s.served <- eventloop.ErrClosed // for the cleanup
			for i := range 16 {
				busy.expectSum(int32(i + 100))
			}
			busy.expectEOF()
			idle.expectEOF()
			partial.expectEOF()
			if _, err := net.DialTimeout("tcp", s.addr, ioDeadline); err == nil {
				t.Fatal("a connection was accepted after Shutdown")
			}
		})
	}
}

func TestShutdownWaitsForRepliesAClientIsSlowToTake(t *testing.T) {
	s := start(t, protocol.Len32, eventloop.Config{})
	c := dial(t, s.addr, protocol.Len32)
	content := strings.Repeat("z", 1<<20-16)
	c.write(c.frame(protocol.EchoRequest(content)))
	c.write(c.frame(protocol.EchoRequest("second")))
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioDeadline)
		defer cancel()
		shutdown <- s.e.Shutdown(ctx)
	}()
	c.expectEcho(content)
	c.expectEcho("second")
	c.expectEOF()
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestShutdownGivesUpWhenTheContextEnds(t *testing.T) {
	s := start(t, protocol.Len32, eventloop.Config{})
	c := dial(t, s.addr, protocol.Len32)
	c.write(c.frame(protocol.EchoRequest("adopted"))) // before Shutdown, so that it has a connection to give up on
	c.expectEcho("adopted")
	content := strings.Repeat("z", 1<<20-16)
	req := c.frame(protocol.EchoRequest(content))
	go func() { // the client never reads: 8 MB of replies cannot all be written
		for range 8 {
			if _, err := c.nc.Write(req); err != nil {
				return // the server closed
			}
		}
	}()
	// Whether the server is already stuck writing or not, Shutdown returns
	// by the context's end, and every connection is closed after Close.
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	if err := s.e.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) && err != nil {
		t.Fatalf("Shutdown = %v, want nil or DeadlineExceeded", err)
	}
	s.e.Close() // what Shutdown left
	// Either way every connection is closed now.
	c.nc.SetReadDeadline(time.Now().Add(ioDeadline))
	if _, err := io.Copy(io.Discard, c.nc); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("reading until the server closed: %v", err)
	}
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "connection reset") }

func TestCloseClosesEverything(t *testing.T) {
	s := start(t, protocol.Raw, eventloop.Config{})
	c := dial(t, s.addr, protocol.Raw)
	c.write(c.frame(protocol.EchoRequest("x")))
	c.expectEcho("x")
	s.e.Close()
	c.expectEOF()
	if got := s.h.closed.Load(); got != 1 {
		t.Fatalf("OnClose called %d times, want 1", got)
	}
}

// wrapped hides the listener's type, so the engine takes connections over
// through Accept and a duplicated descriptor.
type wrapped struct{ net.Listener }

func TestAdoptsConnectionsOfAWrappedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startOn(t, wrapped{ln}, protocol.Len32, eventloop.Config{})
	for range 3 {
		c := dial(t, s.addr, protocol.Len32)
		c.write(c.frame(protocol.AddRequestOf(1, 2)))
		c.expectSum(3)
	}
}

// pipeListener yields connections that are not sockets.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (p *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}
func (p *pipeListener) Close() error   { p.once.Do(func() { close(p.done) }); return nil }
func (p *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "pipe"} }

func TestFallbackGetsConnectionsThatAreNotSockets(t *testing.T) {
	pl := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	got := make(chan net.Conn, 1)
	h := &protoHandler{f: protocol.Raw, max: 4096}
	e, err := eventloop.New(eventloop.Config{Handler: h, Fallback: func(c net.Conn) { got <- c }})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.Serve(pl) }()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	pl.conns <- a
	if c := <-got; c != a {
		t.Fatalf("Fallback got %v, want the pipe", c)
	}
	e.Close()
	if err := <-served; !errors.Is(err, eventloop.ErrClosed) {
		t.Fatalf("Serve returned %v, want ErrClosed", err)
	}
}

func TestManyIdleConnections(t *testing.T) {
	s := start(t, protocol.Raw, eventloop.Config{Loops: 2})
	clients := make([]*client, 500)
	for i := range clients {
		clients[i] = dial(t, s.addr, protocol.Raw)
		clients[i].write(clients[i].frame(protocol.AddRequestOf(int32(i), 0)))
	}
	for i, c := range clients {
		c.expectSum(int32(i))
	}
	if got := s.e.Conns(); got != len(clients) {
		t.Fatalf("Conns() = %d, want %d", got, len(clients))
	}
}

func TestServeAfterShutdownFailsAndClosesTheListener(t *testing.T) {
	e, err := eventloop.New(eventloop.Config{Handler: &protoHandler{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown of an idle engine: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := e.Serve(ln); !errors.Is(err, eventloop.ErrClosed) {
		t.Fatalf("Serve after Shutdown = %v, want ErrClosed", err)
	}
	// Closed, as Shutdown closes the listeners given before it: a client
	// that connects meanwhile must not wait in a backlog nobody takes.
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on the listener after Serve returned: %v, want net.ErrClosed", err)
	}
	e.Close()
}

// holdingHandler answers every request from another goroutine, once
// release is closed, through Conn.Hold.
type holdingHandler struct {
	protoHandler
	started chan struct{}
	release chan struct{}
	wg      sync.WaitGroup
}

func (h *holdingHandler) OnData(c *eventloop.Conn, in, out []byte) (int, []byte, error) {
	msg, n, err := h.f.Split(in, h.max)
	if err != nil {
		return n, out, nil // these tests send whole, valid requests
	}
	reply, _ := eventloop.AppendReply(nil, h.f, msg)
	p := c.Hold()
	h.wg.Go(func() {
		h.started <- struct{}{}
		<-h.release
		p.Resume(reply, false)
	})
	return n, out, nil
}

func startHolding(t *testing.T, f protocol.Framing) (*server, *holdingHandler, func()) {
	t.Helper()
	h := &holdingHandler{protoHandler: protoHandler{f: f, max: 1 << 20}, started: make(chan struct{}, 16), release: make(chan struct{})}
	e, err := eventloop.New(eventloop.Config{Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{e: e, addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { s.served <- e.Serve(ln) }()
	var once sync.Once
	release := func() { once.Do(func() { close(h.release) }) }
	t.Cleanup(func() {
		release()
		e.Close()
		h.wg.Wait()
		<-s.served
	})
	return s, h, release
}

func TestHeldRequestsKeepTheirOrder(t *testing.T) {
	s, h, release := startHolding(t, protocol.Len32)
	c := dial(t, s.addr, protocol.Len32)
	c.write(append(c.frame(protocol.EchoRequest("first")), c.frame(protocol.AddRequestOf(1, 2))...))
	<-h.started
	release()
	c.expectEcho("first")
	c.expectSum(3)
}

func TestShutdownWaitsForAHeldRequest(t *testing.T) {
	s, h, release := startHolding(t, protocol.Len32)
	partial := dial(t, s.addr, protocol.Len32)
	partial.write([]byte{0, 0})
	c := dial(t, s.addr, protocol.Len32)
	c.write(append(c.frame(protocol.EchoRequest("held")), c.frame(protocol.EchoRequest("next"))...))
	<-h.started
	shut := make(chan error, 1)
	go func() { shut <- s.e.Shutdown(context.Background()) }()
	partial.expectEOF() // while the request is still held
	release()
	c.expectEcho("held")
	c.expectEcho("next")
	c.expectEOF()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestCloseDropsAHeldRequest(t *testing.T) {
	s, h, release := startHolding(t, protocol.Len32)
	c := dial(t, s.addr, protocol.Len32)
	c.write(c.frame(protocol.EchoRequest("held")))
	<-h.started
	s.e.Close()
	c.expectEOF()
	release()
}

func TestSteadyStateAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := start(t, protocol.Len32, eventloop.Config{})
	c := dial(t, s.addr, protocol.Len32)
	req := c.frame(protocol.EchoRequest("0123456789abcdef"))
	reply := make([]byte, len(c.frame(protocol.EchoReply("0123456789abcdef"))))
	roundTrip := func() {
		c.write(req)
		if _, err := io.ReadFull(c.nc, reply); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		roundTrip()
	}
	// Counts every goroutine's allocations, the loops' included.
	if allocs := testing.AllocsPerRun(500, roundTrip); allocs != 0 {
		t.Fatalf("%v allocations per round trip, want 0", allocs)
	}
}

// TestNoReadinessIsLostUnderLoad drives many connections at once with
// bursts of pipelined requests, some split across writes and some larger
// than the loop's read buffer, each ending with a half-close sent right
// after its last burst. A readiness the loop failed to notice would leave a
// client waiting for a reply or for EOF until its deadline.
func TestNoReadinessIsLostUnderLoad(t *testing.T) {
	const conns, bursts = 24, 40
	for _, f := range []protocol.Framing{protocol.Len32, protocol.Varint} {
		t.Run(f.String(), func(t *testing.T) {
			s := start(t, f, eventloop.Config{Loops: 1, ReadBufferSize: 512})
			clients := make([]*client, conns)
			for i := range clients {
				clients[i] = dial(t, s.addr, f)
			}
			errs := make(chan error, conns)
			for i, c := range clients {
				go func() { errs <- c.burst(i, bursts) }()
			}
			for range conns {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// burst is one client of TestNoReadinessIsLostUnderLoad; it reports the
// first error instead of failing the test from its goroutine.
func (c *client) burst(id, bursts int) error {
	for b := range bursts {
		k := 1 + (id*7+b*3)%16
		var all []byte
		var want []string
		for j := range k {
			content := strings.Repeat(string(rune('a'+(id+j)%26)), (id*131+b*17+j*29)%1500)
			m, err := c.f.AppendMessage(all, protocol.EchoRequest(content))
			if err != nil {
				return err
			}
			all = m
			want = append(want, content)
		}
		half := len(all) / 2
		if (id+b)%3 == 0 { // split in two writes
			if _, err := c.nc.Write(all[:half]); err != nil {
				return err
			}
			all = all[half:]
		}
		if _, err := c.nc.Write(all); err != nil {
			return err
		}
		last := b == bursts-1
		if last {
			if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
				return err
			}
		}
		for _, content := range want {
			msg, err := c.dec.Next()
			if err != nil {
				return fmt.Errorf("conn %d burst %d: reading a reply: %w", id, b, err)
			}
			m, err := protocol.DecodeReply(msg)
			if err != nil {
				return err
			}
			if got := m.GetEchoMessage().GetContent(); got != content {
				return fmt.Errorf("conn %d burst %d: got echo of %d bytes, want %d", id, b, len(got), len(content))
			}
		}
	}
	var one [1]byte
	if n, err := c.nc.Read(one[:]); n != 0 || err != io.EOF {
		return fmt.Errorf("conn %d: read = %d, %v after the half-close; want EOF", id, n, err)
	}
	return nil
}

// TestRequestAndHalfCloseTogether sends a request and the FIN right after
// it, many times: the FIN is often queued behind the request by the time
// the loop reads, and the loop must still notice it and close.
func TestRequestAndHalfCloseTogether(t *testing.T) {
	s := start(t, protocol.Len32, eventloop.Config{Loops: 1})
	for i := range 200 {
		c := dial(t, s.addr, protocol.Len32)
		c.write(c.frame(protocol.AddRequestOf(int32(i), 1)))
		if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		c.expectSum(int32(i + 1))
		c.expectEOF()
		c.nc.Close()
	}
}

// orderHandler records the order in which one loop opens connections and
// is given their input, each connection known by the first byte it sends:
// "open", then that byte upper-cased for a connection's first input and as
// sent for the later ones. Its OnData stalls the loop on the first input of
// the connection that sends 'g', until gate is closed: meanwhile the test
// queues input elsewhere.
type orderHandler struct {
	opened        atomic.Int32
	stalled, gate chan struct{}
	newIn         chan struct{} // closed when the connection that sent 'n' is given input
	mu            sync.Mutex
	events        []string
}

func (h *orderHandler) OnOpen(c *eventloop.Conn) {
	h.opened.Add(1)
	h.record("open")
}

func (h *orderHandler) OnData(c *eventloop.Conn, in, out []byte) (int, []byte, error) {
	if c.Context != nil {
		h.record(string([]byte{c.Context.(byte)}))
		return len(in), out, nil
	}
	c.Context = in[0]
	switch in[0] {
	case 'g':
		close(h.stalled)
		<-h.gate
	case 'n':
		defer close(h.newIn)
	}
	h.record(strings.ToUpper(string(in[:1])))
	return len(in), out, nil
}

func (h *orderHandler) record(ev string) {
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
}

func (h *orderHandler) OnReadTimeout(c *eventloop.Conn, out []byte) []byte { return out }
func (h *orderHandler) OnBuffersFull(c *eventloop.Conn, out []byte) []byte { return out }
func (h *orderHandler) OnClose(c *eventloop.Conn, err error)               {}

// A new client's first request is read as soon as its connection is
// accepted, not after the input of every connection that was ready before
// it: first the loop's eventfd readiness, then the new descriptor's, used
// to wait their turns behind all of them, which under 10,000 busy
// connections was tens of milliseconds each.
func TestNewConnectionServedBeforeTheConnectionsReadyEarlier(t *testing.T) {
	// More busy connections than a round's 256 events, with input for
	// three reads each.
	const busy, perBusy = 300, 3 << 10
	h := &orderHandler{stalled: make(chan struct{}), gate: make(chan struct{}), newIn: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := serve(t, ln, eventloop.Config{Handler: h, Loops: 1, ReadBufferSize: 1 << 10})
	var release sync.Once
	open := func() { release.Do(func() { close(h.gate) }) }
	t.Cleanup(open) // before the engine's cleanup: Close waits for the stalled loop

	addr := ln.Addr().String()
	gate := dial(t, addr, protocol.Raw)
	var busyConns []*client
	for range busy {
		busyConns = append(busyConns, dial(t, addr, protocol.Raw))
	}
	waitFor(t, "every connection opened", func() bool { return h.opened.Load() == busy+1 })
	gate.write([]byte("g"))
	<-h.stalled
	for _, c := range busyConns {
		c.write(bytes.Repeat([]byte("b"), perBusy))
	}
	newConn := dial(t, addr, protocol.Raw)
	newConn.write([]byte("n"))
	waitFor(t, "the new connection accepted", func() bool { return e.Conns() == busy+2 })
	open()
	select {
	case <-h.newIn:
	case <-time.After(ioDeadline):
		t.Fatal("the new connection's input was never handled")
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	newAt := slices.Index(h.events, "N")
	before := h.events[:newAt]
	if opened := slices.Index(before[busy+1:], "open") + busy + 1; opened != newAt-1 {
		t.Errorf("the new connection's input was handled after %d inputs of others since it was opened; want at once", newAt-1-opened)
	}
	if n := countOf(before, "B"); n == busy {
		t.Errorf("the new connection's input was handled after the first input of all %d connections whose input was queued before; want before some", n)
	}
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds, failing the test after ioDeadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(ioDeadline); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A loop with one connection waits on that connection's own descriptor
// (waitAlone), where neither its eventfd nor the epoll descriptor's
// deadline reaches it: what they signal must end that wait too.
func TestALoopWaitingOnItsOnlyConnection(t *testing.T) {
	// alone connects and makes a request, then gives the loop time to park
	// (a loop that has not parked yet only makes the check pass vacuously).
	alone := func(t *testing.T, s *server, f protocol.Framing) *client {
		c := dial(t, s.addr, f)
		c.write(c.frame(protocol.EchoRequest("alone")))
		c.expectEcho("alone")
		time.Sleep(20 * time.Millisecond)
		return c
	}
	t.Run("serves a new connection", func(t *testing.T) {
		s := start(t, protocol.Raw, eventloop.Config{Loops: 1})
		a := alone(t, s, protocol.Raw)
		b := dial(t, s.addr, protocol.Raw)
		b.write(b.frame(protocol.EchoRequest("new")))
		b.expectEcho("new")
		a.write(a.frame(protocol.EchoRequest("again")))
		a.expectEcho("again")
	})
	t.Run("closes it at IdleTimeout", func(t *testing.T) {
		s := start(t, protocol.Raw, eventloop.Config{Loops: 1, IdleTimeout: shortTimeout})
		alone(t, s, protocol.Raw).expectEOF()
	})
	t.Run("closes a partial request at ReadTimeout", func(t *testing.T) {
		s := start(t, protocol.Len32, eventloop.Config{Loops: 1, ReadTimeout: shortTimeout})
		c := alone(t, s, protocol.Len32)
		c.write([]byte{0, 0, 0, 9, 0x0a})
		c.expectError(protocol.Code_CODE_TIMEOUT)
		c.expectEOF()
	})
	t.Run("stops at Shutdown", func(t *testing.T) {
		s := start(t, protocol.Raw, eventloop.Config{Loops: 1})
		c := alone(t, s, protocol.Raw)
		ctx, cancel := context.WithTimeout(context.Background(), ioDeadline)
		defer cancel()
		if err := s.e.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		c.expectEOF()
	})
	t.Run("leaves no descriptor open", func(t *testing.T) {
		s := start(t, protocol.Raw, eventloop.Config{Loops: 1})
		before := openFDs(t)
		for range 10 {
			c := alone(t, s, protocol.Raw)
			c.nc.Close()
			waitFor(t, "the connection closed", func() bool { return s.e.Conns() == 0 })
		}
		waitFor(t, fmt.Sprintf("%d descriptors open, as before", before), func() bool { return openFDs(t) == before })
	})
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// Replies the client leaves unread block the connection's output; while
// they do, the loop reads no more of its input. When the client then takes
// them, the rest of the input must be read. The readiness that says so
// comes from re-registering the socket for input, which signals nothing
// when epoll still lists the socket as ready from the round that reported
// it writable: a loop that parked on that signal left 2 MB of requests
// unread until another connection woke it (found by echoadd-bench with
// --pipeline 1024 --payload 64KiB on 4 connections).
func TestInputReadAfterBlockedRepliesDrain(t *testing.T) {
	const requests, size = 120, 60 << 10
	s := start(t, protocol.Len32, eventloop.Config{Loops: 1})
	idle := dial(t, s.addr, protocol.Len32) // a second connection: the loop waits in epoll, not on the one
	idle.write(idle.frame(protocol.EchoRequest("x")))
	idle.expectEcho("x")
	c := dial(t, s.addr, protocol.Len32)
	content := strings.Repeat("p", size)
	var all []byte
	for range requests {
		all, _ = c.f.AppendMessage(all, protocol.EchoRequest(content))
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := c.nc.Write(all)
		wrote <- err
	}()
	time.Sleep(200 * time.Millisecond) // the replies fill both sockets' buffers
	for i := range requests {
		c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		msg, err := c.dec.Next()
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i+1, requests, err)
		}
		if m, err := protocol.DecodeReply(msg); err != nil || len(m.GetEchoMessage().GetContent()) != size {
			t.Fatalf("reply %d: %v", i+1, err)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}
