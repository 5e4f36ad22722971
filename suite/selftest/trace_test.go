package selftest

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"echoadd/suite/report"
	"echoadd/suite/selftest/faulty"
)

// listAll runs `echoadd-conform --list` in every framing.
func listAll(t *testing.T) (listing []byte, specs []report.ListedSpec) {
	t.Helper()
	var all bytes.Buffer
	for _, f := range []string{"raw", "len32", "varint"} {
		out, err := exec.Command(runnerBin, "--list", "--framing", f).Output()
		if err != nil {
			t.Fatalf("echoadd-conform --list --framing %s: %v", f, err)
		}
		all.Write(out)
	}
	specs, err := report.ParseListing(bytes.NewReader(all.Bytes()))
	if err != nil {
		t.Fatalf("parsing --list output: %v", err)
	}
	if len(specs) == 0 {
		t.Fatal("--list lists no spec")
	}
	return all.Bytes(), specs
}

func protocolCatalogue(t *testing.T) []report.Requirement {
	t.Helper()
	f, err := os.Open("../../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cat, err := report.ParseCatalogue(f)
	if err != nil {
		t.Fatalf("PROTOCOL.md: %v", err)
	}
	return cat
}

// TestTraceability ties PROTOCOL.md, the specs' labels and the faults
// together.
func TestTraceability(t *testing.T) {
	cat := protocolCatalogue(t)
	_, specs := listAll(t)

	// Every spec names IDs that exist, at the level the spec carries.
	for _, s := range specs {
		if len(s.IDs) == 0 {
			t.Errorf("spec %q (%s) names no requirement ID", s.Name, s.Framing)
		}
		if !report.IsLevel(s.Level) {
			t.Errorf("spec %q (%s) has no level label", s.Name, s.Framing)
		}
		for _, id := range s.IDs {
			req, ok := report.Lookup(cat, id)
			switch {
			case !ok:
				t.Errorf("spec %q (%s) names %s, which PROTOCOL.md does not define", s.Name, s.Framing, id)
			case req.Level != s.Level:
				t.Errorf("spec %q (%s) is labelled %s, but %s is %s", s.Name, s.Framing, s.Level, id, strings.ToUpper(req.Level))
			}
		}
	}

	// Every MUST requirement is covered by a spec and caught by a fault.
	caught := map[string][]string{}
	for _, tg := range faultTargets {
		for _, id := range tg.must {
			caught[id] = append(caught[id], string(tg.fault))
		}
	}
	var uncoveredShould []string
	for _, req := range cat {
		covered := slices.ContainsFunc(specs, func(s report.ListedSpec) bool { return slices.Contains(s.IDs, req.ID) })
		if req.Level != "must" {
			if !covered {
				uncoveredShould = append(uncoveredShould, req.ID)
			}
			continue
		}
		if !covered {
			t.Errorf("MUST requirement %s has no spec", req.ID)
		}
		if len(caught[req.ID]) == 0 {
			t.Errorf("MUST requirement %s is caught by no faulty server", req.ID)
		}
	}
	if len(uncoveredShould) > 0 {
		t.Logf("SHOULD/MAY requirements without a spec: %v", uncoveredShould)
	}
}

// TestEveryFaultHasATarget keeps faults and expectations in step.
func TestEveryFaultHasATarget(t *testing.T) {
	for _, f := range faulty.Faults {
		if !slices.ContainsFunc(faultTargets, func(tg target) bool { return tg.fault == f }) {
			t.Errorf("fault %q has no entry in faultTargets", f)
		}
	}
}

// TestRequirementsDoc fails when docs/REQUIREMENTS.md is not what
// `go generate ./suite/selftest` makes from the current specs.
func TestRequirementsDoc(t *testing.T) {
	_, specs := listAll(t)
	var want bytes.Buffer
	if err := report.WriteRequirementsMarkdown(&want, report.Catalogue, specs); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/REQUIREMENTS.md")
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("docs/REQUIREMENTS.md is stale or missing (%v): run `go generate ./suite/selftest` (or `make docs`) and commit it", err)
	}
}
