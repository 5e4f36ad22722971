// Package report turns a Ginkgo run of the conformance suite into the
// runner's verdicts: per-spec results, per-requirement verdicts, the overall
// verdict and the exit code, as the console table and as the JSON report.
//
// # Verdicts
//
// A spec's requirement IDs and level come from its labels (IDs match
// ^EA-[A-Z]+-[0-9]+$, levels are "must", "should", "may"). Each requirement of
// the catalogue gets one verdict. A failed spec counts against the IDs its
// failure message starts with ("EA-CONN-6: got ..."), which the harness sets
// when an observation violates a requirement by itself (a late reply, an
// undecodable one), else against the spec's own IDs; a spec that failed on
// another requirement does not judge its own.
//
//	PASS        at least one of its specs passed; none failed or stopped early
//	FAIL        a MUST spec failed
//	NON-STRICT  a SHOULD or MAY spec failed (fails the run only with --strict)
//	NOT JUDGED  a spec of it failed on another requirement, or was interrupted
//	SKIPPED     its specs ran but all skipped themselves; Reason says why
//	NOT RUN     no spec of it ran; Reason says whether none exists for this
//	            framing, the filter left it out, or the run stopped first
//
// # Overall verdicts and exit codes
//
//	0   CONFORMANT: no MUST failed (and, with --strict, no SHOULD or MAY)
//	1   NOT CONFORMANT
//	2   HARNESS ERROR: target unreachable, server command failed, suite error
//	3   usage error, decided by the runner before anything runs, or NOTHING
//	    JUDGED: every selected spec skipped itself
//	130 INTERRUPTED: SIGINT (143: SIGTERM); the verdicts cover what ran before it
//
// # JSON schema (Schema = 1)
//
// The JSON report is a Report: see its fields. Times are RFC 3339, durations
// are seconds as numbers. A reader should reject a schema it does not know.
package report
