package report

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the per-requirement table and the overall verdict, for
// people, then the framing hint if a failure has one (FramingHint). color
// adds ANSI colours to the verdicts.
func (r *Report) WriteTable(w io.Writer, color bool) error {
	ew := &errWriter{w: w}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUIREMENT\tLEVEL\tVERDICT\tPASSED\tREASON\tFAILING SPECS")
	count := map[string]int{}
	for _, v := range r.Requirements {
		count[v.Verdict]++
		specs := "-"
		if len(v.Specs) > 0 {
			specs = fmt.Sprintf("%d/%d", v.Passed, len(v.Specs))
		}
		// Pad before colouring: tabwriter counts the escape bytes otherwise.
		verdict := paint(fmt.Sprintf("%-10s", v.Verdict), v.Verdict, color)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, strings.ToUpper(v.Level), verdict, specs,
			orDash(clip(v.Reason, reasonWidth)), orDash(failingSpecs(v.FailingSpecs)))
	}
	tw.Flush()
	for _, w := range r.Warnings {
		fmt.Fprintf(ew, "warning: %s\n", w)
	}
	for _, e := range r.HarnessErrors {
		fmt.Fprintf(ew, "harness error: %s\n", e)
	}
	fmt.Fprintf(ew, "\n%s: %d PASS, %d FAIL, %d NON-STRICT, %d NOT JUDGED, %d SKIPPED, %d NOT RUN (%s framing, %s); exit %d\n",
		paint(r.Verdict, r.Verdict, color), count[Pass], count[Fail], count[NonStrict], count[NotJudged], count[Skipped], count[NotRun],
		r.Framing, r.Target, r.ExitCode)
	switch r.Verdict {
	case Conformant:
		u, filtered := r.Unchecked()
		if len(u) > 0 {
			fmt.Fprintf(ew, "not checked in this run: %d MUST requirement%s (%s)\n", len(u), plural(len(u)), uncheckedList(u))
		}
		if filtered > 0 {
			fmt.Fprintf(ew, "left out by --label-filter or --focus: %d MUST requirement%s\n", filtered, plural(filtered))
		}
	case NotConformant:
		if r.Strict && count[NonStrict] > 0 {
			verb := "fail"
			if count[NonStrict] == 1 {
				verb = "fails"
			}
			fmt.Fprintf(ew, "--strict: the %d NON-STRICT requirement%s (a SHOULD or MAY failed) %s this run\n", count[NonStrict], plural(count[NonStrict]), verb)
		}
	case NothingJudged:
		fmt.Fprintln(ew, "nothing judged: every selected spec skipped itself (see REASON); select other specs or another --framing")
	case Interrupted:
		fmt.Fprintln(ew, "interrupted: the verdicts above cover only what ran before the interrupt")
	}
	if h := cmp.Or(r.FramingHint(), r.NoReplyHint()); h != "" {
		fmt.Fprintf(ew, "hint: %s\n", h)
	}
	if h := r.ConcurrencyHint(); h != "" {
		fmt.Fprintf(ew, "hint: %s\n", h)
	}
	return ew.err
}

// uncheckedList names the requirements, grouped by the reason they share.
func uncheckedList(vs []Verdict) string {
	var groups []string
	byReason := map[string][]string{}
	for _, v := range vs {
		if _, ok := byReason[v.Reason]; !ok {
			groups = append(groups, v.Reason)
		}
		byReason[v.Reason] = append(byReason[v.Reason], v.ID)
	}
	parts := make([]string, len(groups))
	for i, reason := range groups {
		parts[i] = strings.Join(byReason[reason], ", ") + ": " + clip(reason, reasonWidth)
	}
	return strings.Join(parts, "; ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Console limits; the JSON report has everything.
const (
	reasonWidth = 100
	specWidth   = 60
)

// failingSpecs names the first failing spec and counts the others.
func failingSpecs(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return clip(names[0], specWidth)
	}
	return fmt.Sprintf("%s (+%d more)", clip(names[0], specWidth), len(names)-1)
}

// clip shortens s to at most n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func paint(s, verdict string, color bool) string {
	if !color {
		return s
	}
	code := ""
	switch verdict {
	case Pass, Conformant:
		code = "32" // green
	case Fail, NotConformant, HarnessError:
		code = "31;1" // bold red
	case NonStrict:
		code = "33" // yellow
	case Skipped, NotRun, NotJudged, NothingJudged, Interrupted:
		code = "36" // cyan
	}
	if code == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// errWriter keeps the first write error, so that callers check once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
