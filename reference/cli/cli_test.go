package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"echoadd/protocol"

	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite testdata/help.golden")

// childEnv makes the test binary run Main instead of the tests: the
// end-to-end test re-executes itself as the server, as the conformance
// runner does.
const childEnv = "ECHOADD_CLI_TEST_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// Named durations; generous, the machine is shared.
const (
	ioDeadline = 10 * time.Second // every client read and write
	eventually = 10 * time.Second // waiting for a log line or an exit
)

// runArgs runs the command line in-process, already told to stop, so that
// a run that wrongly gets as far as serving returns at once.
func runArgs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	code = run(stopped, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpGolden(t *testing.T) {
	code, stdout, stderr := runArgs(t, "--help")
	if code != 0 || stderr != "" {
		t.Fatalf("--help: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	golden := filepath.Join("testdata", "help.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Errorf("--help differs from %s (go test ./reference/cli -run TestHelpGolden -update rewrites it):\n%s", golden, stdout)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, stderr := runArgs(t, "--version")
	if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "echoadd-server ") || !strings.HasSuffix(stdout, "\n") {
		t.Errorf("--version: exit %d, stdout %q, stderr %q; want 0, \"echoadd-server VERSION\\n\", nothing", code, stdout, stderr)
	}
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown flag", []string{"--nope"}, "unknown flag: --nope"},
		{"bad framing", []string{"--framing", "xml"}, `"--framing" flag: unknown framing "xml": use raw, len32 or varint`},
		{"size below EA-LIM-1", []string{"--max-message-size", "1023"}, "--max-message-size 1023: must be at least 1024 bytes"},
		{"size not a size", []string{"--max-message-size", "12x"}, `invalid argument "12x" for "--max-message-size" flag: want a number of bytes`},
		{"size too big", []string{"--max-message-size", "2048MiB"}, `"--max-message-size" flag: want a number of bytes up to 1GiB`},
		{"buffers below twice the default maximum", []string{"--max-buffered", "1MiB"}, "--max-buffered 1MiB: must be at least twice --max-message-size, 2MiB"},
		{"buffers below twice a given maximum", []string{"--max-message-size", "200MiB", "--max-buffered", "256MiB"}, "--max-buffered 256MiB: must be at least twice --max-message-size, 400MiB"},
		{"buffers not a size", []string{"--max-buffered", "lots"}, `"--max-buffered" flag: want a number of bytes up to 1TiB`},
		{"negative read timeout", []string{"--read-timeout", "-1s"}, "--read-timeout -1s: must not be negative"},
		{"negative idle timeout", []string{"--idle-timeout=-1s"}, "--idle-timeout -1s: must not be negative"},
		{"negative write timeout", []string{"--write-timeout", "-1s"}, "--write-timeout -1s: must not be negative"},
		{"negative grace", []string{"--shutdown-grace=-5s"}, "--shutdown-grace -5s: must not be negative; 0 means no limit"},
		{"bad duration", []string{"--read-timeout", "10"}, `invalid argument "10" for "--read-timeout" flag`},
		{"negative max conns", []string{"--max-conns=-1"}, "--max-conns -1: must not be negative"},
		{"bad log level", []string{"--log-level", "loud"}, `--log-level "loud": use debug, info, warn or error`},
		{"bad log format", []string{"--log-format", "xml"}, `--log-format "xml": use text or json`},
		{"listen without port", []string{"--listen", "localhost"}, `--listen "localhost": want HOST:PORT`},
		{"listen bad port", []string{"--listen", "127.0.0.1:99999"}, `--listen "127.0.0.1:99999": the port must be a number from 0 to 65535`},
		{"listen no address", []string{"--listen", "999.1.1.1:0"}, `--listen "999.1.1.1:0": 999.1.1.1 is not an IPv4 address`},
		{"listen link-local", []string{"--listen", "[fe80::1]:0"}, `needs its interface as a zone`},
		{"argument", []string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if !strings.Contains(tt.name, "listen") {
				args = append(args, "--listen", "127.0.0.1:0") // never the fixed default port
			}
			code, stdout, stderr := runArgs(t, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "--help") {
				t.Errorf("stderr = %q, want it to contain %q and point to --help", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

// TestMaxBufferedDefault: the default rises to twice --max-message-size,
// so that raising only that flag never makes the server refuse to start;
// one given is kept, 0 included.
func TestMaxBufferedDefault(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int64
	}{
		{nil, 256 << 20},
		{[]string{"--max-message-size", "64MiB"}, 256 << 20},
		{[]string{"--max-message-size", "1GiB"}, 2 << 30},
		{[]string{"--max-message-size", "1GiB", "--max-buffered", "0"}, 0},
		{[]string{"--max-buffered", "8GiB"}, 8 << 30},
	} {
		var o options
		fs := newFlagSet(&o)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		o.maxBufferedSet = fs.Changed("max-buffered")
		if err := validate(&o); err != nil || o.maxBuffered != tt.want {
			t.Errorf("%q: --max-buffered %d, %v; want %d", tt.args, o.maxBuffered, err, tt.want)
		}
	}
}

func TestBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	code, _, stderr := runArgs(t, "--listen", addr)
	want := "echoadd-server: " + addr + " is already in use; pick another with --listen, or --listen 127.0.0.1:0 for a free port\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
}

// syncBuffer is a writer the test reads while the server writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// listeningRE finds the address in the start-up log line, text or JSON.
var listeningRE = regexp.MustCompile(`listening on ([^\s"]+)`)

// roundTrip checks the server at addr answers an echo in framing f.
func roundTrip(t *testing.T, nc net.Conn, f protocol.Framing) {
	t.Helper()
	nc.SetDeadline(time.Now().Add(ioDeadline))
	if err := protocol.NewEncoder(nc, f).Encode(protocol.EchoRequest("hi")); err != nil {
		t.Fatal(err)
	}
	msg, err := protocol.NewDecoder(nc, f, 0).Next()
	if err != nil {
		t.Fatal(err)
	}
	reply, err := protocol.DecodeReply(msg)
	if err != nil || reply.GetEchoMessage().GetContent() != "hi" {
		t.Fatalf("reply %v, %v; want echo of hi", reply, err)
	}
}

func expectEOF(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(ioDeadline))
	if n, err := nc.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("read %d bytes, %v; want EOF", n, err)
	}
}

// TestRunInProcess serves until its context is cancelled, the way a signal
// stops Main, and exits 0.
func TestRunInProcess(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"--listen", "127.0.0.1:0", "--framing", "len32", "--log-format", "json", "--log-level", "debug"}, &stdout, &stderr)
	}()

	var addr string
	deadline := time.Now().Add(eventually)
	for addr == "" {
		if m := listeningRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no \"listening on\" line after %v; stderr:\n%s", eventually, stderr.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	roundTrip(t, nc, protocol.Len32)

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d after stop, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(eventually):
		t.Fatalf("still running %v after stop", eventually)
	}
	expectEOF(t, nc)
	logs := stderr.String()
	for _, want := range []string{`"level":"INFO","msg":"listening on ` + addr + `","framing":"len32"`, `"max_buffered":268435456`, `"msg":"connection opened"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if stdout.String() != "" {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}
}

// TestStopSignals runs Main in a child process (this test binary,
// re-executed), connects a client, sends each stop signal and expects a log
// line naming it, EOF at the client and exit 0. SIGHUP is one of them: a
// closing terminal sends it, and it must lose nothing.
func TestStopSignals(t *testing.T) {
	for _, tt := range []struct {
		sig  syscall.Signal
		name string
	}{{syscall.SIGTERM, "SIGTERM"}, {syscall.SIGINT, "SIGINT"}, {syscall.SIGHUP, "SIGHUP"}} {
		t.Run(tt.name, func(t *testing.T) { testStopSignal(t, tt.sig, tt.name) })
	}
}

// startChild starts this test binary as the server with args; its stderr
// is the returned pipe.
func startChild(t *testing.T, args ...string) (*exec.Cmd, io.ReadCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stderr
}

// servingChild is this test binary started as the server, serving.
type servingChild struct {
	cmd    *exec.Cmd
	addr   string
	logs   *syncBuffer
	exited chan error
}

// startServing starts the server with args and waits for its "listening
// on" line; the child is killed at the end of the test unless waited for.
func startServing(t *testing.T, args ...string) *servingChild {
	t.Helper()
	cmd, stderr := startChild(t, args...)
	c := &servingChild{cmd: cmd, logs: &syncBuffer{}, exited: make(chan error, 1)}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.logs.Write(append(sc.Bytes(), '\n'))
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		c.exited <- cmd.Wait() // after the pipe is drained, as Wait requires
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-c.exited
		}
	})
	select {
	case c.addr = <-found:
	case <-time.After(eventually):
		t.Fatalf("no \"listening on\" line after %v; stderr:\n%s", eventually, c.logs.String())
	}
	return c
}

// stop sends sig and waits for a 0 exit.
func (c *servingChild) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.exited:
		if err != nil {
			t.Errorf("exit: %v, want status 0; stderr:\n%s", err, c.logs.String())
		}
	case <-time.After(eventually):
		t.Fatalf("still running %v after %v", eventually, sig)
	}
}

func testStopSignal(t *testing.T, sig syscall.Signal, name string) {
	c := startServing(t, "--listen", "127.0.0.1:0", "--shutdown-grace", "5s")
	nc, err := net.Dial("tcp", c.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	roundTrip(t, nc, protocol.Raw)

	exited := make(chan struct{})
	go func() {
		defer close(exited)
		expectEOF(t, nc)
	}()
	c.stop(t, sig)
	<-exited
	for _, want := range []string{`msg="stopping: answering the requests already received" signal=` + name + ` `, `msg=stopped`} {
		if !strings.Contains(c.logs.String(), want) {
			t.Errorf("stderr lacks %s:\n%s", want, c.logs.String())
		}
	}
}

// TestForcedStopSaysHowManyConnections: when the grace runs out, the log
// says how many connections were closed by force, and what to change.
func TestForcedStopSaysHowManyConnections(t *testing.T) {
	c := startServing(t, "--listen", "127.0.0.1:0", "--framing", "len32", "--shutdown-grace", "200ms")
	nc, err := net.Dial("tcp", c.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The client sends 32 MB of echo requests and reads no reply: the
	// server is stuck writing when the signal comes, with replies owed.
	var buf bytes.Buffer
	if err := protocol.NewEncoder(&buf, protocol.Len32).Encode(protocol.EchoRequest(strings.Repeat("f", 256<<10))); err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64
	go func() {
		nc.SetWriteDeadline(time.Now().Add(2 * eventually))
		for range 128 {
			if _, err := nc.Write(buf.Bytes()); err != nil {
				return
			}
			written.Add(1)
		}
	}()
	for last, deadline := int64(-1), time.Now().Add(eventually); written.Load() != last && time.Now().Before(deadline); {
		last = written.Load()
		time.Sleep(300 * time.Millisecond) // until the writes stall
	}
	c.stop(t, syscall.SIGTERM)
	if want := `closed the remaining connections by force`; !strings.Contains(c.logs.String(), want) || !strings.Contains(c.logs.String(), " conns=1 ") {
		t.Errorf("stderr lacks %q with conns=1:\n%s", want, c.logs.String())
	}
}

// TestLogDurations: durations read as Go durations ("10s") in both log
// formats, not as nanosecond integers in JSON.
func TestLogDurations(t *testing.T) {
	for format, want := range map[string]string{
		"text": `read_timeout=10s shutdown_grace=1.5s`,
		"json": `"read_timeout":"10s","shutdown_grace":"1.5s"`,
	} {
		var out bytes.Buffer
		log := newLogger(&out, &options{logLevel: "info", logFormat: format})
		log.Info("x", slog.Duration("read_timeout", 10*time.Second), slog.Duration("shutdown_grace", 1500*time.Millisecond))
		if !strings.Contains(out.String(), want) {
			t.Errorf("--log-format %s: %q lacks %q", format, out.String(), want)
		}
	}
}

// TestLogPipeClosed: a server whose stderr pipe has lost its reader
// (echoadd-server 2>&1 | head -1) keeps serving when a client makes it log,
// and stops with status 0, rather than dying of SIGPIPE.
func TestLogPipeClosed(t *testing.T) {
	cmd, stderr := startChild(t, "--listen", "127.0.0.1:0", "--framing", "raw")
	defer cmd.Process.Kill()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				return // the reader goes: the pipe breaks at the next write
			}
		}
		close(found)
	}()
	var addr string
	select {
	case addr = <-found:
	case <-time.After(eventually):
		t.Fatalf("no \"listening on\" line after %v", eventually)
	}
	stderr.Close()

	bad, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	bad.Write([]byte{0x00}) // a raw framing error: logged as a warning
	bad.SetReadDeadline(time.Now().Add(ioDeadline))
	io.Copy(io.Discard, bad) // its Error reply, then the close

	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("after a log line to a broken pipe: %v", err)
	}
	defer nc.Close()
	roundTrip(t, nc, protocol.Raw)
	nc.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v, want status 0", err)
		}
	case <-time.After(eventually):
		t.Fatalf("still running %v after SIGTERM", eventually)
	}
}

// TestLifecycleLinesAtEveryLevel: at --log-level warn or error the start-up
// line still reports the address (the port --listen HOST:0 picked), and the
// stop lines still say the server stopped.
func TestLifecycleLinesAtEveryLevel(t *testing.T) {
	for _, level := range []string{"warn", "error"} {
		// Stopped once it listens: a context cancelled from the start could
		// stop it before Serve has begun, which then has no line to write.
		ctx, cancel := context.WithCancel(context.Background())
		var out, errOut syncBuffer
		exited := make(chan int, 1)
		go func() { exited <- run(ctx, []string{"--listen", "127.0.0.1:0", "--log-level", level}, &out, &errOut) }()
		waitFor(t, "the listening line", func() bool { return listeningRE.MatchString(errOut.String()) })
		cancel()
		code, stderr := <-exited, errOut.String()
		if code != 0 {
			t.Fatalf("--log-level %s: exit %d; stderr:\n%s", level, code, stderr)
		}
		for _, want := range []string{"level=INFO msg=\"listening on 127.0.0.1:", "msg=\"stopping: answering the requests already received\"", "msg=stopped"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("--log-level %s: stderr lacks %s:\n%s", level, want, stderr)
			}
		}
	}
}

// TestListenAdvice: a failure to listen says what to do, beyond the port
// in use (TestBusyPort).
func TestListenAdvice(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.1:0", "is not an address of this machine"}, // TEST-NET-1: on no host
		{"no-such-host.invalid:0", "give an IP address"},
	} {
		code, _, stderr := runArgs(t, "--listen", tc.addr)
		if code != exitServe || !strings.Contains(stderr, tc.want) {
			t.Errorf("--listen %s: exit %d, stderr %q; want %d and %q", tc.addr, code, stderr, exitServe, tc.want)
		}
	}
	if os.Geteuid() != 0 { // root may bind a privileged port
		code, _, stderr := runArgs(t, "--listen", "127.0.0.1:1")
		if code != exitServe || !strings.Contains(stderr, "ports below 1024 need privileges") {
			t.Errorf("--listen 127.0.0.1:1: exit %d, stderr %q", code, stderr)
		}
	}
}

func TestListenNetwork(t *testing.T) {
	for addr, want := range map[string]string{
		"0.0.0.0:7878": "tcp4", "127.0.0.1:0": "tcp4", "[::]:0": "tcp6", "[::1]:7878": "tcp6", "localhost:0": "tcp",
	} {
		if got := listenNetwork(addr); got != want {
			t.Errorf("listenNetwork(%q) = %q, want %q", addr, got, want)
		}
	}
}

// waitFor polls cond until it holds, failing the test after eventually.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, eventually)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
