package selftest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega/gexec"
	"go.uber.org/goleak"

	"echoadd/suite/report"
)

// runTimeout bounds one run of the runner.
const runTimeout = 5 * time.Minute

// Built once by TestMain.
var runnerBin, faultyBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	defer gexec.CleanupBuildArtifacts()
	var err error
	if runnerBin, err = gexec.Build("echoadd/cmd/echoadd-conform"); err != nil {
		fmt.Fprintln(os.Stderr, "selftest: building echoadd-conform:", err)
		return 1
	}
	if faultyBin, err = gexec.Build("echoadd/suite/selftest/faulty/cmd/faulty-server"); err != nil {
		fmt.Fprintln(os.Stderr, "selftest: building faulty-server:", err)
		return 1
	}
	code := m.Run()
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, "selftest: goroutines left running after the tests:", err)
		return 1
	}
	return code
}

// runResult is one run of the runner binary.
type runResult struct {
	exit           int
	report         *report.Report
	stdout, stderr string
	wall           time.Duration
	err            error // the runner could not be run or its report not read
}

// runRunner runs echoadd-conform with args plus a JSON report, bounded by
// runTimeout.
func runRunner(dir, name string, args ...string) runResult {
	return runRunnerWithin(runTimeout, dir, name, args...)
}

// runRunnerWithin is runRunner bounded by timeout.
func runRunnerWithin(timeout time.Duration, dir, name string, args ...string) runResult {
	jsonPath := filepath.Join(dir, name+".json")
	args = append(args, "--no-color", "--json-report", jsonPath)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, runnerBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res := runResult{stdout: stdout.String(), stderr: stderr.String(), wall: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && ctx.Err() == nil:
		res.exit = exitErr.ExitCode()
	case ctx.Err() != nil:
		res.err = fmt.Errorf("%s %q did not finish within %v", runnerBin, args, timeout)
		return res
	default:
		res.err = fmt.Errorf("running %s %q: %v", runnerBin, args, err)
		return res
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		res.err = fmt.Errorf("reading the JSON report: %v", err)
		return res
	}
	res.report = new(report.Report)
	if err := json.Unmarshal(b, res.report); err != nil {
		res.err = fmt.Errorf("decoding the JSON report: %v", err)
	}
	return res
}

// failed returns the requirements with verdict v.
func (r runResult) failed(v string) []string {
	ids := []string{}
	for _, req := range r.report.Requirements {
		if req.Verdict == v {
			ids = append(ids, req.ID)
		}
	}
	return ids
}

// explain lists the failing specs and reasons, for a failing assertion.
func (r runResult) explain() string {
	var b strings.Builder
	for _, req := range r.report.Requirements {
		if req.Verdict == report.Fail || req.Verdict == report.NonStrict {
			fmt.Fprintf(&b, "  %s %s: %s (%s)\n", req.ID, req.Verdict, req.Reason, strings.Join(req.FailingSpecs, "; "))
		}
	}
	for _, e := range r.report.HarnessErrors {
		fmt.Fprintf(&b, "  harness error: %s\n", e)
	}
	return b.String()
}

// runAll runs every target, at most jobs at a time, and returns the results
// by target name.
func runAll(t *testing.T, targets []target, jobs int) map[string]runResult {
	dir := os.Getenv("SELFTEST_REPORTS") // keep the JSON reports there
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	results := make(map[string]runResult, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, jobs)
	targets = slices.Clone(targets)
	slices.SortStableFunc(targets, func(a, b target) int { // long runs first
		return boolRank(slices.Contains(long, b.fault) && !b.bundled) - boolRank(slices.Contains(long, a.fault) && !a.bundled)
	})
	for _, tg := range targets {
		wg.Add(1)
		started := make(chan struct{})
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			close(started)
			defer func() { <-sem }()
			res := runRunner(dir, strings.ReplaceAll(tg.name, "/", "_"), tg.args()...)
			mu.Lock()
			results[tg.name] = res
			mu.Unlock()
		}()
		<-started // start in this order
	}
	wg.Wait()
	return results
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// jobs is how many runner processes run at once: SELFTEST_JOBS, default 4
// (runs mostly wait on the network and timers; 4 keeps 2 cores busy).
func jobs() int {
	if n, err := strconv.Atoi(os.Getenv("SELFTEST_JOBS")); err == nil && n > 0 {
		return n
	}
	return 4
}

// TestTargetsNameKnownRequirements: an ID misspelled in a target's lists
// would drop out of sorted's catalogue-ordered "want" and of "got" alike,
// and the verdict check would pass without checking it.
func TestTargetsNameKnownRequirements(t *testing.T) {
	for _, tg := range allTargets() {
		for _, id := range slices.Concat(tg.must, tg.should, tg.pass) {
			if _, ok := report.Lookup(report.Catalogue, id); !ok {
				t.Errorf("%s: %s is not a requirement of PROTOCOL.md", tg.name, id)
			}
		}
	}
}

// TestTargets runs the runner against the bundled reference in every
// framing and against every faulty server, and checks each one's verdicts.
func TestTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole suite against every target")
	}
	targets := allTargets()
	if only := os.Getenv("SELFTEST_ONLY"); only != "" { // e.g. SELFTEST_ONLY=faulty/slow
		targets = slices.DeleteFunc(targets, func(tg target) bool { return !strings.Contains(tg.name, only) })
	}
	start := time.Now()
	results := runAll(t, targets, jobs())
	t.Logf("%d targets in %v wall time (%d at a time)", len(results), time.Since(start).Round(time.Millisecond), jobs())
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			res := results[tg.name]
			if res.err != nil {
				t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", res.err, res.stdout, res.stderr)
			}
			t.Logf("%v", res.wall.Round(time.Millisecond))
			checkVerdicts(t, tg, res)
		})
	}
}

func checkVerdicts(t *testing.T, tg target, res runResult) {
	t.Helper()
	rep := res.report
	if len(rep.HarnessErrors) > 0 {
		t.Errorf("harness errors: %q", rep.HarnessErrors)
	}
	gotMust, gotShould := res.failed(report.Fail), res.failed(report.NonStrict)
	wantMust, wantShould := sorted(tg.must), sorted(tg.should)
	if !slices.Equal(gotMust, wantMust) || !slices.Equal(gotShould, wantShould) {
		t.Errorf("failed requirements:\n  got  MUST %v, SHOULD/MAY %v\n  want MUST %v, SHOULD/MAY %v\n%s",
			gotMust, gotShould, wantMust, wantShould, res.explain())
	}
	for _, req := range rep.Requirements {
		if slices.Contains(tg.pass, req.ID) && req.Verdict != report.Pass {
			t.Errorf("%s: %s (%s), want PASS", req.ID, req.Verdict, req.Reason)
		}
	}
	if tg.limits { // a skip would pass the checks above: the limits must have been declared
		for _, req := range rep.Requirements {
			if slices.Contains(limitsIDs, req.ID) && !slices.Contains(tg.should, req.ID) && req.Verdict != report.Pass {
				t.Errorf("%s: %s (%s), want PASS", req.ID, req.Verdict, req.Reason)
			}
		}
	}
	wantExit := report.ExitConformant
	if len(wantMust) > 0 {
		wantExit = report.ExitNotConformant
	}
	if res.exit != wantExit || rep.ExitCode != res.exit {
		t.Errorf("exit code %d (report says %d), want %d\nstderr:\n%s", res.exit, rep.ExitCode, wantExit, res.stderr)
	}
	if tg.hint != "" {
		if !strings.Contains(res.stdout, tg.hint) || !jsonContains(rep, tg.hint) {
			t.Errorf("neither the console output nor the JSON report's failures name %q", tg.hint)
		}
	}
}

// jsonContains reports whether a failure of the report mentions s.
func jsonContains(rep *report.Report, s string) bool {
	for _, sp := range rep.Specs {
		if strings.Contains(sp.Failure, s) {
			return true
		}
	}
	return false
}

// sorted orders IDs as the report does: in catalogue order.
func sorted(ids []string) []string {
	out := []string{}
	for _, req := range report.Catalogue {
		if slices.Contains(ids, req.ID) {
			out = append(out, req.ID)
		}
	}
	return out
}
