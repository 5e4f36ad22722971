package selftest

import (
	"slices"
	"strings"
	"testing"

	"echoadd/suite/report"
)

// TestConnLimitBelow100: a server declaring a connection limit below 100
// refuses one of EA-CONC-1's 100 clients with CODE_OVERLOADED. That breaks
// EA-CONC-1 (100 clients at once are served), not EA-MSG-1 (the reply's
// kind), and the failure says so, with the declared limit.
func TestConnLimitBelow100(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite")
	}
	res := runRunner(t.TempDir(), "max-conns-99", "--framing", "len32", "--max-conns", "99",
		"--label-filter", "EA-CONC-1 && concurrency")
	if res.err != nil {
		t.Fatalf("%v\nstdout:\n%s", res.err, res.stdout)
	}
	if got := res.failed(report.Fail); !slices.Equal(got, []string{"EA-CONC-1"}) {
		t.Errorf("failed MUST requirements %v, want [EA-CONC-1]\n%s", got, res.explain())
	}
	for _, req := range res.report.Requirements {
		if req.ID != "EA-CONC-1" {
			continue
		}
		for _, want := range []string{"EA-CONC-1: ", "of 100 (", "refused with Error CODE_OVERLOADED", "--max-conns is 99"} {
			if !strings.Contains(req.Reason, want) {
				t.Errorf("EA-CONC-1's reason %q does not say %q", req.Reason, want)
			}
		}
	}
}
