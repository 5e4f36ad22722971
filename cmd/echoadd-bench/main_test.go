package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"echoadd/bench"
	"echoadd/protocol"
	"echoadd/suite/harness"
)

var update = flag.Bool("update", false, "rewrite testdata/help.golden")

// The test binary is also `echoadd-bench comparator`, so that --baseline
// (which re-executes os.Executable) and --server-cmd can start it.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "comparator" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	// The interrupt tests run this binary as echoadd-bench itself.
	if os.Getenv("ECHOADD_BENCH_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

func self(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return bench.ShellQuote(p)
}

func TestFlagValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error message
	}{
		{"two servers", []string{"--target", "127.0.0.1:1", "--server-cmd", "x {port}"}, "--target, --server-cmd and --server-bin are alternatives"},
		{"not loopback", []string{"--target", "10.0.0.1:80"}, "--target: \"10.0.0.1\" is not a loopback address"},
		{"no port", []string{"--target", "127.0.0.1"}, "--target: \"127.0.0.1\" is not HOST:PORT"},
		{"port out of range", []string{"--target", "127.0.0.1:99999"}, "--target: \"127.0.0.1:99999\": port \"99999\" is not a number from 1 to 65535"},
		{"empty target", []string{"--target", ""}, "--target is empty (an unset variable?)"},
		{"blank server-cmd", []string{"--server-cmd", " "}, "--server-cmd is empty"},
		{"server-cmd without port", []string{"--server-cmd", "server --listen :7878"}, "--server-cmd \"server --listen :7878\" has no {port} placeholder"},
		{"conns zero", []string{"--conns", "0"}, "--conns must be 1..10000, not 0"},
		{"conns too many", []string{"--conns", "10001"}, "--conns must be 1..10000"},
		{"no bound", []string{"--duration", "0"}, "--duration 0 needs --requests"},
		{"duration too long", []string{"--duration", "11m"}, "--duration must be 0..10m0s"},
		{"requests too many", []string{"--requests", "100000001"}, "--requests must be 0..100000000"},
		{"bad mix", []string{"--mix", "3"}, "--mix: \"3\" is not ECHO:ADD"},
		{"zero mix", []string{"--mix", "0:0"}, "--mix: \"0:0\" is not ECHO:ADD"},
		{"payload negative", []string{"--payload", "-1"}, `"--payload" flag: want a number of bytes`},
		{"payload above the maximum", []string{"--payload", "2MiB"}, "--payload must be 0..1048512 bytes, not 2097152"},
		{"pipeline in raw", []string{"--pipeline", "16"}, "--pipeline needs --framing len32 or varint"},
		{"pipeline zero", []string{"--framing", "len32", "--pipeline", "0"}, "--pipeline must be 1..1024"},
		{"bad framing", []string{"--framing", "xml"}, "unknown framing \"xml\""},
		{"bad driver", []string{"--driver", "threads"}, "--driver: \"threads\" is not a driver: use epoll or goroutine"},
		{"idle with driver", []string{"--idle-conns", "10", "--driver", "goroutine"}, "--driver does not apply to --idle-conns"},
		{"sweep with conns", []string{"--sweep", "--conns", "4"}, "--sweep sets --conns itself"},
		{"idle with sweep", []string{"--idle-conns", "10", "--sweep"}, "--sweep does not apply to --idle-conns"},
		{"idle zero", []string{"--idle-conns", "0"}, "--idle-conns must be 1.."},
		{"idle-hold alone", []string{"--idle-hold", "1s"}, "--idle-hold applies only to --idle-conns"},
		{"idle-partial alone", []string{"--idle-partial", "1KiB"}, "--idle-partial applies only to --idle-conns"},
		{"idle-partial all of it", []string{"--idle-conns", "10", "--idle-partial", "1MiB"}, "--idle-partial 1048576: must be less than --idle-partial-of, 1048576"},
		{"idle-partial-of alone", []string{"--idle-conns", "10", "--idle-partial-of", "2MiB"}, "--idle-partial-of applies only with --idle-partial"},
		{"idle-partial not a size", []string{"--idle-conns", "10", "--idle-partial", "lots"}, `invalid argument "lots" for "--idle-partial" flag`},
		{"timeout zero", []string{"--timeout", "0"}, "--timeout must be above 0"},
		{"argument", []string{"extra"}, "unexpected argument \"extra\""},
		{"unknown flag", []string{"--bogus"}, "unknown flag: --bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != exitUsage {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q does not contain %q", stderr.String(), tc.want)
			}
			if stdout.Len() != 0 {
				t.Fatalf("stdout not empty: %q", stdout.String())
			}
		})
	}
}

// Valid combinations parse: --requests alone bounds the run by its count.
func TestFlagsAccepted(t *testing.T) {
	o, err := parse([]string{"--requests", "10", "--framing", "varint", "--pipeline", "16", "--mix", "3:1", "--target", "[::1]:9"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 0 || o.requests != 10 || o.mix != (bench.Mix{Echo: 3, Add: 1}) {
		t.Fatalf("options: %+v", o)
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	// --conns 0 alone is refused: with --version nothing else is checked.
	code := run([]string{"--version", "--conns", "0"}, &stdout, &stderr)
	if code != exitOK || stderr.Len() != 0 || !strings.HasPrefix(stdout.String(), "echoadd-bench ") || !strings.HasSuffix(stdout.String(), "\n") {
		t.Errorf("--version: exit %d, stdout %q, stderr %q; want 0, \"echoadd-bench VERSION GO\\n\", nothing", code, stdout.String(), stderr.String())
	}
}

func TestHelpGolden(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	golden := filepath.Join("testdata", "help.golden")
	if *update {
		if err := os.WriteFile(golden, stdout.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(want, []byte("Usage: echoadd-bench")) {
		t.Fatalf("%s does not start with the usage line", golden)
	}
	if stdout.String() != string(want) {
		t.Fatalf("help text differs from %s (go test -update to accept):\n%s", golden, stdout.String())
	}
}

// A short run against a started comparator, with the comparator as
// baseline too: JSON with a ratio for every figure, exit code 0. 200 ms is
// below bench.MinCPUWindow: the CPU figures are marked not measurable.
func TestRunWithBaselineJSON(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "plot.svg")
	var stdout, stderr bytes.Buffer
	code := run([]string{
		"--server-cmd", self(t) + " comparator --listen 127.0.0.1:{port} --framing {framing}",
		"--framing", "len32", "--pipeline", "4", "--mix", "3:1", "--conns", "2",
		"--duration", "200ms", "--warmup", "50ms", "--baseline", "--json", "--plot", plot,
	}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v in %s", err, stdout.String())
	}
	if len(rep.Rows) != 1 {
		t.Fatalf("rows: %+v", rep.Rows)
	}
	row := rep.Rows[0]
	if row.Target.Requests == 0 || row.Comparator == nil || row.Comparator.Requests == 0 || row.Ratio == nil ||
		row.Ratio.Throughput == nil || row.Target.ServerCPU != nil || !strings.HasPrefix(row.Target.CPUNotMeasured, "not measurable") ||
		row.Comparator.ServerCPU != nil || !strings.HasPrefix(row.Comparator.CPUNotMeasured, "not measurable") {
		t.Fatalf("row: %+v", row)
	}
	svg, err := os.ReadFile(plot)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("--plot wrote invalid XML: %v\n%s", err, svg)
		}
	}
	if !bytes.Contains(svg, []byte("<polyline")) || !bytes.Contains(svg, []byte("(comparator)")) {
		t.Fatalf("--plot: no lines for server and comparator:\n%s", svg)
	}
	if row.Target.Framing != "len32" || row.Target.Pipeline != 4 || row.Target.Mix != "3:1" {
		t.Fatalf("load not as asked: %+v", row.Target)
	}
}

// A server that speaks another framing gets no valid replies: the errors are
// reported with an example and the exit code is 1.
func TestRunReportsErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{
		"--server-cmd", self(t) + " comparator --listen 127.0.0.1:{port} --framing raw",
		"--framing", "len32", "--conns", "1", "--duration", "100ms", "--warmup", "0", "--timeout", "300ms",
	}, &stdout, &stderr)
	if code != exitFailed {
		t.Fatalf("exit code %d, want %d; stdout:\n%s\nstderr:\n%s", code, exitFailed, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "ERRORS in") || !strings.Contains(stderr.String(), "replies had errors") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}

func TestIdleConns(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{
		"--server-cmd", self(t) + " comparator --listen 127.0.0.1:{port} --framing {framing}",
		"--idle-conns", "100", "--idle-hold", "0s",
	}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"100 of 100 idle connections opened", "a new client was served", "per connection", "100 of 100 connections still answered"} {
		if !strings.Contains(stdout.String(), want) {
			t.Fatalf("%q missing from:\n%s", want, stdout.String())
		}
	}
}

// --idle-partial: each idle connection also holds part of a request, and
// finishes it after the hold.
func TestIdleConnsPartial(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{
		"--server-cmd", self(t) + " comparator --listen 127.0.0.1:{port} --framing {framing}",
		"--idle-conns", "20", "--idle-hold", "0s", "--idle-partial", "2KiB", "--idle-partial-of", "8KiB",
	}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"each then sent the first 2048 bytes of an echo request of 8192 bytes", "20 of 20 connections still answered"} {
		if !strings.Contains(stdout.String(), want) {
			t.Fatalf("%q missing from:\n%s", want, stdout.String())
		}
	}
}

func TestNoServerBinary(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("PATH", t.TempDir())
	var stdout, stderr bytes.Buffer
	code := run([]string{"--duration", "100ms"}, &stdout, &stderr)
	if code != exitNotRun || !strings.Contains(stderr.String(), "no server to measure") || !strings.Contains(stderr.String(), "--server-bin") {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
}

// `echoadd-bench comparator` exits 0 on SIGTERM, with idle connections
// open, which it closes (EA-STOP-3, EA-STOP-4). `exec`: dash would
// otherwise stay as the group leader, and die of the SIGTERM itself.
func TestComparatorStopsCleanly(t *testing.T) {
	p, err := harness.Start(context.Background(), harness.StartOptions{
		Command: "exec " + self(t) + " comparator --listen 127.0.0.1:{port} --framing len32",
	})
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A round trip: the server has accepted the connection.
		c.SetDeadline(time.Now().Add(5 * time.Second))
		req, err := protocol.Len32.AppendMessage(nil, protocol.EchoRequest("idle from now on"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := bench.NewReplyReader(c, protocol.Len32, 0).Next(); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	exit := p.Stop(5 * time.Second)
	if exit.Code != 0 || exit.Signal != "" || exit.Killed {
		t.Fatalf("got %v, want exit status 0", exit)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("connection %d: got %d bytes, %v; want EOF", i, n, err)
		}
	}
}

// --payload takes sizes as the server's flags do.
func TestPayloadSizes(t *testing.T) {
	for arg, want := range map[string]int{"0": 0, "1000": 1000, "64KiB": 65536, "1000KiB": 1024000} {
		o, err := parse([]string{"--target", "127.0.0.1:1", "--payload", arg}, io.Discard)
		if err != nil || o.payload != want {
			t.Errorf("--payload %s: %v, %v; want %d", arg, o, err, want)
		}
	}
}

// The comparator's bad --listen is a usage error, as every other bad flag.
func TestComparatorBadListen(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"comparator", "--listen", "foo"}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "want HOST:PORT") {
		t.Errorf("exit %d, stderr %q; want %d and what to give", code, stderr.String(), exitUsage)
	}
}

// A server that answers every request right but fails at its stop (here a
// shell that exits 3 on SIGTERM) fails the run, with the report written:
// exit 1. It had been exit 2 after the report, then exit 0 with a note.
func TestStopFailureFailsTheRun(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{
		"--server-cmd", "trap 'exit 3' TERM; " + self(t) + " comparator --listen 127.0.0.1:{port} & wait",
		"--conns", "1", "--duration", "100ms", "--warmup", "0s",
	}, &stdout, &stderr)
	if code != exitFailed || !strings.Contains(stdout.String(), "STOP FAILED:") || !strings.Contains(stdout.String(), "exit status 3") {
		t.Fatalf("exit code %d, want %d with a STOP FAILED line; stdout:\n%s\nstderr:\n%s", code, exitFailed, stdout.String(), stderr.String())
	}
}
