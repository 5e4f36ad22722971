package report

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"echoadd/suite/harness"
)

// Schema is the version of the JSON report's layout.
const Schema = 1

// Exit codes of the runner (see the package documentation).
const (
	ExitConformant    = 0
	ExitNotConformant = 1
	ExitHarnessError  = 2
	ExitUsage         = 3
	ExitInterrupted   = 130 // as a shell reports a program ended by SIGINT
	ExitTerminated    = 143 // the same, for SIGTERM (a CI job cancelled)
)

// Overall verdicts.
const (
	Conformant    = "CONFORMANT"
	NotConformant = "NOT CONFORMANT"
	HarnessError  = "HARNESS ERROR"
	Interrupted   = "INTERRUPTED"
	NothingJudged = "NOTHING JUDGED"
)

// Requirement verdicts.
const (
	Pass      = "PASS"
	Fail      = "FAIL"
	NonStrict = "NON-STRICT"
	NotJudged = "NOT JUDGED"
	Skipped   = "SKIPPED"
	NotRun    = "NOT RUN"
)

// HarnessErrorPrefix starts the failure message of a spec that could not
// judge the target because the harness itself failed (the target did not
// listen, the server command exited): such a failure is not a verdict on the
// target, and makes the run exit 2.
const HarnessErrorPrefix = "HARNESS ERROR"

// Report is the JSON report (Schema 1).
type Report struct {
	Schema        int               `json:"schema"`             // always Schema
	Runner        string            `json:"runner"`             // "echoadd-conform"
	Version       string            `json:"version"`            // the runner's version
	Target        string            `json:"target"`             // what was tested, for people
	Framing       string            `json:"framing"`            // raw, len32 or varint
	Strict        bool              `json:"strict"`             // SHOULD/MAY failures fail the run
	Flags         map[string]string `json:"flags"`              // every runner flag and its value
	Started       time.Time         `json:"started"`            // RFC 3339
	Finished      time.Time         `json:"finished"`           // RFC 3339
	Specs         []Spec            `json:"specs"`              // in run order; filtered-out specs are absent
	Requirements  []Verdict         `json:"requirements"`       // one per catalogue requirement, in catalogue order
	HarnessErrors []string          `json:"harness_errors"`     // why the run could not judge the target, if it could not
	Warnings      []string          `json:"warnings,omitempty"` // suite inconsistencies (unknown IDs, level mismatch)
	Verdict       string            `json:"verdict"`            // CONFORMANT, NOT CONFORMANT, HARNESS ERROR, INTERRUPTED or NOTHING JUDGED
	ExitCode      int               `json:"exit_code"`          // the runner's exit status
	ServerOutput  string            `json:"server_output"`      // captured output of a started server (tail)

	seen runNotes // what AddGinkgo saw; not part of the JSON

	// Terminated says that the interrupt, if any, was SIGTERM, which the
	// exit status tells apart from SIGINT. The runner sets it before Finish.
	Terminated bool `json:"-"`
}

// runNotes are what AddGinkgo saw of the run: whether the suite ran, the
// requirement IDs of every spec built for it, selected or not, and whether
// it stopped before its end.
type runNotes struct {
	ran          bool
	built        map[string]bool
	stoppedEarly bool
	interrupted  bool
}

// Spec is one spec's result.
type Spec struct {
	Name       string   `json:"name"`       // containers and leaf text
	IDs        []string `json:"ids"`        // requirement IDs from its labels
	Level      string   `json:"level"`      // must, should or may ("" when unlabelled)
	Labels     []string `json:"labels"`     // all labels
	State      string   `json:"state"`      // Ginkgo's: passed, failed, skipped, panicked, timedout, interrupted, aborted
	Duration   float64  `json:"duration"`   // seconds
	Failure    string   `json:"failure"`    // failure message, or the skip reason; "" when passed
	Reason     string   `json:"reason"`     // first line of Failure
	Transcript string   `json:"transcript"` // the spec's wire transcript, when the suite recorded one
	Location   string   `json:"location"`   // file:line of the spec
	// FailedIDs are the requirements the failure is counted against: the
	// IDs its message starts with ("EA-CONN-6: got ..."), which may differ
	// from the spec's own (a late reply in an echo spec violates EA-CONN-6,
	// not EA-ECHO-1), else the spec's IDs. Empty unless the spec failed.
	FailedIDs []string `json:"failed_ids"`
}

// Verdict is one requirement's verdict.
type Verdict struct {
	ID           string   `json:"id"`
	Level        string   `json:"level"` // from the catalogue
	Text         string   `json:"text"`
	Verdict      string   `json:"verdict"`       // PASS, FAIL, NON-STRICT, NOT JUDGED, SKIPPED or NOT RUN
	Specs        []string `json:"specs"`         // every spec of this run naming it
	Passed       int      `json:"passed"`        // how many of them passed
	FailingSpecs []string `json:"failing_specs"` // those that failed
	Reason       string   `json:"reason"`        // one line: the first failure's, or why skipped / not run
}

// Failed reports whether the spec's state is a failure state. An
// interrupted spec has not failed: it was stopped.
func (s Spec) Failed() bool {
	switch s.State {
	case "passed", "skipped", "pending", "invalid", "interrupted":
		return false
	}
	return true
}

// OwnPassed reports whether the spec failed on another requirement only
// after its own checks had passed (harness.OwnPassed).
func (s Spec) OwnPassed() bool {
	head, _, _ := strings.Cut(s.Reason, ":")
	return strings.HasSuffix(head, harness.OwnPassed+")")
}

// HarnessFailure reports whether the spec failed because of the harness.
// A spec that ran out of its time budget (SpecTimeout) is one too: no
// requirement bounds how long a whole spec may take, only each reply
// (EA-CONN-6), so a slow target that answers every request in time has
// not failed; the run could not judge it within the suite's budget.
func (s Spec) HarnessFailure() bool {
	return s.Failed() && (strings.HasPrefix(s.Failure, HarnessErrorPrefix) || s.State == "timedout")
}

// Meta describes the run.
type Meta struct {
	Version string
	Target  string
	Framing string
	Strict  bool
	Flags   map[string]string
	Started time.Time
}

// New starts a report.
func New(m Meta) *Report {
	return &Report{
		Schema:        Schema,
		Runner:        "echoadd-conform",
		Version:       m.Version,
		Target:        m.Target,
		Framing:       m.Framing,
		Strict:        m.Strict,
		Flags:         m.Flags,
		Started:       m.Started,
		Specs:         []Spec{},
		HarnessErrors: []string{},
		seen:          runNotes{built: map[string]bool{}},
	}
}

// AddHarnessError records why the run cannot judge the target.
func (r *Report) AddHarnessError(format string, args ...any) {
	r.HarnessErrors = append(r.HarnessErrors, fmt.Sprintf(format, args...))
}

// AddGinkgo adds the specs that ran (filtered-out specs are left out) and
// turns failed suite-level nodes (BeforeSuite, AfterSuite, ...) and special
// suite failures (suite timeout) into harness errors. An interrupt (SIGINT)
// is no verdict on the target: the run's verdict is then INTERRUPTED.
func (r *Report) AddGinkgo(g types.Report) {
	r.seen.ran = true
	for _, sr := range g.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt {
			if sr.State.Is(types.SpecStateFailureStates) && sr.State != types.SpecStateInterrupted {
				r.AddHarnessError("%s failed: %s", sr.LeafNodeType, firstLine(sr.Failure.Message))
				r.seen.stoppedEarly = true
			}
			continue
		}
		ids, _ := Classify(sr.Labels())
		for _, id := range ids {
			r.seen.built[id] = true
		}
		if sr.State == types.SpecStateSkipped && sr.Failure.Message == "" {
			continue // filtered out, or not reached after a BeforeSuite failure or an interrupt
		}
		r.Specs = append(r.Specs, specOf(sr))
	}
	for _, reason := range g.SpecialSuiteFailureReasons {
		r.seen.stoppedEarly = true
		if reason == interruptedByUser {
			r.seen.interrupted = true
			continue
		}
		r.AddHarnessError("suite: %s", reason)
	}
}

// Built reports whether the suite built a spec for the requirement id in
// this run, selected or not.
func (r *Report) Built(id string) bool { return r.seen.built[id] }

// notJudgedPrefix starts the reason of a spec the suite skipped because of
// an earlier failure, rather than because it does not apply.
const notJudgedPrefix = "not judged: "

// FramingHint is the framing hint of the first failure that carries one,
// up to the framing it advises ("the bytes received look like len32
// framing (...), not raw: try --framing len32"), or "": the target seems to
// speak another framing than the run's.
func (r *Report) FramingHint() string {
	for _, s := range r.Specs {
		if s.Failed() && !s.HarnessFailure() {
			if h := harness.FramingHintIn(s.Failure); h != "" {
				return h
			}
		}
	}
	return ""
}

// noReplyPhrase starts the failure of a reply that never came
// (harness: "got no reply within 2.004s of its request, want ...").
const noReplyPhrase = "got no reply within"

// ConcurrencyHint says, when EA-CONC-1 failed on a client left without a
// reply, that other requirements failed the same way are most likely that
// fault too: a server that serves one connection at a time fails every
// spec that opens a second connection while the first is open (the
// shutdown, transport and malformed-input specs among them), under the
// spec's own requirement. "" otherwise.
func (r *Report) ConcurrencyHint() string {
	var conc bool
	var others []string
	for _, v := range r.Requirements {
		switch {
		case v.Verdict != Fail && v.Verdict != NonStrict, !strings.Contains(v.Reason, noReplyPhrase):
		case v.ID == "EA-CONC-1":
			conc = true
		default:
			others = append(others, v.ID)
		}
	}
	if !conc || len(others) == 0 {
		return ""
	}
	return fmt.Sprintf("EA-CONC-1 failed on a client left without a reply while others were connected: the server seems to serve one connection at a time; "+
		"%s failed with no reply as well, most likely on a connection opened while another was open: fix EA-CONC-1 first", strings.Join(others, ", "))
}

// NoReplyHint is the suite's advice for a target that answered no request
// at all (harness.NoReplyHint), as the reason of the specs it skipped
// carries it, or "".
func (r *Report) NoReplyHint() string {
	for _, s := range r.Specs {
		if s.State != "skipped" || !strings.HasPrefix(s.Reason, notJudgedPrefix) {
			continue
		}
		if _, hint, ok := strings.Cut(s.Reason, harness.NoReplyAdvice); ok {
			hint, _, _ = strings.Cut(hint, "; ")
			return harness.NoReplyAdvice + hint
		}
	}
	return ""
}

// interruptedByUser is Ginkgo's special suite failure reason for SIGINT.
const interruptedByUser = "Interrupted by User"

func specOf(sr types.SpecReport) Spec {
	s := Spec{
		Name:     sr.FullText(),
		Labels:   sr.Labels(),
		State:    sr.State.String(),
		Duration: sr.RunTime.Seconds(),
		Failure:  sr.Failure.Message,
		Location: sr.LeafNodeLocation.String(),
		IDs:      []string{},
	}
	s.IDs, s.Level = Classify(s.Labels)
	s.Reason = firstLine(s.Failure)
	s.Transcript = transcriptOf(sr)
	s.FailedIDs = []string{}
	if s.Failed() {
		s.FailedIDs = leadingIDs(s.Reason)
		if len(s.FailedIDs) == 0 {
			s.FailedIDs = s.IDs
		}
	}
	return s
}

// leadingIDs returns the requirement IDs a failure's first line starts
// with, as in "EA-CONN-6 EA-MSG-1: got ..." or "EA-CONN-6 (checking
// EA-ECHO-1): got ...", or none.
func leadingIDs(line string) []string {
	head, _, ok := strings.Cut(line, ":")
	if !ok {
		return nil
	}
	head, _, _ = strings.Cut(head, " (")
	ids := strings.FieldsFunc(head, func(r rune) bool { return r == ' ' || r == ',' })
	for _, id := range ids {
		if !IsID(id) {
			return nil
		}
	}
	return ids
}

// Classify picks the requirement IDs and the level out of a spec's labels.
// The strongest level wins if a spec (wrongly) carries several.
func Classify(labels []string) (ids []string, level string) {
	ids = []string{}
	rank := len(Levels)
	for _, l := range labels {
		switch {
		case IsID(l):
			if !slices.Contains(ids, l) {
				ids = append(ids, l)
			}
		case IsLevel(l):
			if i := slices.Index(Levels, l); i < rank {
				rank, level = i, l
			}
		}
	}
	return ids, level
}

// transcriptOf is the spec's wire transcript: a "transcript" report entry if
// the suite made one, else the failure message after its first line (the
// contract puts the transcript there).
func transcriptOf(sr types.SpecReport) string {
	var parts []string
	for _, e := range sr.ReportEntries {
		if strings.EqualFold(e.Name, "transcript") {
			parts = append(parts, e.StringRepresentation())
		}
	}
	if len(parts) > 0 {
		return strings.Join(parts, "\n")
	}
	if sr.State.Is(types.SpecStateFailureStates) {
		if _, rest, ok := strings.Cut(sr.Failure.Message, "\n"); ok {
			return strings.TrimLeft(rest, "\n")
		}
	}
	return ""
}

// failedOn reports whether a spec of the run failed on requirement id.
func (r *Report) failedOn(id string) bool {
	for _, s := range r.Specs {
		if !s.HarnessFailure() && slices.Contains(s.FailedIDs, id) {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

// Finish computes the per-requirement verdicts against cat, the overall
// verdict and the exit code.
func (r *Report) Finish(finished time.Time, cat []Requirement) {
	r.Finished = finished
	r.Warnings = nil
	for _, s := range r.Specs {
		switch {
		case s.HarnessFailure() && s.State == "timedout" && r.failedOn("EA-CONN-6"):
			r.AddHarnessError("%s: the spec ran out of its time budget before it could judge the target; replies came late too (EA-CONN-6 failed), and a larger --timeout-scale, which lengthens that bound as well, would only hide it", s.Name)
		case s.HarnessFailure() && s.State == "timedout":
			r.AddHarnessError("%s: the spec ran out of its time budget before it could judge the target (a slow target: raise --timeout-scale)", s.Name)
		case s.HarnessFailure():
			r.AddHarnessError("%s: %s", s.Name, s.Reason)
		}
		r.Warnings = append(r.Warnings, checkLabels(s, cat)...)
	}

	r.Requirements = make([]Verdict, 0, len(cat))
	mustFailed, otherFailed := false, false
	for _, req := range cat {
		v := r.verdictFor(req)
		switch v.Verdict {
		case Fail:
			mustFailed = true
		case NonStrict:
			otherFailed = true
		}
		r.Requirements = append(r.Requirements, v)
	}
	// A failure counted against no catalogue requirement still counts, at
	// the spec's level.
	for _, s := range r.Specs {
		if s.Failed() && !s.HarnessFailure() && !namesKnown(s.FailedIDs, cat) {
			if s.Level == "must" || s.Level == "" {
				mustFailed = true
			} else {
				otherFailed = true
			}
		}
	}

	judged := false
	for _, v := range r.Requirements {
		judged = judged || v.Verdict == Pass || v.Verdict == Fail || v.Verdict == NonStrict
	}

	switch {
	case r.seen.interrupted:
		r.Verdict, r.ExitCode = Interrupted, ExitInterrupted
		if r.Terminated {
			r.ExitCode = ExitTerminated
		}
	case mustFailed || (r.Strict && otherFailed):
		// A failure shown is a verdict, whatever else could not be
		// judged: a CI that retries or ignores exit 2 must not let it by.
		r.Verdict, r.ExitCode = NotConformant, ExitNotConformant
	case len(r.HarnessErrors) > 0:
		r.Verdict, r.ExitCode = HarnessError, ExitHarnessError
	case !judged:
		// Every selected spec skipped itself: a pass would be a verdict
		// on nothing.
		r.Verdict, r.ExitCode = NothingJudged, ExitUsage
	default:
		r.Verdict, r.ExitCode = Conformant, ExitConformant
	}
}

// Unchecked returns the MUST requirements that got no verdict on the
// target in this run (SKIPPED, NOT JUDGED or NOT RUN), so that a CONFORMANT
// run can say what it did not check; those of another framing are left
// out, as they do not apply, and those the filter left out are only
// counted (filtered), as the user chose them.
func (r *Report) Unchecked() (out []Verdict, filtered int) {
	for _, v := range r.Requirements {
		if v.Level != "must" {
			continue
		}
		switch {
		case v.Verdict == Skipped && otherFraming.MatchString(v.Reason):
		case v.Verdict == NotRun && r.seen.ran && !r.seen.built[v.ID]:
		case v.Verdict == NotRun && v.Reason == notSelected:
			filtered++
		case v.Verdict == Skipped || v.Verdict == NotJudged || v.Verdict == NotRun:
			out = append(out, v)
		}
	}
	return out, filtered
}

// otherFraming matches the suite's reason for skipping a spec of another
// framing: "for len32 framing; the target speaks raw".
var otherFraming = regexp.MustCompile(`^for (raw|len32|varint)( and (raw|len32|varint))* framing\b`)

func (r *Report) verdictFor(req Requirement) Verdict {
	v := Verdict{ID: req.ID, Level: req.Level, Text: req.Text, Specs: []string{}, FailingSpecs: []string{}}
	skipReason, notJudged := "", ""
	for _, s := range r.Specs {
		labelled, failed := slices.Contains(s.IDs, req.ID), slices.Contains(s.FailedIDs, req.ID)
		if !labelled && !(failed && !s.HarnessFailure()) {
			continue
		}
		v.Specs = append(v.Specs, s.Name)
		switch {
		case s.HarnessFailure():
			// not a verdict on the target
		case failed:
			v.FailingSpecs = append(v.FailingSpecs, s.Name)
			if v.Reason == "" {
				v.Reason = s.Reason
			}
		case s.State == "interrupted":
			if notJudged == "" {
				notJudged = fmt.Sprintf("not judged: %s was interrupted", s.Name)
			}
		case s.Failed() && s.OwnPassed():
			// It failed on another requirement once its own had passed.
			v.Passed++
		case s.Failed():
			// It failed on another requirement before it could judge this one.
			if notJudged == "" {
				notJudged = fmt.Sprintf("not judged: %s failed on %s", s.Name, strings.Join(s.FailedIDs, " "))
			}
		case s.State == "skipped" && strings.HasPrefix(s.Reason, notJudgedPrefix):
			// The suite skipped it after an earlier failure (the target
			// stopped answering): nothing about this requirement was seen.
			if notJudged == "" {
				notJudged = s.Reason
			}
		case s.State == "passed":
			v.Passed++
		case s.State == "skipped" && skipReason == "":
			skipReason = s.Reason
		}
	}
	switch {
	case len(v.FailingSpecs) > 0 && req.Level == "must":
		v.Verdict = Fail
	case len(v.FailingSpecs) > 0:
		v.Verdict = NonStrict
	case notJudged != "":
		// A spec that stopped early leaves the requirement partly
		// unchecked, however many others passed.
		v.Verdict, v.Reason = NotJudged, notJudged
		if v.Passed > 0 {
			v.Reason = fmt.Sprintf("%s (%d of %d specs passed)", notJudged, v.Passed, len(v.Specs))
		}
	case v.Passed > 0:
		v.Verdict = Pass
		if skipReason != "" {
			v.Reason = "some specs skipped: " + skipReason
		}
	case skipReason != "":
		v.Verdict, v.Reason = Skipped, skipReason
	case len(v.Specs) > 0:
		v.Verdict, v.Reason = NotRun, "harness error"
	default:
		v.Verdict, v.Reason = NotRun, r.notRunReason(req.ID)
	}
	return v
}

// notRunReason says why a requirement had no spec in the run.
func (r *Report) notRunReason(id string) string {
	switch {
	case !r.seen.ran || (r.seen.stoppedEarly && len(r.seen.built) == 0):
		// No spec reached (a BeforeSuite that could not start the server
		// leaves none in Ginkgo's report): none can be said not to apply.
		return "not run: the target could not be tested (see the harness errors)"
	case !r.seen.built[id]:
		return fmt.Sprintf("no spec for %s framing and these flags", r.Framing)
	case r.seen.interrupted:
		return "not reached: the run was interrupted"
	case r.seen.stoppedEarly:
		return "not reached: the run stopped early (see the harness errors)"
	}
	return notSelected
}

// notSelected is the reason of a requirement the filter left out.
const notSelected = "not selected (--label-filter, --focus)"

func namesKnown(ids []string, cat []Requirement) bool {
	for _, id := range ids {
		if _, ok := Lookup(cat, id); ok {
			return true
		}
	}
	return false
}

// checkLabels reports how a spec's labels disagree with the catalogue.
func checkLabels(s Spec, cat []Requirement) []string {
	var w []string
	if len(s.IDs) == 0 {
		w = append(w, fmt.Sprintf("spec %q names no requirement ID", s.Name))
	}
	if s.Level == "" {
		w = append(w, fmt.Sprintf("spec %q has no level label (must, should, may)", s.Name))
	}
	for _, id := range s.IDs {
		req, ok := Lookup(cat, id)
		switch {
		case !ok:
			w = append(w, fmt.Sprintf("spec %q names %s, which PROTOCOL.md does not define", s.Name, id))
		case s.Level != "" && req.Level != s.Level:
			w = append(w, fmt.Sprintf("spec %q is labelled %s but %s is %s", s.Name, s.Level, id, strings.ToUpper(req.Level)))
		}
	}
	return w
}
