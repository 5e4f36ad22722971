package selftest

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"echoadd/suite/report"
)

// TestCompoundServerCmd: a server command with shell syntax and no exec
// (`cd dir && ./server`) keeps sh between the runner and the server, so
// the stop signal ends the shell and its exit is what EA-STOP-4 judges. The
// failure says so, and how to fix the command.
func TestCompoundServerCmd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite")
	}
	cmd := fmt.Sprintf("cd %s && ./%s --listen 127.0.0.1:{port} --framing len32",
		filepath.Dir(faultyBin), filepath.Base(faultyBin))
	res := runRunner(t.TempDir(), "compound", "--server-cmd", cmd, "--framing", "len32",
		"--label-filter", "EA-STOP-4")
	if res.err != nil {
		t.Fatalf("%v\nstdout:\n%s", res.err, res.stdout)
	}
	if got := res.failed(report.Fail); !slices.Contains(got, "EA-STOP-4") {
		t.Fatalf("failed MUST requirements %v, want EA-STOP-4 among them\n%s", got, res.explain())
	}
	const hint = "the command runs under sh -c"
	if !jsonContains(res.report, hint) || !strings.Contains(res.stdout, hint) {
		t.Errorf("neither the console output nor the JSON report's failures say %q\n%s", hint, res.explain())
	}
}
