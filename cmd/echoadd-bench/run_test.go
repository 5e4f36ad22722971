package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"echoadd/bench/comparator"
	"echoadd/protocol"
)

// acceptListener reports its first accepted connection on accepted, and
// the first write to any of its connections (a reply) on replied.
type acceptListener struct {
	net.Listener
	once, replyOnce   sync.Once
	accepted, replied chan struct{}
}

func (l *acceptListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.once.Do(func() { close(l.accepted) })
	return &replyConn{Conn: c, l: l}, nil
}

type replyConn struct {
	net.Conn
	l *acceptListener
}

func (c *replyConn) Write(b []byte) (int, error) {
	c.l.replyOnce.Do(func() { close(c.l.replied) })
	return c.Conn.Write(b)
}

func listen(t *testing.T) *acceptListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &acceptListener{Listener: l, accepted: make(chan struct{}), replied: make(chan struct{})}
}

// comparatorAt serves the comparator in framing f until the test ends.
func comparatorAt(t *testing.T, f protocol.Framing) *acceptListener {
	t.Helper()
	l := listen(t)
	s := &comparator.Server{Framing: f}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return l
}

// silentServer reads every connection and never replies.
func silentServer(t *testing.T) *acceptListener {
	t.Helper()
	l := listen(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l
}

// A server in another framing: the report says which framing its replies
// look like, as the conformance runner does, for both drivers.
func TestFramingMismatchHint(t *testing.T) {
	for _, tc := range []struct {
		server, client protocol.Framing
		driver         string
		want           string
	}{
		{protocol.Len32, protocol.Raw, "epoll", "try --framing len32"},
		{protocol.Len32, protocol.Raw, "goroutine", "try --framing len32"},
		{protocol.Raw, protocol.Len32, "epoll", "try --framing raw"},
		{protocol.Varint, protocol.Len32, "goroutine", "try --framing varint"},
	} {
		t.Run(tc.server.String()+"/"+tc.client.String()+"/"+tc.driver, func(t *testing.T) {
			l := comparatorAt(t, tc.server)
			var stdout, stderr bytes.Buffer
			code := run([]string{"--target", l.Addr().String(), "--framing", tc.client.String(), "--driver", tc.driver,
				"--conns", "3", "--duration", "200ms", "--warmup", "100ms", "--timeout", "1s"}, &stdout, &stderr)
			if code != exitFailed {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitFailed, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.want) {
				t.Fatalf("%q missing from:\n%s", tc.want, stdout.String())
			}
			// Each connection fails once, in the warm-up: not again in the
			// measured phase.
			if !strings.Contains(stdout.String(), "3 connection errors") {
				t.Fatalf("want 3 connection errors, one per connection:\n%s", stdout.String())
			}
		})
	}
}

// A server that never replies: the summary says so plainly, and gives the
// time the run took, warm-up included.
func TestSilentServerReported(t *testing.T) {
	l := silentServer(t)
	var stdout, stderr bytes.Buffer
	code := run([]string{"--target", l.Addr().String(), "--conns", "2", "--duration", "200ms", "--warmup", "100ms", "--timeout", "500ms"}, &stdout, &stderr)
	if code != exitFailed {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitFailed, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"no reply within the 500ms timeout (--timeout) on any of the 2 connections", "after a 0.5", "latency     none measured: no valid reply"} {
		if !strings.Contains(out, want) {
			t.Fatalf("%q missing from:\n%s", want, out)
		}
	}

	stdout.Reset()
	run([]string{"--target", l.Addr().String(), "--conns", "2", "--duration", "200ms", "--warmup", "100ms", "--timeout", "500ms", "--json"}, &stdout, &stderr)
	var rep struct {
		Rows []struct {
			Target struct {
				Warmup float64  `json:"warmup_s"`
				Hints  []string `json:"hints"`
			} `json:"target"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v in %s", err, stdout.String())
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Target.Warmup < 0.5 || len(rep.Rows[0].Target.Hints) == 0 ||
		!strings.Contains(rep.Rows[0].Target.Hints[0], "no reply within") {
		t.Fatalf("JSON: %+v\n%s", rep, stdout.String())
	}
}

// benchProcess runs this test binary as echoadd-bench.
func benchProcess(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, *bufio.Scanner) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), "ECHOADD_BENCH_TEST_MAIN=1")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, &stdout, bufio.NewScanner(stderr)
}

// waitExit waits, bounded, for cmd to exit, draining its stderr, and
// returns its exit code and stderr.
func waitExit(t *testing.T, cmd *exec.Cmd, stderr *bufio.Scanner, bound time.Duration) (int, string) {
	t.Helper()
	var rest strings.Builder
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for stderr.Scan() {
			rest.WriteString(stderr.Text() + "\n")
		}
	}()
	select {
	case <-drained:
	case <-time.After(bound):
		t.Fatalf("still running %v later", bound)
	}
	cmd.Wait()
	return cmd.ProcessState.ExitCode(), rest.String()
}

// SIGINT during a run: partial results marked interrupted, exit 130, no
// "context canceled".
func TestInterrupt(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		t.Run("json="+strconv.FormatBool(asJSON), func(t *testing.T) {
			l := comparatorAt(t, protocol.Raw)
			args := []string{"--target", l.Addr().String(), "--conns", "1", "--duration", "20s", "--warmup", "0"}
			if asJSON {
				args = append(args, "--json")
			}
			cmd, stdout, stderr := benchProcess(t, args...)
			// With no warm-up, a reply means the measured case is under
			// way: its partial figures are what the report must show.
			select {
			case <-l.replied:
			case <-time.After(10 * time.Second):
				t.Fatal("no reply within 10 s")
			}
			cmd.Process.Signal(os.Interrupt)
			code, errText := waitExit(t, cmd, stderr, 15*time.Second)
			if code != exitInterrupted || strings.Contains(errText, "context canceled") {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitInterrupted, errText)
			}
			if asJSON {
				var rep struct {
					Interrupted bool `json:"interrupted"`
				}
				if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || !rep.Interrupted {
					t.Fatalf("JSON not marked interrupted (%v):\n%s", err, stdout.String())
				}
				return
			}
			if !strings.Contains(stdout.String(), "INTERRUPTED") || !strings.Contains(stdout.String(), "requests ") {
				t.Fatalf("stdout:\n%s", stdout.String())
			}
		})
	}
}

// A second SIGINT stops the run at once, even while a reply is awaited.
func TestSecondInterrupt(t *testing.T) {
	l := silentServer(t)
	cmd, _, stderr := benchProcess(t, "--target", l.Addr().String(), "--conns", "1", "--duration", "20s", "--warmup", "0", "--timeout", "50s")
	select {
	case <-l.accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("no connection within 10 s")
	}
	cmd.Process.Signal(os.Interrupt)
	// The first interrupt is acknowledged before the second is sent:
	// signals sent back to back may arrive as one.
	acked := make(chan bool, 1)
	go func() {
		for stderr.Scan() {
			if strings.Contains(stderr.Text(), "interrupt again") {
				acked <- true
				return
			}
		}
		acked <- false
	}()
	select {
	case ok := <-acked:
		if !ok {
			t.Fatal("stderr ended without acknowledging the interrupt")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the interrupt was not acknowledged within 10 s")
	}
	cmd.Process.Signal(os.Interrupt)
	code, errText := waitExit(t, cmd, stderr, 5*time.Second)
	if code != exitInterrupted {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitInterrupted, errText)
	}
}

// Every exit status is documented in --help, and a usage error exits with
// the status documented for it.
func TestExitStatusesDocumented(t *testing.T) {
	var stdout, stderr bytes.Buffer
	run([]string{"--help"}, &stdout, &stderr)
	help := stdout.String()
	i := strings.Index(help, "\nExit status:\n")
	if i < 0 {
		t.Fatalf("no \"Exit status:\" section in --help:\n%s", help)
	}
	section := help[i:]
	for _, want := range []string{"  0    ", "  1    ", "  2    ", "  3    usage error", "  130  interrupted"} {
		if !strings.Contains(section, want) {
			t.Errorf("%q missing from the exit statuses:\n%s", want, section)
		}
	}
	if code := run([]string{"--conns", "0"}, &stdout, &stderr); code != 3 {
		t.Errorf("usage error: exit %d, want 3 as documented", code)
	}
}

// --plot is checked before any load: an unwritable path is a usage error,
// and the check leaves nothing behind.
func TestPlotPathChecked(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "new.svg")
	inNewDir := filepath.Join(dir, "plots", "x.svg") // made when written, as echoadd-conform's reports
	existing := filepath.Join(dir, "old.svg")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fresh, inNewDir, existing} {
		if _, err := parse([]string{"--target", "127.0.0.1:1", "--plot", p}, io.Discard); err != nil {
			t.Fatalf("--plot %s: %v", p, err)
		}
	}
	for _, p := range []string{fresh, filepath.Dir(inNewDir)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("the check left %s behind (%v)", p, err)
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("the check changed %s: %q", existing, b)
	}
	// A silent server: were the load run first, it would take the
	// 5 s timeout before --plot's error.
	l := silentServer(t)
	for _, p := range []string{"/proc/nope/x.svg", dir, filepath.Join(dir, "chart.png")} {
		var stdout, stderr bytes.Buffer
		start := time.Now()
		code := run([]string{"--target", l.Addr().String(), "--duration", "1s", "--plot", p}, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), "--plot") || time.Since(start) > time.Second {
			t.Fatalf("--plot %s: exit %d after %v, want %d at once; stderr:\n%s", p, code, time.Since(start), exitUsage, stderr.String())
		}
	}
}

// A window shorter than /proc's clock allows gives no CPU figure.
func TestShortRunCPUNotMeasurable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{
		"--server-cmd", self(t) + " comparator --listen 127.0.0.1:{port} --framing {framing}",
		"--conns", "1", "--duration", "2ms", "--warmup", "0",
	}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "server CPU  not measurable") || strings.Contains(stdout.String(), "of one core") {
		t.Fatalf("stdout:\n%s", stdout.String())
	}
}

// --idle-conns --baseline gives the ratio of bytes per connection.
func TestIdleConnsBaselineRatio(t *testing.T) {
	srv := self(t) + " comparator --listen 127.0.0.1:{port} --framing {framing}"
	var stdout, stderr bytes.Buffer
	code := run([]string{"--server-cmd", srv, "--idle-conns", "50", "--idle-hold", "0s", "--baseline"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "ratio server/comparator: bytes per connection ") {
		t.Fatalf("no ratio in:\n%s", stdout.String())
	}
	stdout.Reset()
	code = run([]string{"--server-cmd", srv, "--idle-conns", "50", "--idle-hold", "0s", "--baseline", "--json"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	ratio, ok := rep["ratio"].(map[string]any)
	if !ok {
		t.Fatalf("no ratio in:\n%s", stdout.String())
	}
	if _, ok := ratio["rss_per_conn"]; !ok {
		t.Fatalf("no rss_per_conn ratio in:\n%s", stdout.String())
	}
}
