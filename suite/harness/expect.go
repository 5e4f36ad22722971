package harness

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"echoadd/protocol"
)

// Echo sends an echo request for content and checks its reply (ExpectEcho).
func (c *Client) Echo(content string) error {
	if err := c.Send(protocol.EchoRequest(content)); err != nil {
		return err
	}
	return c.ExpectEcho(content)
}

// Add sends an add request for a + b and checks that the reply is their
// 32-bit two's complement sum (ExpectSum).
func (c *Client) Add(a, b int32) error {
	if err := c.Send(protocol.AddRequestOf(a, b)); err != nil {
		return err
	}
	return c.ExpectSum(a, b, a+b)
}

// Probe sends an echo of a fresh marker and checks that its reply is the
// next thing to arrive: the cheap way to see that nothing but the replies
// already read came before it (EA-CONN-1).
func (c *Client) Probe() error {
	c.probes++
	marker := fmt.Sprintf("probe #%d of %s", c.probes, c.opts.Name)
	if err := c.Send(protocol.EchoRequest(marker)); err != nil {
		return err
	}
	r, err := c.expectReply("the probe's echo "+quote(marker), dueProbe)
	if err != nil {
		return err
	}
	if r.Msg.GetEchoMessage() == nil || r.Msg.GetEchoMessage().GetContent() != marker {
		return c.failWithHint([]string{"EA-CONN-1"}, r.String()+" before the probe's reply", "nothing but one reply per request: the probe's echo "+quote(marker)+" next", r.Frame)
	}
	return c.checkLatency(r)
}

// ExpectEcho checks that the next reply is an echo of exactly content.
func (c *Client) ExpectEcho(content string) error {
	want := "echo_message " + quote(content)
	r, err := c.expectReply(want, dueRequest)
	if err != nil {
		return err
	}
	if err := c.checkKind(r, "echo_message", want); err != nil {
		return err
	}
	if got := r.Msg.GetEchoMessage().GetContent(); got != content {
		switch {
		case r.repeats > 0:
			return c.fail([]string{"EA-CONN-1"}, fmt.Sprintf("%s, a copy of reply #%d", r, r.repeats), want)
		case r.extra():
			return c.fail([]string{"EA-CONN-1"}, r.String()+", answering no request", want)
		case c.answersLater(r):
			return c.laterReply(r, want)
		}
		return c.fail(nil, fmt.Sprintf("echo_message %s: %d bytes, %s", quote(got), len(got), firstDifference(got, content)), fmt.Sprintf("%s: %d bytes", want, len(content))).breaks(wrongEcho)
	}
	return c.checkLatency(r)
}

// ExpectSum checks that the next reply is an add reply carrying want, the
// sum of a and b.
func (c *Client) ExpectSum(a, b, want int32) error {
	wantText := fmt.Sprintf("add_response result=%d (= %d + %d)", want, a, b)
	r, err := c.expectReply(wantText, dueRequest)
	if err != nil {
		return err
	}
	if err := c.checkKind(r, "add_response", wantText); err != nil {
		return err
	}
	if got := r.Msg.GetAddResponse().GetResult(); got != want {
		switch {
		case r.repeats > 0:
			return c.fail([]string{"EA-CONN-1"}, fmt.Sprintf("%s, a copy of reply #%d", r, r.repeats), wantText)
		case r.extra():
			return c.fail([]string{"EA-CONN-1"}, r.String()+", answering no request", wantText)
		case c.answersLater(r):
			return c.laterReply(r, wantText)
		}
		return c.fail(nil, fmt.Sprintf("add_response result=%d", got), wantText).breaks(wrongSum)
	}
	return c.checkLatency(r)
}

// ExpectReply returns the next reply, whatever it is, as long as it is a
// decodable ServerMessage arriving within the latency bound.
func (c *Client) ExpectReply() (*Reply, error) {
	r, err := c.expectReply("a reply", dueRequest)
	if err != nil {
		return nil, err
	}
	return r, c.checkLatency(r)
}

// ExpectErrorReply checks that the next thing to arrive, within the latency
// bound, is an Error reply (EA-ERR-1): field 3 holding an Error message as
// the schema defines it (EA-ERR-2), with one of codes if any are given. Its
// detail is CheckDetail's, so that a spec may judge the rest first.
func (c *Client) ExpectErrorReply(codes ...protocol.Code) (*Reply, error) {
	want := "an Error reply"
	if len(codes) > 0 {
		want = fmt.Sprintf("an Error reply with code %v", codes[0])
		for _, code := range codes[1:] {
			want += " or " + code.String()
		}
	}
	o := c.next(time.Now().Add(c.opts.Latency))
	if err := c.unexpected(o, want, fmt.Sprintf("no reply within %v", c.opts.Latency), dueNone); err != nil {
		return nil, err
	}
	r := o.reply
	switch {
	case r.extra():
		return r, c.fail([]string{"EA-CONN-1"}, r.String()+", answering no request", want)
	case r.Msg.GetError() == nil:
		return r, c.failWithHint(nil, r.String(), want, o.hint)
	case r.SeveralMembers():
		return r, c.fail([]string{"EA-MSG-1"}, fmt.Sprintf("%s, not as the schema defines it (%v)", r, r.Strict), want)
	case r.Strict != nil:
		return r, c.fail([]string{"EA-ERR-2"}, fmt.Sprintf("%s whose field 3 is not an Error message (%v)", r, r.Strict), want)
	case len(codes) > 0 && !slices.Contains(codes, r.Msg.GetError().GetCode()):
		return r, c.fail(nil, r.String(), want)
	}
	return r, nil
}

// CheckDetail checks that r, an Error reply, has a detail for people
// (EA-ERR-1).
func (c *Client) CheckDetail(r *Reply) error {
	if r.Msg.GetError() != nil && r.Msg.GetError().GetDetail() == "" {
		return c.fail([]string{"EA-ERR-1"}, r.String()+" with an empty detail", "an Error reply with a detail for people")
	}
	return nil
}

// Outcome is what ExpectNoSuccess saw: an Error reply, the connection
// ending, or silence.
type Outcome struct {
	Reply  *Reply // an Error reply, if one came
	Closed error  // how the connection ended, if it did (io.EOF, a reset)
	Silent bool   // nothing arrived within the window
}

func (o Outcome) String() string {
	switch {
	case o.Reply != nil:
		return o.Reply.String()
	case o.Closed != nil:
		return "connection closed (" + o.Closed.Error() + ")"
	default:
		return "silence"
	}
}

// ExpectNoSuccess checks that no success reply comes next: it accepts an
// Error reply, the connection closing, or silence within w (EA-MAL-2), and
// rejects echo and add replies and bytes that are not a reply.
func (c *Client) ExpectNoSuccess(w Window) (Outcome, error) {
	want := "an Error reply, the connection closed, or silence within the " + w.String()
	o := c.next(time.Now().Add(w.D))
	switch {
	case o.abort != nil:
		return Outcome{}, o.abort
	case o.silent && len(c.rbuf) == 0:
		c.tr.note("nothing arrived within the %s", w)
		return Outcome{Silent: true}, nil
	case o.closed != nil && len(c.rbuf) == 0:
		return Outcome{Closed: o.closed}, nil
	case o.reply != nil && o.reply.IsSuccess():
		f := c.fail(nil, "a success reply: "+o.reply.String(), want).breaks(successForMalformed)
		if o.reply.extra() {
			f.Got += ", answering no request"
			f.Else = []string{"EA-CONN-1"}
		}
		return Outcome{Reply: o.reply}, f
	case o.reply != nil && o.reply.extra():
		return Outcome{Reply: o.reply}, c.fail([]string{"EA-CONN-1"}, o.reply.String()+", answering no request", want)
	case o.reply != nil:
		return Outcome{Reply: o.reply}, nil
	case o.bad != "":
		return Outcome{}, c.failWithHint(o.badIDs, o.bad, want, o.hint)
	default:
		return Outcome{}, c.failWithHint(nil, fmt.Sprintf("%d bytes that are no whole reply", len(c.rbuf)), want, o.hint)
	}
}

// ExpectClosed checks that the connection ends (EOF or reset) within w,
// with nothing but already read replies before it.
func (c *Client) ExpectClosed(w Window) error {
	want := "the connection closed within the " + w.String()
	o := c.next(time.Now().Add(w.D))
	switch {
	case o.abort != nil:
		return o.abort
	case o.closed != nil && len(c.rbuf) == 0:
		return nil
	case o.closed != nil:
		return c.failWithHint(nil, fmt.Sprintf("the connection closed after %d bytes that are no whole reply", len(c.rbuf)), want, o.hint)
	case o.silent:
		c.tr.note("still open at the end of the %s", w)
		return c.fail(nil, "the connection still open", want)
	case o.reply != nil && o.reply.extra():
		return c.fail([]string{"EA-CONN-1"}, o.reply.String()+", answering no request", want)
	case o.reply != nil:
		return c.failWithHint(nil, o.reply.String(), want, o.hint)
	default:
		return c.failWithHint(o.badIDs, o.bad, want, o.hint)
	}
}

// ExpectSilence checks that nothing arrives within w (EA-CONN-1: nothing
// but one reply per request), and that the connection stays open. Passing
// means only that nothing arrived within the window.
func (c *Client) ExpectSilence(w Window) error {
	want := "nothing within the " + w.String()
	o := c.next(time.Now().Add(w.D))
	switch {
	case o.abort != nil:
		return o.abort
	case o.silent && len(c.rbuf) == 0:
		c.tr.note("nothing arrived within the %s", w)
		return nil
	case o.silent:
		return c.failWithHint([]string{"EA-CONN-1"}, fmt.Sprintf("%d bytes more", len(c.rbuf)), want, o.hint)
	case o.closed != nil:
		return c.fail([]string{"EA-CONN-3"}, "the connection closed", want+", the connection open")
	case o.reply != nil:
		return c.failWithHint([]string{"EA-CONN-1"}, "an extra "+o.reply.String(), want, o.hint)
	default:
		return c.failWithHint([]string{"EA-CONN-1"}, o.bad, want, o.hint)
	}
}

// AwaitReplyStart waits, within w, until at least one byte of the next
// reply has arrived, without reading the rest.
func (c *Client) AwaitReplyStart(w Window) error {
	deadline := time.Now().Add(w.D)
	for !c.replyStarted() {
		if c.rerr != nil {
			return c.fail(nil, "the connection closed", "the start of a reply")
		}
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.conn.SetReadDeadline(deadline); err != nil {
			return err
		}
		n, now, err := c.read(c.scratch[:1])
		if n > 0 {
			c.rbuf = append(c.rbuf, c.scratch[:n]...)
			c.arrivals = append(c.arrivals, arrival{end: len(c.rbuf), at: now})
			c.tr.add(now, Received, c.scratch[:n], "")
			continue
		}
		if err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				return c.fail(nil, "nothing", "the start of a reply within the "+w.String())
			}
			c.rerr = err
		}
	}
	return nil
}

// replyStarted reports whether a reply's first bytes are buffered: in raw
// framing, fields other than a reply's (a greeting; the next read fails
// EA-CONN-1 on them) are not, nor is a tag not yet whole. Bytes that are
// no tag at all are left for the reply's reader to judge.
func (c *Client) replyStarted() bool {
	if len(c.rbuf) == 0 {
		return false
	}
	if c.opts.Framing != protocol.Raw {
		return true
	}
	_, _, skipped, _ := splitReply(c.opts.Framing, c.rbuf, c.replyMax)
	num, _, n := protowire.ConsumeTag(c.rbuf[skipped:])
	if n < 0 {
		return !errors.Is(protowire.ParseError(n), io.ErrUnexpectedEOF)
	}
	return num >= 1 && num <= 3
}

// expectReply waits for the next reply to a request: until the latency
// bound after that request was sent whole (or from now, if the client does
// not know when), and a bound more to tell a late reply from none.
func (c *Client) expectReply(want string, d due) (*Reply, error) {
	bound := c.opts.Latency
	start := time.Now()
	deadline := start.Add(bound)
	var sent time.Time
	if len(c.pending) > 0 {
		sent = c.pending[0].sent
		// A reply the spec reads late is still read: it may be waiting.
		deadline = maxTime(sent.Add(bound), time.Now().Add(bound/4))
	}
	o := c.next(deadline)
	if o.silent && len(c.rbuf) == 0 {
		late := c.next(time.Now().Add(bound))
		if late.reply != nil {
			c.answered(late.reply, sent)
			if err := c.late(late.reply, late.reply.Latency()); err != nil {
				return nil, err
			}
			return late.reply, nil
		}
		o = late
	}
	from, what := start, "of waiting"
	if !sent.IsZero() {
		from, what = sent, "of its request"
	}
	if err := c.unexpected(o, want, fmt.Sprintf("no reply within %v %s", time.Since(from).Round(time.Millisecond), what), d); err != nil {
		return nil, err
	}
	c.answered(o.reply, sent)
	return o.reply, nil
}

func (c *Client) answered(r *Reply, sent time.Time) {
	if len(c.pending) > 0 {
		q := c.pending[0]
		r.request = &q
		c.pending = c.pending[1:]
	}
	r.Sent = sent
}

// due says what awaits the next reply: nothing the client tracks (an Error
// reply to malformed input), a request of the spec's, or the client's probe.
type due int

const (
	dueNone due = iota
	dueRequest
	dueProbe
)

// unexpected turns every outcome but a reply into a Failure. When a request
// awaits the reply, a close breaks EA-CONN-3 or EA-TRANS-1 and silence
// EA-CONN-1, or the spec's requirement that the request be served (see
// closedFirst, noReply...); otherwise they break the spec's own.
func (c *Client) unexpected(o outcome, want, silence string, d due) error {
	closed, silent, partial := breach{}, breach{}, breach{}
	switch d {
	case dueRequest:
		closed, silent, partial = c.closedBreach(o.closed), noReply, partialReply(c.framingID())
	case dueProbe:
		closed, silent, partial = c.closedBreach(o.closed), noProbeReply, partialReply(c.framingID())
	}
	var f *Failure
	switch {
	case o.abort != nil:
		return o.abort
	case o.reply != nil:
		return nil
	case o.bad != "":
		return c.failWithHint(o.badIDs, o.bad, want, o.hint)
	case o.closed != nil && len(c.rbuf) > 0:
		f = c.failWithHint(nil, fmt.Sprintf("the connection closed in the middle of a reply, after %d bytes", len(c.rbuf)), want, o.hint)
		f.breaks(closed)
	case o.closed != nil:
		got := "the connection closed (" + o.closed.Error() + ")"
		if c.replies > 0 {
			got += fmt.Sprintf(" after reply #%d", c.replies) // the transcript may show only the end
		}
		f = c.fail(nil, got, want)
		f.breaks(closed)
	case len(c.rbuf) > 0:
		f = c.failWithHint(nil, fmt.Sprintf("%d bytes that are no whole reply, then %s", len(c.rbuf), silence), want, o.hint)
		f.breaks(partial)
	default:
		f = c.fail(nil, silence, want)
		f.breaks(silent)
	}
	return f
}

// closedBreach is what the server's close, seen as err (io.EOF, a reset, a
// failed write), breaks with a reply due.
func (c *Client) closedBreach(err error) breach {
	switch {
	case c.closedWr:
		return closedHalf
	case c.malformed:
		return closedAfterMalformed
	case c.replies > 0:
		return closedLater
	case len(c.rbuf) > 0:
		return closedInReply
	case errors.Is(err, io.EOF):
		return closedUnserved
	}
	return resetUnserved
}

// answersLater reports whether r is the right reply to a request sent
// after the one it should answer: replies out of order (EA-CONN-2).
func (c *Client) answersLater(r *Reply) bool {
	for _, q := range c.pending {
		if c.answers(r, q) {
			return true
		}
	}
	return false
}

// answers reports whether r is the success reply to q.
func (c *Client) answers(r *Reply, q request) bool {
	switch {
	case q.msg.GetEchoMessage() != nil && r.Msg.GetEchoMessage() != nil:
		return q.msg.GetEchoMessage().GetContent() == r.Msg.GetEchoMessage().GetContent()
	case q.msg.GetAddRequest() != nil && r.Msg.GetAddResponse() != nil:
		a, b := q.msg.GetAddRequest().GetA(), q.msg.GetAddRequest().GetB()
		return a+b == r.Msg.GetAddResponse().GetResult()
	}
	return false
}

// laterReply fails r, the reply to a later request than its own, on the
// order (EA-CONN-2). Whether the reply to its own request comes later
// (reordered) or never (two requests read as one message, the later
// fields winning; the rest of a read dropped) is not known yet: when both
// went out in one write, the message names the second possibility too.
func (c *Client) laterReply(r *Reply, want string) error {
	got := r.String() + ", the reply to a later request"
	for _, q := range c.pending {
		if r.request != nil && q.sent.Equal(r.request.sent) && c.answers(r, q) {
			got += " sent in the same write (if the reply to this one never comes, the server read the two as one message, or dropped the rest of what one read returned)"
			break
		}
	}
	return c.fail([]string{"EA-CONN-2"}, got, want)
}

// checkKind checks a reply's oneof: the reply to a later request violates
// EA-CONN-2; the wrong success reply, or one not decodable with the schema,
// violates EA-MSG-1; an Error reply to a valid request within the limits
// violates the spec's requirement that it be served, or what refusal says.
func (c *Client) checkKind(r *Reply, kind, want string) error {
	switch {
	case r.Strict != nil:
		return c.failWithHint([]string{"EA-MSG-1"}, fmt.Sprintf("%s, not as the schema defines it (%v)", r, r.Strict), want, r.Frame)
	case r.Kind() == kind:
		return nil
	case r.extra():
		return c.fail([]string{"EA-CONN-1"}, r.String()+", answering no request", want)
	case c.answersLater(r):
		return c.laterReply(r, want)
	case r.IsSuccess() || r.Msg.GetMessage() == nil:
		return c.failWithHint([]string{"EA-MSG-1"}, r.String(), want, r.Frame)
	}
	got := r.String()
	if r.request != nil {
		got = fmt.Sprintf("%s to a %d-byte request", r, r.request.size)
	}
	f := c.fail(nil, got, want).breaks(refusal(r))
	f.Refusal = r
	return f
}

// ExpectKind checks that r, a reply to a request, sets kind (echo_message
// or add_response) and decodes with the schema.
func (c *Client) ExpectKind(r *Reply, kind string) error {
	return c.checkKind(r, kind, "a ServerMessage setting "+kind)
}

// checkLatency holds a reply to EA-CONN-6.
func (c *Client) checkLatency(r *Reply) error {
	if l := r.Latency(); l > c.opts.Latency {
		return c.late(r, l)
	}
	return nil
}

// late is EA-CONN-6's failure for r, l after its request, beyond the
// bound; unless the harness had been held up, until just before r's first
// or last bytes were timed, for as long as the excess (HeldUpUntil), on a
// loaded machine, which the transcript notes instead. Timed when read, the
// reply may have come during the hold; timed by the kernel, a reply larger
// than the socket's receive buffer has its last bytes held back by TCP's
// flow control until the harness reads again. A reply the kernel timed
// inside a hold, not at its end, is judged by that time. A reply is judged
// once: expectReply's late path and its caller's checkLatency both come
// here.
func (c *Client) late(r *Reply, l time.Duration) error {
	if r.latencyJudged {
		return nil
	}
	r.latencyJudged = true
	bound := c.opts.Latency
	if held := max(HeldUpUntil(r.First), HeldUpUntil(r.Last)); held > 0 && l-held <= bound {
		c.tr.note("%s %v after its request, just after the suite itself had been held up %v: not counted against EA-CONN-6", r, l.Round(time.Millisecond), held.Round(time.Millisecond))
		return nil
	}
	return c.fail([]string{"EA-CONN-6"}, fmt.Sprintf("%s %v after its request%s", r, over(l, bound), c.firstReplyHint(r)), "a reply within "+bound.String())
}

// firstReplyHint names a cause of a late first reply, for a client of a
// crowd, that the server's author may not think of: a listen backlog
// with no room left (Python's socketserver has 5) drops the handshake's
// last packet, and the client's request waits about 1 s for the kernel to
// retry. The client saw the connect succeed, so the delay counts against
// the reply.
func (c *Client) firstReplyHint(r *Reply) string {
	if !c.opts.Crowd || r.Index != 1 {
		return ""
	}
	return " (its connection's first: if the server accepts each connection at once, its listen backlog may be too small for clients that connect together, which delays them by about 1s; use 128 or more)"
}

// over rounds l, a latency above bound, to milliseconds, or finer where
// that would show it equal to the bound ("1s after its request, want
// within 1s").
func over(l, bound time.Duration) time.Duration {
	for _, unit := range []time.Duration{time.Millisecond, time.Microsecond} {
		if r := l.Round(unit); r > bound {
			return r
		}
	}
	return l
}

// firstDifference says where got first differs from want.
func firstDifference(got, want string) string {
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d: %#02x, want %#02x", i, got[i], want[i])
		}
	}
	if len(got) < len(want) {
		return fmt.Sprintf("a prefix of the content, missing its last %d bytes", len(want)-len(got))
	}
	return fmt.Sprintf("the content and %d bytes more", len(got)-len(want))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
