package harness

import (
	"fmt"
	"slices"
	"strings"

	"echoadd/protocol"
)

// OwnPassed ends the "(checking ...)" of a failure found while its spec
// judged its other requirements, reported once they had passed: "EA-ERR-1
// (checking EA-LIM-2, which passed): got ...". The report then counts the
// spec as a pass for them, not as NOT JUDGED.
const OwnPassed = ", which passed"

// Failure is a check's verdict against the server: what the harness saw,
// what the protocol wants, and the connection's transcript at that moment.
type Failure struct {
	// IDs are the requirements the observation violates by itself, whatever
	// the calling spec checks: EA-CONN-6 for a late reply, EA-MSG-1 for an
	// undecodable one.
	IDs []string
	// Among are, when IDs is empty, the requirements the observation
	// violates if the spec checks them: an echo of the wrong content
	// violates whichever of EA-ECHO-1/2/3 the spec checks (content of any
	// length, NUL bytes...). Else names what it violates when the spec
	// checks none of them; nil means the spec's own requirements. Blame
	// picks.
	Among, Else []string
	// Got and Want are one short phrase each, for a "got X, want Y" line.
	Got, Want string
	// Hint is advice for people, e.g. which --framing the replies look like.
	Hint string
	// Refusal is the Error reply a valid request got where its success
	// reply was due, when that is what the check rejected; a spec may know
	// better what it means (CODE_OVERLOADED: a client refused at the
	// server's connection limit).
	Refusal *Reply
	// Transcript is the connection's transcript when the check failed.
	Transcript string
}

// Blame names the requirements the failure counts against in a spec that
// checks spec: IDs if set; else those of Among the spec checks; else Else;
// else the spec's own.
func (f *Failure) Blame(spec []string) []string {
	if len(f.IDs) > 0 {
		return f.IDs
	}
	var ids []string
	for _, id := range f.Among {
		if slices.Contains(spec, id) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	switch {
	case len(ids) > 0:
		return ids
	case len(f.Else) > 0:
		return f.Else
	}
	return spec
}

// breaks sets what f violates: among, else otherwise.
func (f *Failure) breaks(b breach) *Failure {
	f.Among, f.Else = b.among, b.otherwise
	return f
}

// A breach is what an observation violates: whichever of among the spec
// checks, else otherwise (nil: the spec's own requirements).
type breach struct {
	among     []string
	otherwise []string
}

// The symptoms the checks see, and what each violates. This is the one
// place that says which requirement a symptom breaks.
var (
	// An echo reply whose content is not the request's.
	wrongEcho = breach{among: []string{"EA-ECHO-1", "EA-ECHO-2", "EA-ECHO-3"}, otherwise: []string{"EA-ECHO-1"}}
	// A success reply where none may come (after malformed input): EA-MAL-2
	// when the spec checks it, whether or not the reply answers a request.
	successForMalformed = breach{among: []string{"EA-MAL-2"}}
	// An add reply whose result is not the sum.
	wrongSum = breach{among: []string{"EA-ADD-1", "EA-ADD-2", "EA-ADD-3"}, otherwise: []string{"EA-ADD-1"}}
	// The connection was reset before a byte of its first reply: it was
	// never served, so EA-TRANS-1 (the server accepts connections: one it
	// resets unserved, e.g. from its listen backlog, is not accepted), or
	// the spec's requirement that other clients be served.
	resetUnserved = notAccepted
	// The server closed the connection (EOF) before a byte of its first
	// reply, having read the request: as resetUnserved, or EA-ADD-2
	// (overflow closes nothing).
	closedUnserved = breach{among: concat([]string{"EA-ADD-2"}, notAccepted.among), otherwise: notAccepted.otherwise}
	// The connection ended in the middle of its first reply: the spec's
	// requirement that requests like this one (large, in pieces, received
	// before a stop...) be served, else EA-CONN-3.
	closedInReply = breach{among: concat([]string{"EA-CONN-3"}, servedHere, othersServed), otherwise: []string{"EA-CONN-3"}}
	// The connection ended after the client sent it malformed input, which
	// a server may close it for: the spec's requirement that it be served
	// on (EA-MAL-4) or that others be, else the spec's own.
	closedAfterMalformed = breach{among: concat(servedHere, othersServed)}
	// The connection ended after serving replies, with another due: it
	// served requests like this one, so EA-CONN-3 (a connection serves any
	// number of requests until the client closes it), unless the spec
	// checks that other clients are served (a crash also ends this
	// connection).
	closedLater = breach{among: concat([]string{"EA-CONN-3"}, othersServed), otherwise: []string{"EA-CONN-3"}}
	// The connection ended after the client half-closed it, with replies
	// due: EA-CONN-5 (the replies still due are sent, then the close).
	closedHalf = breach{among: concat([]string{"EA-CONN-5"}, servedHere, othersServed), otherwise: []string{"EA-CONN-5"}}
	// No reply came, not even late: EA-CONN-1 (exactly one reply per
	// request) or the spec's requirement that requests like this one be
	// served, when it checks one; else the spec's own (a server serving one
	// client at a time leaves a second client unanswered, whatever the
	// spec checks).
	noReply = breach{among: concat([]string{"EA-CONN-1"}, servedHere, othersServed)}
	// No reply to the client's own probe, which follows the spec's
	// requests: nothing about the kind of request the spec checks.
	noProbeReply = breach{among: concat([]string{"EA-CONN-1"}, othersServed)}
	// An Error reply to a valid request within the limits: the spec's
	// requirement that requests like this one (in pieces, pipelined,
	// large...) get their success reply, else what the Error refuses (see
	// refusal). An Error is still an answer: not what EA-STOP-2 or
	// EA-CONN-5 (replies sent before the close) check.
	errorReply = concat(wrongEcho.among, wrongSum.among, []string{"EA-FRAME-3", "EA-FRAME-6", "EA-CONN-4", "EA-MAL-4", "EA-LIM-1"})
	// A new connection refused, or reset before it served anything: EA-TRANS-1
	// (the server keeps accepting), or the spec's requirement that other
	// clients be served.
	notAccepted = breach{among: concat(othersServed, []string{"EA-LIM-5"}), otherwise: []string{"EA-TRANS-1"}}
)

// partialReply is what a reply cut short, the rest never coming, violates:
// the spec's requirement that requests like this one be served, else the
// framing's (the prefix declares bytes that never come; in raw framing a
// field that never ends).
func partialReply(framingID string) breach {
	return breach{among: concat(servedHere, othersServed), otherwise: []string{framingID}}
}

// servedHere are the requirements that a request of a kind (in pieces,
// pipelined, large, with NUL bytes, after a half-close...) is served on its
// connection.
var servedHere = []string{
	"EA-FRAME-3", "EA-FRAME-6", "EA-ECHO-2", "EA-ECHO-3", "EA-ADD-2", "EA-ADD-3",
	"EA-CONN-4", "EA-CONN-5", "EA-MAL-4", "EA-LIM-1", "EA-LIM-4", "EA-STOP-2",
}

// othersServed are the requirements that other clients, open or new, are
// served whatever one client does.
var othersServed = []string{"EA-TRANS-1", "EA-MAL-1", "EA-CONC-1", "EA-CONC-2", "EA-CONC-3"}

// refusal is what an Error reply to q, a valid request the client sent
// within the declared maximum, violates when the spec checks none of
// errorReply: CODE_TOO_LARGE to a request of at most 1024 bytes EA-LIM-1,
// to a larger one EA-ECHO-3 (content up to the maximum); an Error to an add
// with an operand of 0, which the wire omits, EA-ADD-3; else EA-MSG-1 (the
// reply to an echo request sets echo_message, to an add add_response).
func refusal(r *Reply) breach {
	b := breach{among: errorReply, otherwise: []string{"EA-MSG-1"}}
	q := r.request
	switch {
	case q == nil:
	case r.Msg.GetError().GetCode() == protocol.Code_CODE_TOO_LARGE && q.size <= protocol.MinMaxMessageSize:
		b.otherwise = []string{"EA-LIM-1"}
	case r.Msg.GetError().GetCode() == protocol.Code_CODE_TOO_LARGE:
		b.otherwise = []string{"EA-ECHO-3"}
	case q.msg.GetAddRequest() != nil && (q.msg.GetAddRequest().GetA() == 0 || q.msg.GetAddRequest().GetB() == 0):
		b.otherwise = []string{"EA-ADD-3"}
	}
	return b
}

func concat(lists ...[]string) []string {
	var all []string
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

// Reason is the one-line "got X, want Y" without requirement IDs.
func (f *Failure) Reason() string {
	return fmt.Sprintf("got %s, want %s", f.Got, f.Want)
}

// Error is the failure as one text: IDs (Among's default when no spec is
// known) and reason on the first line, then the hint and the transcript.
func (f *Failure) Error() string {
	var b strings.Builder
	if ids := f.Blame(nil); len(ids) > 0 {
		b.WriteString(strings.Join(ids, " "))
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
