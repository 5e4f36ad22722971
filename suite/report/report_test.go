package report

import (
	"bytes"
	"encoding/json"
	"go/format"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

var testCatalogue = []Requirement{
	{ID: "EA-ECHO-1", Level: "must", Text: "echo"},
	{ID: "EA-ERR-1", Level: "should", Text: "errors"},
	{ID: "EA-LIM-3", Level: "should", Text: "read timeout"},
	{ID: "EA-LIM-4", Level: "may", Text: "idle"},
	{ID: "EA-ADD-1", Level: "must", Text: "add"},
}

func it(name string, state types.SpecState, msg string, labels ...string) types.SpecReport {
	return types.SpecReport{
		LeafNodeType:   types.NodeTypeIt,
		LeafNodeText:   name,
		LeafNodeLabels: labels,
		State:          state,
		Failure:        types.Failure{Message: msg},
		RunTime:        1500 * time.Millisecond,
	}
}

func build(strict bool, specs ...types.SpecReport) *Report {
	r := New(Meta{Version: "test", Target: "t", Framing: "raw", Strict: strict, Started: time.Unix(0, 0).UTC()})
	r.AddGinkgo(types.Report{SpecReports: specs})
	r.Finish(time.Unix(10, 0).UTC(), testCatalogue)
	return r
}

func verdicts(r *Report) map[string]string {
	m := map[string]string{}
	for _, v := range r.Requirements {
		m[v.ID] = v.Verdict
	}
	return m
}

func TestVerdicts(t *testing.T) {
	passEcho := it("echo", types.SpecStatePassed, "", "EA-ECHO-1", "must")
	passAdd := it("add", types.SpecStatePassed, "", "EA-ADD-1", "must")
	tests := []struct {
		name   string
		strict bool
		specs  []types.SpecReport
		want   map[string]string
		exit   int
		reason string // in the first requirement's reason, if set
	}{
		{
			name:  "all pass, rest not run",
			specs: []types.SpecReport{passEcho, passAdd},
			want:  map[string]string{"EA-ECHO-1": Pass, "EA-ADD-1": Pass, "EA-ERR-1": NotRun, "EA-LIM-3": NotRun, "EA-LIM-4": NotRun},
			exit:  ExitConformant,
		},
		{
			name:  "must failure fails the run",
			specs: []types.SpecReport{passEcho, it("add wraps", types.SpecStateFailed, "EA-ADD-1: got 1, want 3\n-> 10 01", "EA-ADD-1", "must")},
			want:  map[string]string{"EA-ECHO-1": Pass, "EA-ADD-1": Fail, "EA-ERR-1": NotRun, "EA-LIM-3": NotRun, "EA-LIM-4": NotRun},
			exit:  ExitNotConformant,
		},
		{
			name:  "should failure is non-strict",
			specs: []types.SpecReport{passEcho, it("err", types.SpecStateFailed, "EA-ERR-1: no error", "EA-ERR-1", "should"), it("idle", types.SpecStatePanicked, "boom", "EA-LIM-4", "may")},
			want:  map[string]string{"EA-ECHO-1": Pass, "EA-ADD-1": NotRun, "EA-ERR-1": NonStrict, "EA-LIM-3": NotRun, "EA-LIM-4": NonStrict},
			exit:  ExitConformant,
		},
		{
			name:   "should failure fails a strict run",
			strict: true,
			specs:  []types.SpecReport{passEcho, it("err", types.SpecStateFailed, "EA-ERR-1: no error", "EA-ERR-1", "should")},
			want:   map[string]string{"EA-ECHO-1": Pass, "EA-ADD-1": NotRun, "EA-ERR-1": NonStrict, "EA-LIM-3": NotRun, "EA-LIM-4": NotRun},
			exit:   ExitNotConformant,
		},
		{
			name:  "skip with reason, filtered spec absent",
			specs: []types.SpecReport{it("timeout", types.SpecStateSkipped, "needs --read-timeout", "EA-LIM-3", "should"), it("filtered", types.SpecStateSkipped, "", "EA-ECHO-1", "must")},
			want:  map[string]string{"EA-ECHO-1": NotRun, "EA-ADD-1": NotRun, "EA-ERR-1": NotRun, "EA-LIM-3": Skipped, "EA-LIM-4": NotRun},
			exit:  ExitUsage, // nothing judged
		},
		{
			name:  "a pass and a skip judge something",
			specs: []types.SpecReport{passEcho, it("timeout", types.SpecStateSkipped, "needs --read-timeout", "EA-LIM-3", "should")},
			want:  map[string]string{"EA-ECHO-1": Pass, "EA-ADD-1": NotRun, "EA-ERR-1": NotRun, "EA-LIM-3": Skipped, "EA-LIM-4": NotRun},
			exit:  ExitConformant,
		},
		{
			name:  "a spec that failed on another requirement leaves its own not judged, whatever else passed",
			specs: []types.SpecReport{passEcho, passAdd, it("100 at once", types.SpecStateFailed, "EA-ADD-1 (checking EA-ECHO-1): got an error reply", "EA-ECHO-1", "must")},
			want:  map[string]string{"EA-ECHO-1": NotJudged, "EA-ADD-1": Fail, "EA-ERR-1": NotRun, "EA-LIM-3": NotRun, "EA-LIM-4": NotRun},
			exit:  ExitNotConformant,
		},
		{
			name:  "a spec skipped after an earlier failure is not judged, not skipped",
			specs: []types.SpecReport{it("add", types.SpecStateFailed, "EA-ADD-1: no reply within 2s", "EA-ADD-1", "must"), it("echo", types.SpecStateSkipped, "not judged: the target stopped answering: EA-ADD-1: no reply within 2s", "EA-ECHO-1", "must")},
			want:  map[string]string{"EA-ECHO-1": NotJudged, "EA-ADD-1": Fail, "EA-ERR-1": NotRun, "EA-LIM-3": NotRun, "EA-LIM-4": NotRun},
			exit:  ExitNotConformant,
		},
		{
			name:  "a spec that failed on another requirement after its own passed counts as their pass",
			specs: []types.SpecReport{it("too large", types.SpecStateFailed, "EA-ERR-1 (checking EA-LIM-3, which passed): got an empty detail", "EA-LIM-3", "should")},
			want:  map[string]string{"EA-ECHO-1": NotRun, "EA-ADD-1": NotRun, "EA-ERR-1": NonStrict, "EA-LIM-3": Pass, "EA-LIM-4": NotRun},
			exit:  ExitConformant,
		},
		{
			name:  "failure counted against the IDs its message names",
			specs: []types.SpecReport{it("echo late", types.SpecStateFailed, "EA-ADD-1 (checking EA-ECHO-1): got a reply after 1.5s, want within 1s", "EA-ECHO-1", "must"), it("timeout", types.SpecStateFailed, "EA-LIM-3 EA-ERR-1: got nothing", "EA-LIM-3", "should")},
			want:  map[string]string{"EA-ECHO-1": NotJudged, "EA-ADD-1": Fail, "EA-ERR-1": NonStrict, "EA-LIM-3": NonStrict, "EA-LIM-4": NotRun},
			exit:  ExitNotConformant,
		},
		{
			name:  "harness error is exit 2, not a verdict",
			specs: []types.SpecReport{it("echo", types.SpecStateFailed, HarnessErrorPrefix+": dial tcp: connection refused", "EA-ECHO-1", "must")},
			want:  map[string]string{"EA-ECHO-1": NotRun, "EA-ADD-1": NotRun, "EA-ERR-1": NotRun, "EA-LIM-3": NotRun, "EA-LIM-4": NotRun},
			exit:  ExitHarnessError,
		},
		{
			name:  "a spec out of its time budget is a harness error, not a failure of its requirements",
			specs: []types.SpecReport{passEcho, it("1000 echoes", types.SpecStateTimedout, "A spec timeout occurred", "EA-ADD-1", "must")},
			want:  map[string]string{"EA-ECHO-1": Pass, "EA-ADD-1": NotRun, "EA-ERR-1": NotRun, "EA-LIM-3": NotRun, "EA-LIM-4": NotRun},
			exit:  ExitHarnessError,
		},
		{
			name:  "a MUST failure beside a harness error is not conformant: the failure is a verdict",
			specs: []types.SpecReport{it("late", types.SpecStateFailed, "EA-CONN-6: got a reply 1.2s after its request, want within 1s", "EA-CONN-6", "must"), it("1000 echoes", types.SpecStateTimedout, "A spec timeout occurred", "EA-ADD-1", "must")},
			want:  map[string]string{"EA-ECHO-1": NotRun, "EA-ADD-1": NotRun, "EA-ERR-1": NotRun, "EA-LIM-3": NotRun, "EA-LIM-4": NotRun},
			exit:  ExitNotConformant,
		},
		{
			name:   "failed BeforeSuite is a harness error",
			specs:  []types.SpecReport{{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStateFailed, Failure: types.Failure{Message: "server never listened"}}},
			want:   map[string]string{"EA-ECHO-1": NotRun, "EA-ADD-1": NotRun, "EA-ERR-1": NotRun, "EA-LIM-3": NotRun, "EA-LIM-4": NotRun},
			exit:   ExitHarnessError,
			reason: "not run: the target could not be tested", // not "no spec for this framing": none was reached
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := build(tt.strict, tt.specs...)
			if v := r.Requirements[0]; !strings.Contains(v.Reason, tt.reason) {
				t.Errorf("%s: reason %q, want %q in it", v.ID, v.Reason, tt.reason)
			}
			if got := verdicts(r); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("verdicts = %v, want %v", got, tt.want)
			}
			if r.ExitCode != tt.exit {
				t.Errorf("exit code = %d, want %d (harness errors %q)", r.ExitCode, tt.exit, r.HarnessErrors)
			}
		})
	}
}

func TestFailureDetails(t *testing.T) {
	r := build(false, it("add wraps", types.SpecStateFailed, "EA-ADD-1: got 1, want 3\n\n-> 10 01\n<- 08 01", "add", "EA-ADD-1", "must"))
	s := r.Specs[0]
	if s.Reason != "EA-ADD-1: got 1, want 3" || s.Transcript != "-> 10 01\n<- 08 01" || s.Level != "must" || !slices.Equal(s.IDs, []string{"EA-ADD-1"}) {
		t.Errorf("spec = %+v", s)
	}
	v := r.Requirements[4]
	if v.ID != "EA-ADD-1" || v.Reason != s.Reason || !slices.Equal(v.FailingSpecs, []string{"add wraps"}) {
		t.Errorf("verdict = %+v", v)
	}
}

func TestLabelWarnings(t *testing.T) {
	r := build(false, it("x", types.SpecStatePassed, "", "EA-ERR-1", "must"), it("y", types.SpecStatePassed, "", "EA-NOPE-1", "must"))
	want := []string{
		`spec "x" is labelled must but EA-ERR-1 is SHOULD`,
		`spec "y" names EA-NOPE-1, which PROTOCOL.md does not define`,
	}
	if !slices.Equal(r.Warnings, want) {
		t.Errorf("warnings = %q, want %q", r.Warnings, want)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := build(false, it("add wraps", types.SpecStateFailed, "EA-ADD-1: got 1\n-> 10", "EA-ADD-1", "must"), it("echo", types.SpecStatePassed, "", "EA-ECHO-1", "must"))
	r.Flags = map[string]string{"framing": "raw"}
	r.ServerOutput = "listening on 127.0.0.1:1\n"
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	want := *r
	want.seen = runNotes{} // not part of the JSON
	if !reflect.DeepEqual(back, want) {
		t.Errorf("round trip changed the report:\n got %+v\nwant %+v", back, *r)
	}
	// The documented top-level keys are all present.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "runner", "version", "target", "framing", "strict", "flags", "started", "finished", "specs", "requirements", "harness_errors", "verdict", "exit_code", "server_output"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
}

func TestTable(t *testing.T) {
	r := build(false, it("add wraps", types.SpecStateFailed, "EA-ADD-1: got 1, want 3\n-> 10", "EA-ADD-1", "must"), it("echo", types.SpecStatePassed, "", "EA-ECHO-1", "must"))
	var b bytes.Buffer
	if err := r.WriteTable(&b, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"EA-ADD-1     MUST    FAIL        0/1     EA-ADD-1: got 1, want 3",
		"EA-ECHO-1    MUST    PASS        1/1",
		"NOT CONFORMANT: 1 PASS, 1 FAIL, 0 NON-STRICT, 0 NOT JUDGED, 0 SKIPPED, 3 NOT RUN (raw framing, t); exit 1",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestTableFramingHint: when a failure carries a framing hint ("hint: ...
// try --framing len32 ..." under its first line), the summary ends with it,
// cut after the framing it advises; other hints (a shell's) and hints in
// the transcript are not framing hints.
func TestTableFramingHint(t *testing.T) {
	const hint = "the bytes received look like len32 framing (each message behind a 4-byte big-endian length, e.g. 00 00 00 NN), not raw: try --framing len32"
	for _, tc := range []struct {
		name  string
		specs []types.SpecReport
		want  string // the last line; "" for none starting "hint: "
	}{
		{"framing hint", []types.SpecReport{
			it("echo", types.SpecStatePassed, "", "EA-ADD-1", "must"),
			it("ordering", types.SpecStateFailed, "EA-ECHO-1: got bytes that are not a raw reply, want x\nhint: "+hint+" (read that way, they are error CODE_TOO_LARGE \"protocol: ...\")\n\nconn 1 ...", "EA-ECHO-1", "must"),
			it("later", types.SpecStateSkipped, "not judged: the target speaks another framing: "+hint, "EA-ERR-1", "should"),
		}, "hint: " + hint},
		{"shell hint", []types.SpecReport{
			it("stop", types.SpecStateFailed, "EA-ECHO-1: got exit status 143, want exit status 0\n\nhint: the shell did not pass the signal on: try exec", "EA-ECHO-1", "must"),
		}, ""},
		{"no failure", []types.SpecReport{it("echo", types.SpecStatePassed, "", "EA-ECHO-1", "must")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := build(false, tc.specs...).WriteTable(&b, false); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
			last := lines[len(lines)-1]
			switch {
			case tc.want != "" && last != tc.want:
				t.Errorf("last line %q, want %q:\n%s", last, tc.want, b.String())
			case tc.want == "" && strings.Contains(b.String(), "\nhint: "):
				t.Errorf("a hint line where no failure has a framing hint:\n%s", b.String())
			}
		})
	}
}

// TestInterrupt: an interrupt is no failure of the target; the run's
// verdict says it was interrupted.
func TestInterrupt(t *testing.T) {
	r := New(Meta{Framing: "raw", Target: "t"})
	r.AddGinkgo(types.Report{
		SpecReports: []types.SpecReport{
			it("echo", types.SpecStatePassed, "", "EA-ECHO-1", "must"),
			it("add", types.SpecStateInterrupted, "Interrupted by User", "EA-ADD-1", "must"),
			it("timeout", types.SpecStateSkipped, "", "EA-LIM-3", "should"), // not reached
		},
		SpecialSuiteFailureReasons: []string{interruptedByUser},
	})
	r.Finish(time.Unix(10, 0).UTC(), testCatalogue)
	want := map[string]string{"EA-ECHO-1": Pass, "EA-ADD-1": NotJudged, "EA-ERR-1": NotRun, "EA-LIM-3": NotRun, "EA-LIM-4": NotRun}
	if got := verdicts(r); !reflect.DeepEqual(got, want) {
		t.Errorf("verdicts = %v, want %v", got, want)
	}
	if r.Verdict != Interrupted || r.ExitCode != ExitInterrupted || len(r.HarnessErrors) > 0 {
		t.Errorf("verdict %s, exit %d, harness errors %q; want %s, %d, none", r.Verdict, r.ExitCode, r.HarnessErrors, Interrupted, ExitInterrupted)
	}
	if v := r.Requirements[2]; v.ID != "EA-LIM-3" || v.Reason != "not reached: the run was interrupted" {
		t.Errorf("EA-LIM-3: %+v", v)
	}
}

// TestNotRunReasons: a requirement without a spec in the run says whether
// its specs were filtered out, not reached, or not built for this framing.
func TestNotRunReasons(t *testing.T) {
	r := build(false,
		it("echo", types.SpecStatePassed, "", "EA-ECHO-1", "must"),
		it("add", types.SpecStateSkipped, "", "EA-ADD-1", "must")) // filtered out
	reasons := map[string]string{}
	for _, v := range r.Requirements {
		reasons[v.ID] = v.Reason
	}
	if got := reasons["EA-ADD-1"]; got != "not selected (--label-filter, --focus)" {
		t.Errorf("filtered: %q", got)
	}
	if got := reasons["EA-ERR-1"]; got != "no spec for raw framing and these flags" {
		t.Errorf("not built: %q", got)
	}

	// The runner found the target unreachable and ran nothing.
	r = New(Meta{Framing: "raw", Target: "t"})
	r.AddHarnessError("target t unreachable")
	r.Finish(time.Unix(10, 0).UTC(), testCatalogue)
	if v := r.Requirements[0]; v.Reason != "not run: the target could not be tested (see the harness errors)" {
		t.Errorf("without a run: %+v", v)
	}

	r = New(Meta{Framing: "raw", Target: "t"})
	r.AddGinkgo(types.Report{SpecReports: []types.SpecReport{
		{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStateFailed, Failure: types.Failure{Message: "server never listened"}},
		it("echo", types.SpecStateSkipped, "", "EA-ECHO-1", "must"),
	}})
	r.Finish(time.Unix(10, 0).UTC(), testCatalogue)
	if v := r.Requirements[0]; v.ID != "EA-ECHO-1" || v.Reason != "not reached: the run stopped early (see the harness errors)" {
		t.Errorf("after a failed BeforeSuite: %+v", v)
	}
}

// TestStrictSaysWhy: under --strict a run with only a SHOULD failed says
// that this is why it is NOT CONFORMANT.
func TestStrictSaysWhy(t *testing.T) {
	r := build(true, it("echo", types.SpecStatePassed, "", "EA-ECHO-1", "must"), it("err", types.SpecStateFailed, "EA-ERR-1: no error", "EA-ERR-1", "should"))
	var b bytes.Buffer
	if err := r.WriteTable(&b, false); err != nil {
		t.Fatal(err)
	}
	if want := "--strict: the 1 NON-STRICT requirement (a SHOULD or MAY failed) fails this run"; r.Verdict != NotConformant || !strings.Contains(b.String(), want) {
		t.Errorf("verdict %s; table lacks %q:\n%s", r.Verdict, want, b.String())
	}
}

// TestUncheckedMusts: a CONFORMANT run says which MUST requirements it did
// not check.
func TestUncheckedMusts(t *testing.T) {
	r := build(false,
		it("echo", types.SpecStatePassed, "", "EA-ECHO-1", "must"),
		it("add", types.SpecStateSkipped, "needs --server-cmd", "EA-ADD-1", "must"))
	var b bytes.Buffer
	if err := r.WriteTable(&b, false); err != nil {
		t.Fatal(err)
	}
	if want := "not checked in this run: 1 MUST requirement (EA-ADD-1: needs --server-cmd)"; r.Verdict != Conformant || !strings.Contains(b.String(), want) {
		t.Errorf("verdict %s; table lacks %q:\n%s", r.Verdict, want, b.String())
	}
	// A MUST of another framing does not apply, so it is not "unchecked".
	r = build(false,
		it("echo", types.SpecStatePassed, "", "EA-ECHO-1", "must"),
		it("add len32", types.SpecStateSkipped, "for len32 and varint framing; the target speaks raw", "EA-ADD-1", "must"))
	if u, filtered := r.Unchecked(); len(u) != 0 || filtered != 0 {
		t.Errorf("Unchecked = %+v, %d filtered; want none", u, filtered)
	}
	// One the filter left out is only counted.
	r = build(false,
		it("echo", types.SpecStatePassed, "", "EA-ECHO-1", "must"),
		it("add", types.SpecStateSkipped, "", "EA-ADD-1", "must")) // filtered out
	b.Reset()
	if err := r.WriteTable(&b, false); err != nil {
		t.Fatal(err)
	}
	if u, filtered := r.Unchecked(); len(u) != 0 || filtered != 1 || !strings.Contains(b.String(), "left out by --label-filter or --focus: 1 MUST requirement\n") {
		t.Errorf("Unchecked = %+v, %d filtered; want none, 1; table:\n%s", u, filtered, b.String())
	}
}

func TestParseCatalogue(t *testing.T) {
	good := "# x\n- **EA-A-1** (MUST) One.\nprose\n- **EA-B-2** (SHOULD) Two.\n"
	got, err := ParseCatalogue(strings.NewReader(good))
	want := []Requirement{{"EA-A-1", "must", "One."}, {"EA-B-2", "should", "Two."}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCatalogue = %v, %v; want %v", got, err, want)
	}
	for name, bad := range map[string]string{
		"bad level": "- **EA-A-1** (MUSTN'T) One.\n",
		"duplicate": "- **EA-A-1** (MUST) One.\n- **EA-A-1** (MAY) Again.\n",
		"empty":     "prose only\n",
	} {
		if _, err := ParseCatalogue(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestCatalogueFresh fails when PROTOCOL.md changed and catalogue_gen.go was
// not regenerated.
func TestCatalogueFresh(t *testing.T) {
	f, err := os.Open("../../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reqs, err := ParseCatalogue(f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := format.Source(CatalogueSource(reqs))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("catalogue_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("suite/report/catalogue_gen.go is stale: run `go generate ./suite/report` and commit it")
	}
	if !reflect.DeepEqual(reqs, Catalogue) {
		t.Errorf("Catalogue differs from PROTOCOL.md: run `go generate ./suite/report`")
	}
}

func TestListingRoundTrip(t *testing.T) {
	specs := []ListedSpec{
		{Framing: "len32", IDs: []string{"EA-FRAME-4", "EA-FRAME-6"}, Level: "must", Name: "Framing [It] len32 prefix"},
		{Framing: "len32", IDs: []string{"EA-ERR-1"}, Level: "should", Name: "Errors [It] x"},
	}
	var b bytes.Buffer
	if err := WriteListing(&b, "len32", specs); err != nil {
		t.Fatal(err)
	}
	got, err := ParseListing(&b)
	if err != nil || !reflect.DeepEqual(got, specs) {
		t.Errorf("ParseListing = %+v, %v; want %+v", got, err, specs)
	}
	var md bytes.Buffer
	if err := WriteRequirementsMarkdown(&md, testCatalogue, specs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| EA-ERR-1 | SHOULD | 1 | Errors [It] x (len32) |") || !strings.Contains(md.String(), "| EA-ECHO-1 | MUST | 0 | **none** |") {
		t.Errorf("markdown:\n%s", md.String())
	}
}

// TestConcurrencyHint: a server that serves one connection at a time fails
// EA-CONC-1 with a reply that never came, and other specs the same way; the
// summary says they most likely share that cause. Failures of another kind
// are not named, and without EA-CONC-1's there is no hint.
func TestConcurrencyHint(t *testing.T) {
	noReply := func(id, want string) string {
		return id + ": got no reply within 2.004s of its request, want echo_message \"" + want + "\""
	}
	serial := []types.SpecReport{
		it("clients", types.SpecStateFailed, noReply("EA-CONC-1", "client 2"), "EA-CONC-1", "must"),
		it("new client", types.SpecStateFailed, noReply("EA-TRANS-1", "new client"), "EA-TRANS-1", "must"),
		it("echo", types.SpecStateFailed, "EA-ECHO-1: got echo_message \"x\", want echo_message \"y\"", "EA-ECHO-1", "must"),
	}
	catalogue := append(slices.Clone(testCatalogue), Requirement{ID: "EA-CONC-1", Level: "must", Text: "concurrent clients"}, Requirement{ID: "EA-TRANS-1", Level: "must", Text: "transport"})
	report := func(specs ...types.SpecReport) *Report {
		r := New(Meta{Version: "test", Target: "t", Framing: "raw", Started: time.Unix(0, 0).UTC()})
		r.AddGinkgo(types.Report{SpecReports: specs})
		r.Finish(time.Unix(10, 0).UTC(), catalogue)
		return r
	}
	var b bytes.Buffer
	if err := report(serial...).WriteTable(&b, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "hint: EA-CONC-1 failed on a client left without a reply") || !strings.Contains(b.String(), "; EA-TRANS-1 failed with no reply as well") {
		t.Errorf("no hint naming EA-TRANS-1 alone:\n%s", b.String())
	}
	if h := report(serial[1:]...).ConcurrencyHint(); h != "" {
		t.Errorf("without EA-CONC-1's failure: hint %q, want none", h)
	}
}
