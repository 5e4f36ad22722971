package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"google.golang.org/protobuf/proto"
	"io"
	"maps"
	"net"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"echoadd/bench/comparator"
	"echoadd/protocol"
	"echoadd/reference"
)

// When BENCH_TEST_LISTEN is set, the test binary is a comparator server:
// the process-control tests start it as a child, so that it has a process
// group of its own whose CPU and memory can be read.
func TestMain(m *testing.M) {
	if addr := os.Getenv("BENCH_TEST_LISTEN"); addr != "" {
		os.Exit(serveComparator(addr, os.Getenv("BENCH_TEST_FRAMING")))
	}
	goleak.VerifyTestMain(m)
}

func serveComparator(addr, framing string) int {
	f, err := protocol.ParseFraming(framing)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s := &comparator.Server{Framing: f}
	if after, err := time.ParseDuration(os.Getenv("BENCH_TEST_CRASH_AFTER")); err == nil {
		time.AfterFunc(after, func() {
			fmt.Fprintln(os.Stderr, "test server: crashing on purpose")
			os.Exit(3)
		})
	}
	if os.Getenv("BENCH_TEST_IGNORE_TERM") != "" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		go func() {
			<-sig
			s.Close()
		}()
	}
	if err := s.Serve(l); !errors.Is(err, comparator.ErrServerClosed) {
		return 1
	}
	return 0
}

func childCommand(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return "BENCH_TEST_LISTEN=127.0.0.1:{port} BENCH_TEST_FRAMING={framing} exec " + ShellQuote(self)
}

// serve runs handler on every connection of a loopback listener until the
// test ends.
func serve(t *testing.T, handler func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	conns := make(chan net.Conn, 1024)
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- c
			go handler(c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// inProcessComparator serves the real comparator until the test ends.
func inProcessComparator(t *testing.T, f protocol.Framing) string {
	t.Helper()
	return serveInProcess(t, &comparator.Server{Framing: f})
}

// serveInProcess serves s on a free loopback port until the test ends, and
// returns its address.
func serveInProcess(t *testing.T, s interface {
	Serve(net.Listener) error
	Close() error
}) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return l.Addr().String()
}

// brokenServer answers like a correct server except where wrong says:
// it may change an echo's content or an add's sum.
func brokenServer(f protocol.Framing, wrongEcho func(string) string, wrongSum func(a, b int32) int32) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		dec := protocol.NewDecoder(c, f, 0)
		enc := protocol.NewEncoder(c, f)
		for {
			req, err := dec.DecodeRequest()
			if err != nil {
				return
			}
			var reply *protocol.ServerMessage
			if e := req.GetEchoMessage(); e != nil {
				reply = protocol.EchoReply(wrongEcho(e.GetContent()))
			} else {
				a := req.GetAddRequest()
				reply = protocol.AddReply(wrongSum(a.GetA(), a.GetB()))
			}
			if enc.Encode(reply) != nil {
				return
			}
		}
	}
}

func TestValidationCatchesWrongReplies(t *testing.T) {
	rightEcho := func(s string) string { return s }
	rightSum := func(a, b int32) int32 { return a + b }
	for _, tc := range []struct {
		name      string
		framing   protocol.Framing
		mix       Mix
		echo      func(string) string
		sum       func(a, b int32) int32
		wantError string // in the first example; "" means no error expected
	}{
		{"correct server", protocol.Len32, Mix{Echo: 1, Add: 1}, rightEcho, rightSum, ""},
		{"wrong sum", protocol.Len32, Mix{Add: 1}, rightEcho, func(a, b int32) int32 { return a + b + 1 }, "want add_response{result:"},
		{"sum not wrapped in 32 bits", protocol.Raw, Mix{Add: 1}, rightEcho,
			func(a, b int32) int32 { return int32(min(max(int64(a)+int64(b), -1<<31), 1<<31-1)) }, "want add_response{result:"},
		{"wrong echo", protocol.Varint, Mix{Echo: 1}, func(s string) string { return strings.ToUpper(s) }, rightSum, "want echo_message{content:"},
		{"stale echo", protocol.Raw, Mix{Echo: 1}, func(string) string { return "0000000000000000" }, rightSum, "want echo_message{content:"},
	} {
		forEachDriver(t, tc.name, func(t *testing.T, d Driver) {
			addr := serve(t, brokenServer(tc.framing, tc.echo, tc.sum))
			res, err := Run(context.Background(), Target{Addr: addr}, Load{
				Framing: tc.framing, Conns: 2, Requests: 200, Mix: tc.mix, Payload: 16, Timeout: 10 * time.Second, Driver: d,
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantError == "" {
				if res.Errors.Total() != 0 || res.Requests != 400 || res.Latency == nil || res.Latency.Max <= 0 {
					t.Fatalf("correct server: %d requests, errors %+v", res.Requests, res.Errors)
				}
				return
			}
			if res.Errors.Invalid == 0 {
				t.Fatalf("no invalid reply counted: %+v", res)
			}
			if len(res.Errors.Examples) == 0 || !strings.Contains(res.Errors.Examples[0], tc.wantError) {
				t.Fatalf("examples %q, want one containing %q", res.Errors.Examples, tc.wantError)
			}
			t.Logf("example: %s", res.Errors.Examples[0])
		})
	}
}

// An Error reply, a reply of the wrong kind, and a closed connection are
// all counted and shown.
func TestErrorRepliesAndClosedConnections(t *testing.T) {
	forEachDriver(t, "", testErrorRepliesAndClosedConnections)
}

func testErrorRepliesAndClosedConnections(t *testing.T, d Driver) {
	errorReplies := serve(t, func(c net.Conn) {
		defer c.Close()
		dec := protocol.NewDecoder(c, protocol.Raw, 0)
		enc := protocol.NewEncoder(c, protocol.Raw)
		for {
			if _, err := dec.Next(); err != nil {
				return
			}
			if enc.Encode(protocol.ErrorReply(protocol.Code_CODE_MALFORMED, "bad")) != nil {
				return
			}
		}
	})
	res, err := Run(context.Background(), Target{Addr: errorReplies}, Load{Framing: protocol.Raw, Conns: 1, Requests: 3, Mix: Mix{Echo: 1}, Driver: d})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors.Invalid != 3 || !strings.Contains(res.Errors.Examples[0], "got error{code: CODE_MALFORMED") {
		t.Fatalf("error replies: %+v", res.Errors)
	}
	// Invalid replies count as requests but have no latency: none is shown,
	// and no ratio makes the server look fast.
	if res.Latency != nil {
		t.Errorf("latency %+v of invalid replies only, want none", *res.Latency)
	}
	if r := NewRatio(res, Result{Latency: &Latency{P50: 1, P90: 1, P99: 1, P999: 1, Max: 1}}); r.P99 != nil || r.Max != nil {
		t.Errorf("latency ratios of a run without valid replies: p99 %v, max %v; want none", r.P99 != nil, r.Max != nil)
	}
	var summary strings.Builder
	writeSummary(&summary, res)
	if !strings.Contains(summary.String(), "latency     none measured") {
		t.Errorf("summary of invalid replies only:\n%s\nwant latency none measured", summary.String())
	}

	closer := serve(t, func(c net.Conn) { c.Close() })
	res, err = Run(context.Background(), Target{Addr: closer}, Load{Framing: protocol.Len32, Conns: 3, Requests: 10, Mix: Mix{Echo: 1}, Driver: d})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors.Connection != 3 || res.Requests != 0 {
		t.Fatalf("closing server: %+v", res)
	}
}

// A run bounded by its duration stops by itself, also when the server never
// answers: the round-trip timeout ends each stuck connection.
func TestBoundedStop(t *testing.T) {
	silent := serve(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(io.Discard, c)
	})
	for _, tc := range []struct {
		name       string
		addr       string
		wantErrors bool
	}{
		{"working server", inProcessComparator(t, protocol.Len32), false},
		{"silent server", silent, true},
	} {
		forEachDriver(t, tc.name, func(t *testing.T, d Driver) {
			type outcome struct {
				res Result
				err error
			}
			done := make(chan outcome, 1)
			go func() {
				res, err := Run(context.Background(), Target{Addr: tc.addr}, Load{
					Framing: protocol.Len32, Conns: 4, Duration: 200 * time.Millisecond, Mix: Mix{Echo: 3, Add: 1},
					Payload: 16, Pipeline: 4, Timeout: 500 * time.Millisecond, Driver: d,
				})
				done <- outcome{res, err}
			}()
			var res Result
			select {
			case o := <-done:
				if o.err != nil {
					t.Fatal(o.err)
				}
				res = o.res
			case <-time.After(30 * time.Second): // generous: the bound is 200 ms + one 500 ms timeout
				t.Fatal("Run did not stop by itself within 30 s")
			}
			// Halfway through, one more client connects and asks for an
			// echo: its failure is a fifth connection error.
			if tc.wantErrors {
				if res.Errors.Connection != 5 || !strings.Contains(res.Errors.Examples[0], "timeout") ||
					res.NewClient == nil || res.NewClient.Served || !strings.Contains(res.NewClient.Error, "timeout") {
					t.Fatalf("silent server: %+v, new client %+v", res.Errors, res.NewClient)
				}
				return
			}
			if res.Errors.Total() != 0 || res.Requests == 0 || res.Elapsed < 0.2 || res.NewClient == nil || !res.NewClient.Served || res.NewClient.LatencyUs <= 0 {
				t.Fatalf("working server: %+v, new client %+v", res, res.NewClient)
			}
		})
	}
}

// Cancelling the context stops a run bounded only by its request count.
func TestContextStopsRun(t *testing.T) {
	forEachDriver(t, "", testContextStopsRun)
}

func testContextStopsRun(t *testing.T, d Driver) {
	addr := inProcessComparator(t, protocol.Raw)
	ctx, cancel := context.WithCancel(context.Background())
	load := Load{Framing: protocol.Raw, Conns: 2, Requests: MaxRequests, Mix: Mix{Echo: 1}, Driver: d}
	done := make(chan Result, 1)
	go func() {
		res, _ := Run(ctx, Target{Addr: addr}, load)
		done <- res
	}()
	cancel()
	select {
	case res := <-done:
		if res.Requests >= 2*MaxRequests {
			t.Fatalf("all requests done: %+v", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop after its context was cancelled")
	}
}

// forEachDriver runs f as a subtest (named name/driver) with each driver
// this system has.
func forEachDriver(t *testing.T, name string, f func(*testing.T, Driver)) {
	drivers := []Driver{DriverGoroutine}
	if epollSupported {
		drivers = append(drivers, DriverEpoll)
	}
	for _, d := range drivers {
		sub := string(d)
		if name != "" {
			sub = name + "/" + sub
		}
		t.Run(sub, func(t *testing.T) { f(t, d) })
	}
}

// Replies that arrive a few bytes at a time, and batches too large for the
// socket to take in one write, are handled by both drivers: every reply is
// checked and counted.
func TestFragmentedRepliesAndLargeBatches(t *testing.T) {
	right := brokenServer(protocol.Varint, func(s string) string { return s }, func(a, b int32) int32 { return a + b })
	dribbler := serve(t, func(c net.Conn) { right(dribbleConn{c}) })
	// A server that reads a whole batch before it answers: a client whose
	// batch the socket did not take must wait for it to be writable, as no
	// reply comes to wake it meanwhile.
	const batch = 64
	batcher := serve(t, func(c net.Conn) {
		defer c.Close()
		dec := protocol.NewDecoder(c, protocol.Len32, 0)
		var out []byte
		for {
			out = out[:0]
			for range batch {
				req, err := dec.DecodeRequest()
				if err != nil {
					return
				}
				out, _ = protocol.Len32.AppendMessage(out, protocol.EchoReply(req.GetEchoMessage().GetContent()))
			}
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	})
	forEachDriver(t, "", func(t *testing.T, d Driver) {
		for _, tc := range []struct {
			name     string
			addr     string
			load     Load
			requests uint64
		}{
			{"fragmented replies", dribbler, Load{Framing: protocol.Varint, Conns: 2, Requests: 20, Mix: Mix{Echo: 1, Add: 1}, Payload: 40}, 40},
			// 64 × 64 KiB in flight per connection: more than a loopback
			// socket takes at once, so writes are partial.
			{"large batches", batcher, Load{Framing: protocol.Len32, Conns: 3, Requests: 2 * batch, Mix: Mix{Echo: 1}, Payload: 64 << 10, Pipeline: batch}, 3 * 2 * batch},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.load.Driver = d
				tc.load.Timeout = 20 * time.Second
				res, err := Run(context.Background(), Target{Addr: tc.addr}, tc.load)
				if err != nil {
					t.Fatal(err)
				}
				if res.Errors.Total() != 0 || res.Requests != tc.requests || res.Driver != string(d) {
					t.Fatalf("got %d requests by %s, errors %+v; want %d by %s", res.Requests, res.Driver, res.Errors, tc.requests, d)
				}
			})
		}
	})
}

// A server that answers every request twice gets every reply after the
// first counted as invalid (each is the stale copy of the one before),
// with both drivers, and a run whose connections end at different times
// still ends when the last does.
// A reply nobody asked for (here every reply is sent twice, in one write)
// is caught whatever the content: after it no reply can be matched to its
// request, so the connection ends there.
func TestRepliesNobodyAskedFor(t *testing.T) {
	twice := serve(t, func(c net.Conn) {
		defer c.Close()
		dec := protocol.NewDecoder(c, protocol.Len32, 0)
		for {
			req, err := dec.DecodeRequest()
			if err != nil {
				return
			}
			out, _ := protocol.Len32.AppendMessage(nil, protocol.EchoReply(req.GetEchoMessage().GetContent()))
			if _, err := c.Write(append(out, out...)); err != nil {
				return
			}
		}
	})
	forEachDriver(t, "", func(t *testing.T, d Driver) {
		for _, payload := range []int{0, 16} {
			res, err := Run(context.Background(), Target{Addr: twice}, Load{
				Framing: protocol.Len32, Conns: 3, Requests: 20, Mix: Mix{Echo: 1}, Payload: payload, Driver: d, Timeout: 10 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors.Invalid != 3 || res.Errors.Connection != 0 || res.Requests != 6 || !strings.Contains(res.Errors.Examples[0], "nobody asked for") {
				t.Fatalf("payload %d: got %d requests, errors %+v; want per connection one valid reply, then one invalid, nobody asked for", payload, res.Requests, res.Errors)
			}
		}
	})
}

// A server that answers each request with the reply to the one before (a
// stale buffer, or every reply sent twice in writes of their own, which the
// client may read one at a time) is caught by the content, however short:
// each echo differs from the one before from its first byte on.
func TestStaleRepliesCaughtWithShortContent(t *testing.T) {
	stale := serve(t, func(c net.Conn) {
		defer c.Close()
		dec := protocol.NewDecoder(c, protocol.Raw, 0)
		var last string
		for i := 0; ; i++ {
			req, err := dec.DecodeRequest()
			if err != nil {
				return
			}
			content := req.GetEchoMessage().GetContent()
			if i == 0 {
				last = content
			}
			out, _ := protocol.Raw.AppendMessage(nil, protocol.EchoReply(last))
			last = content
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	})
	forEachDriver(t, "", func(t *testing.T, d Driver) {
		for _, payload := range []int{1, 8, 15} {
			res, err := Run(context.Background(), Target{Addr: stale}, Load{
				Framing: protocol.Raw, Conns: 2, Requests: 20, Mix: Mix{Echo: 1}, Payload: payload, Driver: d, Timeout: 10 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors.Invalid != 2*19 || res.Requests != 40 {
				t.Errorf("payload %d: got %d requests, errors %+v; want 40, every reply but the first invalid", payload, res.Requests, res.Errors)
			}
		}
	})
}

// A server that keeps serving the clients it has but leaves a new one
// unanswered (the thread-pool and one-client-at-a-time bug) passes the
// load itself; the client that connects halfway through catches it.
func TestNewClientDuringLoad(t *testing.T) {
	var accepted atomic.Int32
	right := brokenServer(protocol.Len32, func(s string) string { return s }, func(a, b int32) int32 { return a + b })
	firstTwo := serve(t, func(c net.Conn) {
		if accepted.Add(1) > 2 {
			defer c.Close()
			io.Copy(io.Discard, c)
			return
		}
		right(c)
	})
	forEachDriver(t, "", func(t *testing.T, d Driver) {
		accepted.Store(0)
		res, err := Run(context.Background(), Target{Addr: firstTwo}, Load{
			Framing: protocol.Len32, Conns: 2, Duration: 300 * time.Millisecond, Mix: Mix{Echo: 1}, Payload: 16,
			Driver: d, Timeout: 500 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		n := res.NewClient
		if res.Requests == 0 || res.Errors.Invalid != 0 || res.Errors.Connection != 1 || n == nil || n.Served ||
			!strings.Contains(res.Errors.Examples[0], "a new client during the load: reading the reply") {
			t.Fatalf("got %d requests, errors %+v, new client %+v", res.Requests, res.Errors, n)
		}
	})
}

// A run bounded by its request count can end long before half its
// duration: it must not wait for the new client's time, and has no new
// client figure then.
func TestRequestBoundRunDoesNotWaitForTheNewClient(t *testing.T) {
	addr := serve(t, brokenServer(protocol.Raw, func(s string) string { return s }, func(a, b int32) int32 { return a + b }))
	forEachDriver(t, "", func(t *testing.T, d Driver) {
		type outcome struct {
			res Result
			err error
		}
		done := make(chan outcome, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			res, err := Run(ctx, Target{Addr: addr}, Load{
				Framing: protocol.Raw, Conns: 2, Requests: 3, Duration: MaxDuration, Mix: Mix{Echo: 1}, Payload: 16,
				Driver: d, Timeout: 10 * time.Second,
			})
			done <- outcome{res, err}
		}()
		select {
		case o := <-done:
			if o.err != nil {
				t.Fatal(o.err)
			}
			if o.res.Requests != 6 || o.res.Errors.Total() != 0 || o.res.NewClient != nil {
				t.Fatalf("got %d requests, errors %+v, new client %+v; want 6, none, none", o.res.Requests, o.res.Errors, o.res.NewClient)
			}
		case <-time.After(time.Minute):
			cancel()
			<-done
			t.Fatalf("6 requests and no end after a minute: the run waits for the new client's time, %v", MaxDuration/2)
		}
	})
}

// dribbleConn writes three bytes at a time, pausing between them.
type dribbleConn struct{ net.Conn }

func (c dribbleConn) Write(p []byte) (int, error) {
	for i := 0; i < len(p); i += 3 {
		if _, err := c.Conn.Write(p[i:min(i+3, len(p))]); err != nil {
			return i, err
		}
		time.Sleep(50 * time.Microsecond)
	}
	return len(p), nil
}

func TestParseDriver(t *testing.T) {
	if d, err := ParseDriver("goroutine"); err != nil || d != DriverGoroutine {
		t.Fatalf("goroutine: %v, %v", d, err)
	}
	d, err := ParseDriver("epoll")
	if epollSupported != (err == nil) || (err == nil && d != DriverEpoll) {
		t.Fatalf("epoll: %v, %v", d, err)
	}
	if _, err := ParseDriver("threads"); err == nil || !strings.Contains(err.Error(), "use epoll or goroutine") {
		t.Fatalf("threads: %v", err)
	}
	if DefaultDriver() != DriverEpoll && epollSupported {
		t.Fatalf("default driver %s on a system with epoll", DefaultDriver())
	}
}

func TestLoadValidate(t *testing.T) {
	ok := Load{Framing: protocol.Len32, Conns: 1, Duration: time.Second, Mix: Mix{Echo: 1}}
	for _, tc := range []struct {
		name  string
		edit  func(*Load)
		error string
	}{
		{"valid", func(*Load) {}, ""},
		{"no bound", func(l *Load) { l.Duration = 0 }, "a duration or a request count"},
		{"too long", func(l *Load) { l.Duration = MaxDuration + 1 }, "duration must be at most"},
		{"no connections", func(l *Load) { l.Conns = 0 }, "connections must be"},
		{"raw pipelining", func(l *Load) { l.Framing, l.Pipeline = protocol.Raw, 2 }, "pipelining needs a framed mode"},
		{"empty mix", func(l *Load) { l.Mix = Mix{} }, "the mix needs"},
		{"huge payload", func(l *Load) { l.Payload = MaxPayload + 1 }, "payload must be"},
		{"unknown driver", func(l *Load) { l.Driver = "threads" }, `driver "threads" is not available here`},
		{"goroutine driver", func(l *Load) { l.Driver = DriverGoroutine }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ok
			tc.edit(&l)
			err := l.Validate()
			if tc.error == "" && err != nil || tc.error != "" && (err == nil || !strings.Contains(err.Error(), tc.error)) {
				t.Fatalf("got %v, want %q", err, tc.error)
			}
		})
	}
}

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mix
		ok   bool
	}{
		{"1:0", Mix{1, 0}, true}, {"3:1", Mix{3, 1}, true}, {"0:1", Mix{0, 1}, true},
		{"0:0", Mix{}, false}, {"3", Mix{}, false}, {"a:1", Mix{}, false}, {"-1:2", Mix{}, false},
	} {
		got, err := ParseMix(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseMix(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// The JSON report has the documented shape: these keys, these types.
func TestReportJSONShape(t *testing.T) {
	addr := inProcessComparator(t, protocol.Raw)
	res, err := Run(context.Background(), Target{Addr: addr}, Load{Framing: protocol.Raw, Conns: 1, Requests: 50, Mix: Mix{Echo: 1, Add: 1}, Payload: 8})
	if err != nil {
		t.Fatal(err)
	}
	res.CPUNotMeasured = "" // as a child server measured long enough
	cmp := res
	cmp.ServerCPU = &ServerCPU{Seconds: 1, PerRequestUs: 2, UtilisationPc: 3}
	res.ServerCPU = &ServerCPU{Seconds: 2, PerRequestUs: 4, UtilisationPc: 6}
	rep := Report{Machine: ThisMachine(), Server: "s", Comparator: "c", Rows: []Row{{Name: "r", Target: res, Comparator: &cmp, Ratio: NewRatio(res, cmp)}}}
	var buf strings.Builder
	if err := WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(buf.String()), &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(v any) []string {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v is not an object", v)
		}
		var k []string
		for key := range m {
			k = append(k, key)
		}
		slices.Sort(k)
		return k
	}
	want := map[string][]string{
		"top":     {"comparator", "interrupted", "machine", "rows", "server"},
		"machine": {"bench", "cpu_model", "cpus", "go", "shared"},
		"row":     {"comparator", "name", "ratio", "target"},
		"result":  {"conns", "driver", "elapsed_s", "errors", "framing", "latency_us", "mix", "payload_bytes", "pipeline", "requests", "server_cpu", "target", "throughput_rps"},
		"errors":  {"connection_errors", "invalid_replies"},
		"latency": {"max", "p50", "p90", "p99", "p99_9"},
		"cpu":     {"per_request_us", "seconds", "utilisation_pct"},
		"ratio":   {"cpu_per_request", "max", "p50", "p90", "p99", "p99_9", "throughput"},
	}
	row := doc["rows"].([]any)[0]
	result := row.(map[string]any)["target"].(map[string]any)
	got := map[string][]string{
		"top": keys(doc), "machine": keys(doc["machine"]), "row": keys(row), "result": keys(result),
		"errors": keys(result["errors"]), "latency": keys(result["latency_us"]), "cpu": keys(result["server_cpu"]),
		"ratio": keys(row.(map[string]any)["ratio"]),
	}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("%s keys: got %v, want %v", name, got[name], w)
		}
	}
	if r := row.(map[string]any)["ratio"].(map[string]any)["cpu_per_request"]; r != 2.0 {
		t.Errorf("cpu_per_request ratio: got %v, want 2", r)
	}
	if n, ok := result["requests"].(float64); !ok || n != 50 {
		t.Errorf("requests: got %v, want 50", result["requests"])
	}
}

func TestHistogram(t *testing.T) {
	var h Histogram
	for i := 1; i <= 100000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.999, 99900 * time.Microsecond}, {1, 100 * time.Millisecond}} {
		got := h.Quantile(tc.q)
		if diff := float64(got-tc.want) / float64(tc.want); diff < -0.01 || diff > 0.01 {
			t.Errorf("quantile %v: got %v, want %v within 1%%", tc.q, got, tc.want)
		}
	}
	if h.Max() != 100*time.Millisecond || h.Count() != 100000 {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
	var small Histogram
	small.Record(3)
	small.Record(250)
	if small.Quantile(0.5) != 3 || small.Quantile(1) != 250 {
		t.Errorf("small values are exact: got %v %v", small.Quantile(0.5), small.Quantile(1))
	}
	var huge Histogram
	huge.Record(time.Hour)
	if huge.Quantile(0.5) != time.Hour || huge.Max() != time.Hour {
		t.Errorf("a value above the last bucket: got %v", huge.Quantile(0.5))
	}
	for i := range histBuckets - 1 {
		if bucketOf(bucketHigh(i)) != i || bucketOf(bucketHigh(i)+1) != i+1 {
			t.Fatalf("bucket %d: high %d maps to %d", i, bucketHigh(i), bucketOf(bucketHigh(i)))
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	var b []byte
	if len(s)%2 == 1 {
		s = s[:len(s)-1] // a trailing half byte stands for "cut here"
	}
	for i := 0; i < len(s); i += 2 {
		var x byte
		if _, err := fmt.Sscanf(s[i:i+2], "%02x", &x); err != nil {
			t.Fatal(err)
		}
		b = append(b, x)
	}
	return b
}

// A server started here is measured: CPU per request and memory per idle
// connection come from its process group.
func TestChildServerMeasured(t *testing.T) {
	p, err := StartServer(context.Background(), childCommand(t), "len32", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Stop(0); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	res, err := Run(context.Background(), p.Target(), Load{Framing: protocol.Len32, Conns: 2, Duration: MinCPUWindow, Mix: Mix{Echo: 1}, Payload: 16})
	if err != nil {
		t.Fatal(err)
	}
	if res.ServerCPU == nil || res.Errors.Total() != 0 || res.Requests == 0 {
		t.Fatalf("result: %+v", res)
	}
	idle, err := RunIdle(context.Background(), p.Target(), IdleLoad{Framing: protocol.Len32, Conns: 50})
	if err != nil {
		t.Fatal(err)
	}
	if idle.Opened != 50 || idle.StillOpen != 50 || !idle.NewClientServed || idle.RSSBefore == 0 || idle.RSSAfter == 0 {
		t.Fatalf("idle result: %+v", idle)
	}
}

func TestStartServerFailures(t *testing.T) {
	for _, tc := range []struct {
		name, cmd, want string
	}{
		{"no placeholder", "true", "no {port} placeholder"},
		{"exits", "echo oops >&2; exit 3 # {port}", "exited before listening"},
		{"never listens", "exec sleep 60 # {port}", "did not accept connections"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := StartServer(context.Background(), tc.cmd, "raw", nil, 300*time.Millisecond)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if tc.name == "exits" && !strings.Contains(err.Error(), "oops") {
				t.Fatalf("the server's output is missing from %v", err)
			}
		})
	}
}

// A server that ignores SIGTERM is killed after the grace period.
func TestStopKillsAfterGrace(t *testing.T) {
	p, err := StartServer(context.Background(), "BENCH_TEST_IGNORE_TERM=1 "+childCommand(t), "raw", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(200 * time.Millisecond) }()
	select {
	case err = <-stopped:
	case <-time.After(30 * time.Second): // generous: the bound is the 200 ms grace
		t.Fatal("Stop did not return within 30 s")
	}
	if err == nil || !strings.Contains(err.Error(), "still running 200ms after SIGTERM: killed") {
		t.Fatalf("got %v, want a report of SIGKILL", err)
	}
}

// The SVG chart is well-formed XML whatever the names hold.
func TestWriteSVG(t *testing.T) {
	res := Result{Conns: 8, Throughput: 1234}
	cmp := Result{Conns: 8, Throughput: 2345}
	rep := Report{Server: `a<b & "c"`, Rows: []Row{
		{Name: "echo16 c8", Target: res, Comparator: &cmp},
		{Name: "echo16 c64", Target: Result{Conns: 64, Throughput: 999}},
		{Name: "add <x> c8", Target: res},
	}}
	var buf bytes.Buffer
	if err := rep.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	lines := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("invalid XML: %v\n%s", err, buf.String())
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if lines != 3 { // echo16, echo16 (comparator), add <x>
		t.Fatalf("%d lines, want 3:\n%s", lines, buf.String())
	}
}

// Below MinCPUWindow the CPU figure is withheld, with the reason.
func TestServerCPUWindow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window time.Duration
		want   bool
	}{
		{"2 ms", 2 * time.Millisecond, false},
		{"just short", MinCPUWindow - time.Microsecond, false},
		{"100 ticks", MinCPUWindow, true},
		{"5 s", 5 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, why := serverCPU(50*time.Millisecond, tc.window, 1000)
			if (sc != nil) != tc.want || (why == "") != tc.want {
				t.Fatalf("got %+v, %q; want a figure: %v", sc, why, tc.want)
			}
			if sc != nil && (sc.UtilisationPc != 100*0.05/tc.window.Seconds() || sc.PerRequestUs != 50) {
				t.Fatalf("figures: %+v", sc)
			}
		})
	}
}

func TestNewIdleRatio(t *testing.T) {
	measured := func(perConn, newClientUs float64) IdleResult {
		return IdleResult{RSSBefore: 1 << 20, RSSPerConn: perConn, NewClientServed: true, NewClientUs: newClientUs}
	}
	r := NewIdleRatio(measured(3000, 200), measured(1000, 100))
	if r.RSSPerConn == nil || *r.RSSPerConn != 3 || r.NewClient == nil || *r.NewClient != 2 {
		t.Fatalf("ratio: %+v", r)
	}
	if r := NewIdleRatio(measured(3000, 200), measured(0, 100)); r.RSSPerConn != nil {
		t.Fatalf("comparator at 0 bytes per connection: %v, want none", *r.RSSPerConn)
	}
	if r := NewIdleRatio(IdleResult{NewClientServed: true, NewClientUs: 1}, IdleResult{NewClientServed: true, NewClientUs: 1}); r.RSSPerConn != nil {
		t.Fatalf("memory not measured: %v, want none", *r.RSSPerConn)
	}
}

// TestIdlePartial: with IdleLoad.Partial each connection holds part of a
// large request through the hold, then finishes it; a server's refusals
// (an Error reply, a close) are counted apart from errors, and a wrong
// echo of the large request is an error.
func TestIdlePartial(t *testing.T) {
	f := protocol.Len32
	load := IdleLoad{Framing: f, Conns: 5, Partial: 3000, PartialOf: 10000, Timeout: 5 * time.Second}
	// refuser answers the first echo, then refuses the next request once
	// part of it has arrived: with reply, or silently when reply is nil.
	refuser := func(reply *protocol.ServerMessage) func(net.Conn) {
		return func(c net.Conn) {
			defer c.Close()
			dec := protocol.NewDecoder(c, f, 0)
			enc := protocol.NewEncoder(c, f)
			req, err := dec.DecodeRequest()
			if err != nil || enc.Encode(protocol.EchoReply(req.GetEchoMessage().GetContent())) != nil {
				return
			}
			io.ReadFull(c, make([]byte, load.Partial))
			if reply != nil {
				enc.Encode(reply)
				// Read what comes, so that the close sends no reset.
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, c)
			}
		}
	}
	for _, tt := range []struct {
		name    string
		addr    func() string
		refused map[string]int
		invalid uint64
	}{
		{"served", func() string { return inProcessComparator(t, f) }, nil, 0},
		{"refused with an Error", func() string {
			return serve(t, refuser(protocol.ErrorReply(protocol.Code_CODE_OVERLOADED, "")))
		}, map[string]int{"CODE_OVERLOADED": 5}, 0},
		{"closed", func() string { return serve(t, refuser(nil)) }, map[string]int{"closed": 5}, 0},
		// Not the server's defence but a measurement set up wrong.
		{"timed out", func() string {
			return serve(t, refuser(protocol.ErrorReply(protocol.Code_CODE_TIMEOUT, "")))
		}, nil, 5},
		{"wrong echo", func() string {
			return serve(t, brokenServer(f, func(s string) string {
				if len(s) > 100 {
					return s[1:]
				}
				return s
			}, nil))
		}, nil, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := RunIdle(context.Background(), Target{Addr: tt.addr()}, load)
			if err != nil {
				t.Fatal(err)
			}
			served := load.Conns - int(res.Errors.Invalid)
			for _, n := range tt.refused {
				served -= n
			}
			if res.Opened != load.Conns || res.StillOpen != served || !maps.Equal(res.Refused, tt.refused) || res.Errors.Invalid != tt.invalid || res.Errors.Connection != 0 {
				t.Fatalf("result: %+v; want %d still open, refused %v, %d invalid", res, served, tt.refused, tt.invalid)
			}
			if res.PartialBytes != 3000 || res.RequestBytes != 10000 {
				t.Errorf("partial_bytes %d of %d; want 3000 of 10000", res.PartialBytes, res.RequestBytes)
			}
		})
	}
}

func TestEchoContentFor(t *testing.T) {
	for _, size := range []int{16, 127, 128, 130, 1000, 16385, 1 << 20} {
		n := echoContentFor(size)
		got := len(appendEcho(nil, protocol.Raw, make([]byte, n)))
		if got > size || len(appendEcho(nil, protocol.Raw, make([]byte, n+1))) <= size {
			t.Errorf("echoContentFor(%d) = %d: encodes to %d bytes; want the largest content within %d", size, n, got, size)
		}
	}
}

// An interrupt during the server's half of a --baseline case keeps the
// server's partial figures, and does not run (and fail) the comparator's.
func TestRunCasesInterruptedKeepsTheServersHalf(t *testing.T) {
	// The interrupt comes once the server's half has had replies counted:
	// the load is closed-loop, so a third reply written on a connection
	// means the client has taken in the first two.
	answering := make(chan struct{})
	var signal sync.Once
	echo := brokenServer(protocol.Raw, func(s string) string { return s }, func(a, b int32) int32 { return a + b })
	server := serve(t, func(c net.Conn) {
		echo(&countingWrites{Conn: c, after: 3, reached: func() { signal.Do(func() { close(answering) }) }})
	})
	cmp := inProcessComparator(t, protocol.Raw)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := Load{Framing: protocol.Raw, Conns: 2, Requests: MaxRequests, Mix: Mix{Echo: 1}}
	done := make(chan struct{})
	var rep Report
	var err error
	go func() {
		defer close(done)
		rep, err = RunCases(ctx, []Case{{Name: "echo", Load: load}}, ServerSpec{Addr: server}, &ServerSpec{Addr: cmp})
	}()
	select {
	case <-answering:
	case <-time.After(30 * time.Second):
		t.Fatal("the server's half had no reply written in 30s")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("RunCases did not stop after its context was cancelled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled alone", err)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Target.Requests == 0 || rep.Rows[0].Comparator != nil {
		t.Fatalf("rows = %+v, want one, with the server's partial figures and none for the comparator", rep.Rows)
	}
	var b strings.Builder
	rep.Interrupted = true
	rep.WriteText(&b)
	if !strings.Contains(b.String(), "INTERRUPTED: partial results, 1 case(s)") || !strings.Contains(b.String(), "none for the comparator") {
		t.Errorf("text report:\n%s", b.String())
	}
}

// countingWrites calls reached once its connection has written after
// replies (one write each, as brokenServer's encoder makes them).
type countingWrites struct {
	net.Conn
	after, writes int
	reached       func()
}

func (c *countingWrites) Write(p []byte) (int, error) {
	if c.writes++; c.writes == c.after {
		c.reached()
	}
	return c.Conn.Write(p)
}

// An Error reply's detail is shown as the server wrote it: protobuf's own
// error texts hold a no-break space, which %q would write as \u00a0.
func TestCheckReplyShowsTheDetailAsWritten(t *testing.T) {
	body, err := proto.Marshal(protocol.ErrorReply(protocol.Code_CODE_FRAMING, "invalid field tag (proto:\u00a0invalid field number)"))
	if err != nil {
		t.Fatal(err)
	}
	got := checkReply(body, expectation{content: []byte("x")})
	if got == nil || strings.Contains(got.Error(), `\u00a0`) || !strings.Contains(got.Error(), "proto:\u00a0invalid") {
		t.Errorf("checkReply: %v, want the detail with its no-break space as is", got)
	}
}

// When one line runs ten times faster than another (the pipelined rows),
// the chart's axis is logarithmic, so that the slow lines do not lie flat
// along the bottom.
func TestWriteSVGLogScale(t *testing.T) {
	rep := Report{Server: "s", Rows: []Row{
		{Name: "echo16 c8", Target: Result{Conns: 8, Throughput: 10_000}},
		{Name: "echo16 c64", Target: Result{Conns: 64, Throughput: 20_000}},
		{Name: "pipelined c8", Target: Result{Conns: 8, Throughput: 1_500_000}},
	}}
	var buf bytes.Buffer
	if err := rep.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "(log scale)") {
		t.Fatalf("no log scale:\n%s", buf.String())
	}
	var ys []float64 // the echo16 line's points, in order
	re := regexp.MustCompile(`<polyline [^>]*points="([^"]*)"`)
	m := re.FindStringSubmatch(buf.String())
	for _, p := range strings.Fields(m[1]) {
		_, y, _ := strings.Cut(p, ",")
		v, _ := strconv.ParseFloat(y, 64)
		ys = append(ys, v)
	}
	if len(ys) != 2 || ys[0]-ys[1] < 30 { // 2× apart: a linear axis to 2M puts them 3 px apart
		t.Errorf("echo16's points at y %v, want them at least 30 px apart\n%s", ys, buf.String())
	}
}

// A connection the server refuses at its limit (Error CODE_OVERLOADED,
// then a close) is one connection error, not an invalid reply and a
// connection error, and a hint says why.
func TestRefusedConnectionsCountedOnce(t *testing.T) {
	forEachDriver(t, "", func(t *testing.T, d Driver) {
		addr := serveInProcess(t, &reference.Server{MaxConns: 2})
		load := Load{Framing: protocol.Raw, Conns: 4, Duration: 300 * time.Millisecond, Mix: Mix{Echo: 1}, Timeout: time.Second, Driver: d}
		res, err := Run(context.Background(), Target{Addr: addr}, load)
		if err != nil {
			t.Fatal(err)
		}
		// At least 2 of the 4 are refused (more if the server has not yet
		// counted a connection's close), and the new client halfway through
		// too: each one connection error, none an invalid reply.
		var refused int
		if len(res.Hints) > 0 {
			fmt.Sscanf(res.Hints[0], "%d of 4 connections were refused with Error CODE_OVERLOADED", &refused)
		}
		if refused < 2 || res.Errors.Invalid != 0 || res.Errors.Connection < uint64(refused) || res.Errors.Connection > uint64(refused)+1 {
			t.Errorf("errors %+v, hints %q: want one connection error per refused connection (and the new client), no invalid reply, and a hint with their count", res.Errors, res.Hints)
		}
	})
}

// A server that crashes during the run is a fault of the server: its
// connections' failures are counted, the report says how it ended, and no
// CPU figure is made up. It had been an error that left no report.
func TestServerCrashDuringTheRun(t *testing.T) {
	for _, warmup := range []time.Duration{0, 400 * time.Millisecond} {
		p, err := StartServer(context.Background(), "BENCH_TEST_CRASH_AFTER=200ms "+childCommand(t), "raw", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), p.Target(), Load{Framing: protocol.Raw, Conns: 2, Duration: 600 * time.Millisecond, Warmup: warmup, Mix: Mix{Echo: 1}, Payload: 16, Timeout: time.Second})
		if err != nil {
			t.Fatalf("warm-up %v: %v", warmup, err)
		}
		hints := strings.Join(res.Hints, "\n")
		if res.Errors.Connection == 0 || res.ServerCPU != nil || !strings.Contains(res.CPUNotMeasured, "the server exited") ||
			!strings.Contains(hints, "exit status 3") || !strings.Contains(hints, "crashing on purpose") {
			t.Errorf("warm-up %v: errors %+v, cpu %+v (%q), hints %q: want connection errors, no CPU figure, and the exit with its output", warmup, res.Errors, res.ServerCPU, res.CPUNotMeasured, res.Hints)
		}
		if err := p.Stop(0); err == nil || !strings.Contains(err.Error(), "already exited") {
			t.Errorf("Stop: %v", err)
		}
	}
}

// A server that replies Error CODE_OVERLOADED and closes is one refused
// connection each, with either driver: the close, and a write after it,
// are the refusal's.
func TestRefusalAndItsCloseCountOnce(t *testing.T) {
	refuse := serve(t, func(c net.Conn) {
		defer c.Close()
		if _, err := protocol.NewDecoder(c, protocol.Raw, 0).DecodeRequest(); err != nil {
			return
		}
		out, _ := protocol.Raw.AppendMessage(nil, protocol.ErrorReply(protocol.Code_CODE_OVERLOADED, "too many connections"))
		c.Write(out)
		c.(*net.TCPConn).SetLinger(0) // a reset: the client's next write fails at once
	})
	forEachDriver(t, "", func(t *testing.T, d Driver) {
		res, err := Run(context.Background(), Target{Addr: refuse}, Load{Framing: protocol.Raw, Conns: 8, Requests: 5, Mix: Mix{Echo: 1}, Payload: 16, Driver: d, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors.Connection != 8 || res.Errors.Invalid != 0 {
			t.Errorf("errors %+v: want 8 connection errors, one per refused connection", res.Errors)
		}
	})
}

// Replies read in the wrong framing that decode to an empty message (len32
// read as varint: the prefix's first byte, 0, is a zero-length message) get
// the framing hint too.
func TestFramingHintForRepliesThatDecodeEmpty(t *testing.T) {
	addr := serveInProcess(t, &reference.Server{Framing: protocol.Len32})
	res, err := Run(context.Background(), Target{Addr: addr}, Load{Framing: protocol.Varint, Conns: 2, Requests: 3, Mix: Mix{Echo: 1}, Payload: 16, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if hints := strings.Join(res.Hints, "\n"); !strings.Contains(hints, "--framing len32") {
		t.Errorf("errors %+v, hints %q: want a hint naming len32", res.Errors, res.Hints)
	}
}

// A wrong echo longer than the example's quote shows where it differs.
func TestCheckReplyShowsWhereALongEchoDiffers(t *testing.T) {
	want := []byte(strings.Repeat("abcdefghij", 10))
	got := slices.Clone(want)
	got[57] = 'X'
	body, _ := protocol.Raw.AppendMessage(nil, protocol.EchoReply(string(got)))
	err := checkReply(body, expectation{content: want})
	if err == nil || !strings.Contains(err.Error(), "first difference at byte 57") || !strings.Contains(err.Error(), `from byte 49: "jabcdefgXij`) {
		t.Errorf("got %v; want the bytes around byte 57 of each", err)
	}
}

// A pipelined batch larger than the sockets take is written while its
// replies are read, with either driver: the goroutine driver wrote it all
// first, and with the server's replies waiting unread it waited until its
// timeout, blaming the server.
func TestBatchLargerThanTheSockets(t *testing.T) {
	addr := inProcessComparator(t, protocol.Len32)
	forEachDriver(t, "", func(t *testing.T, d Driver) {
		res, err := Run(context.Background(), Target{Addr: addr}, Load{
			Framing: protocol.Len32, Conns: 2, Requests: 256, Pipeline: 256, Mix: Mix{Echo: 1}, Payload: 64 << 10, Driver: d, Timeout: 3 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors.Total() != 0 || res.Requests != 512 {
			t.Errorf("%d requests, errors %+v; want 512 answered, no error", res.Requests, res.Errors)
		}
	})
}

// A connection the server stops answering waits out its timeout after the
// load is over; the measured window is still the load's, so that the
// throughput of the others is not spread over the wait.
func TestWindowNotStretchedByATimeout(t *testing.T) {
	var n atomic.Int32
	addr := serve(t, func(c net.Conn) {
		if n.Add(1) == 2 { // the second connection: read, never answer
			io.Copy(io.Discard, c)
			return
		}
		brokenServer(protocol.Raw, func(s string) string { return s }, nil)(c)
	})
	forEachDriver(t, "", func(t *testing.T, d Driver) {
		n.Store(0)
		res, err := Run(context.Background(), Target{Addr: addr}, Load{
			Framing: protocol.Raw, Conns: 2, Duration: 300 * time.Millisecond, Mix: Mix{Echo: 1}, Payload: 16, Driver: d, Timeout: 2 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors.Connection != 1 || res.Elapsed > 1 {
			t.Errorf("window %.2f s, errors %+v: want the 0.3 s of the load, and the silent connection's timeout as its one error", res.Elapsed, res.Errors)
		}
	})
}
