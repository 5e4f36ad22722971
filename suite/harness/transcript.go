package harness

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"echoadd/protocol"
)

// Direction says who sent an Entry's bytes.
type Direction int

const (
	Sent     Direction = iota // client to server
	Received                  // server to client
	Note                      // what the harness observed or did: a close, a silence window
)

func (d Direction) String() string {
	switch d {
	case Sent:
		return "C→S"
	case Received:
		return "S→C"
	default:
		return "---"
	}
}

// Transcript limits: what a failure message can show without drowning the
// reason. The byte counts stay exact.
const (
	maxHexBytes    = 48   // bytes of hex shown per entry
	maxEntries     = 4096 // entries kept per connection; older ones are counted, not kept
	maxTextRunes   = 60   // runes of echo content shown when decoded
	failureEntries = 40   // entries a failure message shows: the most recent
)

// Entry is one line of a Transcript.
type Entry struct {
	At   time.Duration // since the transcript started (the dial)
	Dir  Direction
	Size int    // bytes sent or received; 0 for notes
	Head []byte // the first maxHexBytes of them
	Text string // decoded messages, or the note
}

// Transcript is the record of one connection: every byte in either
// direction, with its time offset, and what it decodes to. It is safe for
// concurrent use.
type Transcript struct {
	name  string // the header: connection name, addresses, framing
	short string // the connection name, prefixing live lines
	start time.Time
	live  io.Writer // may be nil

	mu      sync.Mutex // guards entries and dropped
	entries []Entry
	dropped int
}

func newTranscript(name, short string, live io.Writer) *Transcript {
	return &Transcript{name: name, short: short, start: time.Now(), live: live}
}

// add records an entry and streams it to the live writer.
func (t *Transcript) add(at time.Time, dir Direction, b []byte, text string) {
	e := Entry{At: at.Sub(t.start), Dir: dir, Size: len(b), Text: text}
	e.Head = append([]byte(nil), b[:min(len(b), maxHexBytes)]...)
	t.mu.Lock()
	if len(t.entries) == maxEntries {
		copy(t.entries, t.entries[1:])
		t.entries = t.entries[:maxEntries-1]
		t.dropped++
	}
	t.entries = append(t.entries, e)
	t.mu.Unlock()
	if t.live != nil {
		var b strings.Builder
		writeEntry(&b, "["+t.short+"] ", e)
		io.WriteString(t.live, b.String()) //nolint:errcheck // best effort, for people watching
	}
}

func (t *Transcript) note(format string, args ...any) {
	t.add(time.Now(), Note, nil, fmt.Sprintf(format, args...))
}

// Entries returns a copy of the entries kept.
func (t *Transcript) Entries() []Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Entry(nil), t.entries...)
}

// String is the whole transcript as kept.
func (t *Transcript) String() string { return t.Tail(maxEntries) }

// Tail is the transcript's header and its last n entries.
func (t *Transcript) Tail(n int) string {
	t.mu.Lock()
	entries := t.entries[max(0, len(t.entries)-n):]
	omitted := t.dropped + len(t.entries) - len(entries)
	var b strings.Builder
	fmt.Fprintf(&b, "transcript of %s:\n", t.name)
	if omitted > 0 {
		fmt.Fprintf(&b, "  (%d earlier entries omitted)\n", omitted)
	}
	for _, e := range entries {
		writeEntry(&b, "  ", e)
	}
	t.mu.Unlock()
	return b.String()
}

func writeEntry(b *strings.Builder, indent string, e Entry) {
	fmt.Fprintf(b, "%s%+10.3fms %s", indent, float64(e.At.Microseconds())/1000, e.Dir)
	if e.Dir != Note {
		fmt.Fprintf(b, " %5d B  % x", e.Size, e.Head)
		if e.Size > len(e.Head) {
			b.WriteString(" …")
		}
		if e.Text != "" {
			fmt.Fprintf(b, "\n%s%s%s", indent, strings.Repeat(" ", 26), e.Text)
		}
	} else {
		b.WriteString("  " + e.Text)
	}
	b.WriteString("\n")
}

// describeRequest is a short, stable rendering of a request for people.
func describeRequest(m *protocol.ClientMessage) string {
	switch {
	case m.GetEchoMessage() != nil:
		return "echo_message " + quote(m.GetEchoMessage().GetContent())
	case m.GetAddRequest() != nil:
		return fmt.Sprintf("add_request a=%d b=%d", m.GetAddRequest().GetA(), m.GetAddRequest().GetB())
	default:
		return "no request field set"
	}
}

// describeReply is a short, stable rendering of a reply for people.
func describeReply(m *protocol.ServerMessage) string {
	switch {
	case m.GetEchoMessage() != nil:
		return "echo_message " + quote(m.GetEchoMessage().GetContent())
	case m.GetAddResponse() != nil:
		return fmt.Sprintf("add_response result=%d", m.GetAddResponse().GetResult())
	case m.GetError() != nil:
		return fmt.Sprintf("error %v %q", m.GetError().GetCode(), m.GetError().GetDetail())
	default:
		return "a ServerMessage with no field set"
	}
}

// quote renders content as a Go string literal, shortened when long.
func quote(s string) string {
	if utf8.RuneCountInString(s) <= maxTextRunes {
		return fmt.Sprintf("%q", s)
	}
	runes := []rune(s)
	return fmt.Sprintf("%q… (%d bytes)", string(runes[:maxTextRunes]), len(s))
}
