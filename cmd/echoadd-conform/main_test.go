package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/gomega/gexec"
	"go.uber.org/goleak"

	"echoadd/suite/report"
)

// The runner binary, built once: RunSpecs runs once per process, so every
// test that runs specs runs the binary.
var runnerBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	defer gexec.CleanupBuildArtifacts()
	var err error
	if runnerBin, err = gexec.Build("echoadd/cmd/echoadd-conform"); err != nil {
		fmt.Fprintln(os.Stderr, "building echoadd-conform:", err)
		return 1
	}
	return leakChecked(m.Run())
}

// leakChecked is m.Run's code, failed if a test left a goroutine running.
func leakChecked(code int) int {
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, "goroutines left running after the tests:", err)
		return 1
	}
	return code
}

// quickFilter keeps the runs of these tests short: the self-test
// (suite/selftest) runs the whole suite in every framing.
const quickFilter = "echo && must"

type result struct {
	code           int
	stdout, stderr string
}

func runBin(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, runnerBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var exitErr *exec.ExitError
	code := 0
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && ctx.Err() == nil:
		code = exitErr.ExitCode()
	default:
		t.Fatalf("running %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
	}
	return result{code, stdout.String(), stderr.String()}
}

func readReport(t *testing.T, path string) *report.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	return &r
}

func TestBundledReferenceEachFraming(t *testing.T) {
	for _, f := range []string{"raw", "len32", "varint"} {
		t.Run(f, func(t *testing.T) {
			res := runBin(t, "--framing", f, "--label-filter", quickFilter, "--no-color")
			if res.code != 0 {
				t.Errorf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
			}
			if !strings.Contains(res.stdout, "CONFORMANT:") || !strings.Contains(res.stdout, "EA-ECHO-1") {
				t.Errorf("no requirement table in the output:\n%s", res.stdout)
			}
		})
	}
}

func TestList(t *testing.T) {
	res := runBin(t, "--list", "--framing", "len32")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	specs, err := report.ParseListing(strings.NewReader(res.stdout))
	if err != nil || len(specs) == 0 {
		t.Fatalf("--list output does not parse (%v):\n%s", err, res.stdout)
	}
	line := regexp.MustCompile(`(?m)^EA-[A-Z]+-[0-9]+(,EA-[A-Z]+-[0-9]+)*\t(MUST|SHOULD|MAY)\t.+$`)
	if n := len(line.FindAllString(res.stdout, -1)); n != len(specs) {
		t.Errorf("%d of %d spec lines have IDs and a level:\n%s", n, len(specs), res.stdout)
	}
	// A filter narrows the listing; the listing starts nothing.
	narrow := runBin(t, "--list", "--label-filter", "EA-ECHO-1")
	got, _ := report.ParseListing(strings.NewReader(narrow.stdout))
	if len(got) == 0 || len(got) >= len(specs) {
		t.Errorf("--label-filter EA-ECHO-1 lists %d specs of %d", len(got), len(specs))
	}
	for _, s := range got {
		if !strings.Contains(strings.Join(s.IDs, ","), "EA-ECHO-1") {
			t.Errorf("--label-filter EA-ECHO-1 lists %q (%v)", s.Name, s.IDs)
		}
	}
}

func TestJSONReportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "report.json")
	junit := filepath.Join(dir, "junit.xml")
	res := runBin(t, "--label-filter", quickFilter, "--json-report", path, "--junit-report", junit, "--no-color")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := readReport(t, path)
	again, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(again, '\n'), raw) {
		t.Errorf("the JSON report does not round-trip through report.Report:\n%s\nvs\n%s", raw, again)
	}
	if r.Schema != report.Schema || r.Runner != "echoadd-conform" || r.Framing != "raw" || r.Target != "bundled reference server" ||
		r.Verdict != report.Conformant || r.ExitCode != 0 || r.Flags["label-filter"] != quickFilter ||
		len(r.Specs) == 0 || len(r.Requirements) != len(report.Catalogue) || r.Finished.Before(r.Started) {
		t.Errorf("report fields: %+v", r)
	}
	for _, s := range r.Specs {
		if s.State != "passed" || len(s.IDs) == 0 || s.Level != "must" {
			t.Errorf("spec %+v", s)
		}
	}
	if !strings.Contains(r.ServerOutput, "listening on") {
		t.Errorf("server output not captured: %q", r.ServerOutput)
	}
	if x, err := os.ReadFile(junit); err != nil || !bytes.Contains(x, []byte("<testsuites")) {
		t.Errorf("JUnit report: %v\n%.200s", err, x)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUnreachableTargetExits2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	res := runBin(t, "--target", closedPort(t), "--json-report", path)
	if res.code != 2 {
		t.Fatalf("exit %d, want 2\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	r := readReport(t, path)
	if r.Verdict != report.HarnessError || r.ExitCode != 2 || len(r.HarnessErrors) == 0 || !strings.Contains(r.HarnessErrors[0], "unreachable") {
		t.Errorf("report: verdict %q, exit %d, harness errors %q", r.Verdict, r.ExitCode, r.HarnessErrors)
	}
}

func TestServerCmdThatExitsEarlyExits2(t *testing.T) {
	for name, cmd := range map[string]string{
		"exits at once": "exit 0 # {port}",
		"fails at once": "echo no such server >&2; exit 127 # {port}",
		"bad flags":     "exec " + runnerBin + " __reference-server --listen 127.0.0.1:{port} --no-such-flag",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.json")
			res := runBin(t, "--server-cmd", cmd, "--label-filter", quickFilter, "--json-report", path)
			if res.code != 2 {
				t.Fatalf("exit %d, want 2\n%s\n%s", res.code, res.stdout, res.stderr)
			}
			if r := readReport(t, path); r.Verdict != report.HarnessError || len(r.HarnessErrors) == 0 {
				t.Errorf("report: verdict %q, harness errors %q", r.Verdict, r.HarnessErrors)
			}
		})
	}
}

func TestServerCmd(t *testing.T) {
	cmd := "exec " + runnerBin + " __reference-server --listen 127.0.0.1:{port} --framing varint"
	res := runBin(t, "--server-cmd", cmd, "--framing", "varint", "--label-filter", quickFilter)
	if res.code != 0 {
		t.Errorf("exit %d, want 0\n%s\n%s", res.code, res.stdout, res.stderr)
	}
}

// TestTarget starts the reference itself and points the runner at it.
func TestTarget(t *testing.T) {
	srv := exec.Command(runnerBin, "__reference-server", "--listen", "127.0.0.1:0", "--framing", "len32")
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	srv.Stdout, srv.Stderr = w, w
	err = srv.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait(); out.Close() })
	addr := ""
	listening := regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)
	sc := bufio.NewScanner(out)
	for addr == "" && sc.Scan() {
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatal("the reference server never said where it listens")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	res := runBin(t, "--target", addr, "--framing", "len32", "--label-filter", quickFilter)
	if res.code != 0 {
		t.Errorf("exit %d, want 0\n%s\n%s", res.code, res.stdout, res.stderr)
	}
}

// TestTimeoutScaleKeepsPiecesWithinTheReadTimeout: --timeout-scale, which
// the README offers for slow machines, lengthens the suite's pauses but not
// the server's read timeout; a request sent a byte at a time must still
// arrive whole well within it (at scale 4 the bundled reference, whose read
// timeout is 1 s, answered it with CODE_TIMEOUT and failed EA-FRAME-6).
func TestTimeoutScaleKeepsPiecesWithinTheReadTimeout(t *testing.T) {
	res := runBin(t, "--framing", "len32", "--timeout-scale", "8", "--focus", "arrives in pieces")
	if res.code != 0 || !strings.Contains(res.stdout, "CONFORMANT: 1 PASS") {
		t.Errorf("exit %d, want 0 and the spec passed\n%s\n%s", res.code, res.stdout, res.stderr)
	}
}

func TestNoSpecSelectedIsUsageError(t *testing.T) {
	res := runBin(t, "--label-filter", "EA-NOPE-1")
	if res.code != 3 || !strings.Contains(res.stderr, "no spec selected") {
		t.Errorf("exit %d, stderr %q; want 3 and a hint", res.code, res.stderr)
	}
}

// TestFilterForAnotherFraming: a filter that names a requirement with no
// spec in this framing says so, and one whose specs all skip themselves
// judges nothing: neither is CONFORMANT.
func TestFilterForAnotherFraming(t *testing.T) {
	res := runBin(t, "--label-filter", "EA-FRAME-6")
	if res.code != 3 || !strings.Contains(res.stderr, "no spec for EA-FRAME-6 with raw framing") {
		t.Errorf("EA-FRAME-6 in raw: exit %d, stderr %q; want 3 and the framing named", res.code, res.stderr)
	}
	path := filepath.Join(t.TempDir(), "r.json")
	res = runBin(t, "--label-filter", "EA-FRAME-4", "--json-report", path)
	if r := readReport(t, path); res.code != 3 || r.Verdict != report.NothingJudged || !strings.Contains(res.stdout, "nothing judged") {
		t.Errorf("EA-FRAME-4 in raw: exit %d, verdict %q; want 3, %s\n%s", res.code, r.Verdict, report.NothingJudged, res.stdout)
	}
}

// TestInterruptIsNoFailure: SIGINT stops the run; the report says it was
// interrupted, and the spec it stopped is no failure of the target. The
// signal could come between two specs, which would leave that last claim
// unchecked, so a run whose report has no interrupted spec is made again.
func TestInterruptIsNoFailure(t *testing.T) {
	for attempt := 1; ; attempt++ {
		r := runInterrupted(t, time.Duration(attempt)*300*time.Millisecond, os.Interrupt, report.ExitInterrupted)
		if r.Verdict != report.Interrupted || len(r.HarnessErrors) > 0 {
			t.Errorf("verdict %q, harness errors %q; want %s and none", r.Verdict, r.HarnessErrors, report.Interrupted)
		}
		for _, v := range r.Requirements {
			if v.Verdict == report.Fail || v.Verdict == report.NonStrict {
				t.Errorf("%s: %s (%s); an interrupt is not a failure", v.ID, v.Verdict, v.Reason)
			}
		}
		if slices.ContainsFunc(r.Specs, func(s report.Spec) bool { return s.State == "interrupted" }) {
			return
		}
		if attempt == 3 {
			t.Fatal("no spec was under way when SIGINT came, in 3 runs")
		}
		t.Logf("run %d: SIGINT came between two specs; again", attempt)
	}
}

// TestTerminatedExits143: SIGTERM (a cancelled CI job) interrupts as SIGINT
// does, with the status a shell gives a program SIGTERM ended.
func TestTerminatedExits143(t *testing.T) {
	if r := runInterrupted(t, 300*time.Millisecond, syscall.SIGTERM, report.ExitTerminated); r.Verdict != report.Interrupted || r.ExitCode != report.ExitTerminated {
		t.Errorf("verdict %q, exit code in the report %d; want %s, %d", r.Verdict, r.ExitCode, report.Interrupted, report.ExitTerminated)
	}
}

// runInterrupted runs the runner against the bundled reference, sends it
// sig after Ginkgo has announced the specs and after, and returns its
// report once it has exited with status want.
func runInterrupted(t *testing.T, after time.Duration, sig os.Signal, want int) *report.Report {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.json")
	cmd := exec.Command(runnerBin, "--json-report", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// The whole run takes about 4 s; specs are under way shortly
		// after Ginkgo announces them.
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Will run") {
				time.Sleep(after)
				cmd.Process.Signal(sig)
				break
			}
		}
		for sc.Scan() {
		}
		done <- cmd.Wait()
	}()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the runner did not stop within a minute of %v", sig)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != want {
		t.Fatalf("wait: %v; want exit %d", err, want)
	}
	return readReport(t, path)
}

// TestStackFilter: after an interrupt, the goroutine stacks of Ginkgo's
// progress report are left out, up to its closing delimiter; before one,
// and after the delimiter, everything passes.
func TestStackFilter(t *testing.T) {
	var out strings.Builder
	f := &stackFilter{w: &out}
	for _, w := range []string{
		"•••", "\n  Spec Goroutine\n", // no interrupt yet: a spec timeout's report is kept
		"  Interrupted by User\n", "    the spec (Spec Runtime: 51ms)\n",
		"\n", "  Spec Goroutine\n", "  goroutine 581 [IO wait]\n", "  Other Goroutines\n",
		"  ------------------------------", "\n", "SSS",
	} {
		if n, err := f.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", w, n, err)
		}
	}
	want := "•••\n  Spec Goroutine\n  Interrupted by User\n    the spec (Spec Runtime: 51ms)\n\n" +
		"\n  (goroutine stacks left out)\n  ------------------------------\nSSS"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
}
