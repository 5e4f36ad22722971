package harness

import (
	"fmt"
	"strings"
)

// Failure is a check's verdict against the server: what the harness saw,
// what the protocol wants, and the connection's transcript at that moment.
type Failure struct {
	// IDs are the requirements the observation violates by itself, whatever
	// the calling spec checks: EA-CONN-6 for a late reply, EA-MSG-1 for an
	// undecodable one. Empty means "the calling spec's requirements".
	IDs []string
	// Got and Want are one short phrase each, for a "got X, want Y" line.
	Got, Want string
	// Hint is advice for people, e.g. which --framing the replies look like.
	Hint string
	// Transcript is the connection's transcript when the check failed.
	Transcript string
}

// Reason is the one-line "got X, want Y" without requirement IDs.
func (f *Failure) Reason() string {
	return fmt.Sprintf("got %s, want %s", f.Got, f.Want)
}

// Error is the failure as one text: IDs and reason on the first line, then
// the hint and the transcript.
func (f *Failure) Error() string {
	var b strings.Builder
	if len(f.IDs) > 0 {
		b.WriteString(strings.Join(f.IDs, " "))
		b.WriteString(": ")
	}
	b.WriteString(f.Reason())
	if f.Hint != "" {
		b.WriteString("\nhint: ")
		b.WriteString(f.Hint)
	}
	if f.Transcript != "" {
		b.WriteString("\n\n")
		b.WriteString(f.Transcript)
	}
	return b.String()
}
