//go:build unix

package selftest

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"echoadd/suite/report"
)

// mismatchWall is what a run against a target of another framing may
// take: the first spec shows the mismatch, and the specs after it skip at
// once instead of each failing on it, some after waiting out a timeout
// (about 10 s in all before they skipped).
const mismatchWall = 8 * time.Second

// TestFramingMismatch: a target that speaks another framing than the
// runner's --framing fails only the framing requirement of the runner's
// framing (EA-FRAME-1 for raw, EA-FRAME-4 for len32, EA-FRAME-5 for
// varint), in each of the six directions, on the first spec, which says
// which framing the replies look like. Every later spec that talks to the
// target skips as NOT JUDGED, naming that framing, instead of being charged
// with failures that are the mismatch's; the summary ends with the hint.
func TestFramingMismatch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite against the reference in another framing")
	}
	for _, tc := range []struct {
		server, runner string
		fails          string // the one requirement that fails
	}{
		{server: "len32", runner: "raw", fails: "EA-FRAME-1"},
		{server: "varint", runner: "raw", fails: "EA-FRAME-1"},
		{server: "raw", runner: "len32", fails: "EA-FRAME-4"},
		{server: "varint", runner: "len32", fails: "EA-FRAME-4"},
		{server: "raw", runner: "varint", fails: "EA-FRAME-5"},
		{server: "len32", runner: "varint", fails: "EA-FRAME-5"},
	} {
		t.Run(tc.server+" target, "+tc.runner+" runner", func(t *testing.T) {
			addr := startReference(t, tc.server)
			res := runRunner(t.TempDir(), "mismatch-"+tc.runner, "--target", addr, "--framing", tc.runner)
			if res.err != nil {
				t.Fatalf("%v\nstdout tail:\n%s", res.err, tail(res.stdout, 40))
			}
			t.Logf("run took %v", res.wall.Round(time.Millisecond))
			if res.wall > mismatchWall {
				t.Errorf("the run took %v, want at most %v", res.wall.Round(time.Millisecond), mismatchWall)
			}
			if got, should := res.failed(report.Fail), res.failed(report.NonStrict); len(got) != 1 || got[0] != tc.fails || len(should) > 0 {
				t.Errorf("failed requirements: MUST %v, SHOULD/MAY %v; want MUST [%s] only\n%s", got, should, tc.fails, res.explain())
			}
			if res.exit != report.ExitNotConformant || res.report.ExitCode != res.exit {
				t.Errorf("exit code %d (report says %d), want %d\n%s", res.exit, res.report.ExitCode, report.ExitNotConformant, res.explain())
			}
			const notJudged = "not judged: the target speaks another framing: "
			failed, skipped := 0, 0
			for _, sp := range res.report.Specs {
				switch {
				case sp.Failed():
					failed++
				case sp.State == "skipped" && strings.HasPrefix(sp.Reason, notJudged):
					skipped++
					if !strings.Contains(sp.Reason, "try --framing "+tc.server) {
						t.Errorf("spec %q skipped with %q, which does not say to try --framing %s", sp.Name, sp.Reason, tc.server)
					}
				}
			}
			if failed != 1 || skipped == 0 {
				t.Errorf("%d specs failed and %d skipped with %q; want 1 failed, the others skipped\n%s", failed, skipped, notJudged, res.explain())
			}
			for _, req := range res.report.Requirements {
				if req.Verdict == report.Pass {
					t.Errorf("%s: PASS (%s), want no verdict on a target of another framing", req.ID, req.Reason)
				}
			}
			wantHint := "hint: the bytes received look like " + tc.server + " framing"
			if last := tail(res.stdout, 1); !strings.HasPrefix(last, wantHint) || !strings.HasSuffix(last, "try --framing "+tc.server) {
				t.Errorf("the output ends with %q, want a line %q...%q", last, wantHint, "try --framing "+tc.server)
			}
		})
	}
}

// startReference starts the reference server (the runner's hidden server
// mode) in framing on a random test port and returns its address; it is
// killed when the test ends.
func startReference(t *testing.T, framing string) string {
	t.Helper()
	for range 20 {
		addr := fmt.Sprintf("127.0.0.1:%d", testPortMin+rand.IntN(testPortMax-testPortMin+1))
		srv := exec.Command(runnerBin, "__reference-server", "--listen", addr, "--framing", framing)
		out, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		srv.Stdout, srv.Stderr = w, w
		err = srv.Start()
		w.Close()
		if err != nil {
			out.Close()
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		listening := false
		for !listening && sc.Scan() { // until it listens, or exits (the port is taken)
			listening = strings.Contains(sc.Text(), "listening on "+addr)
		}
		if !listening {
			srv.Wait() //nolint:errcheck // it has exited: its output ended
			out.Close()
			continue
		}
		go func() { // drain its log until it exits
			for sc.Scan() {
			}
		}()
		t.Cleanup(func() { srv.Process.Kill(); srv.Wait(); out.Close() }) //nolint:errcheck // the test is over
		return addr
	}
	t.Fatalf("the reference server did not start on a port in %d-%d after 20 tries", testPortMin, testPortMax)
	return ""
}
