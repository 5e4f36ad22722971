package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"echoadd/protocol"
)

// Options configure a Client.
type Options struct {
	Framing protocol.Framing
	// MaxMessageSize is the largest request the target declares it accepts,
	// in encoded bytes; 0 means protocol.MinMaxMessageSize. Requests the
	// client sends above it are not tracked as requests.
	MaxMessageSize int
	// Latency is the EA-CONN-6 bound every reply is held to; 0 means 1 s.
	Latency time.Duration
	// DialTimeout bounds the connect; 0 means 5 s.
	DialTimeout time.Duration
	// Name names the connection in its transcript, e.g. "conn 3".
	Name string
	// Live, if not nil, receives every transcript entry as it happens. It
	// must be safe for concurrent use: every client of a run may share it.
	Live io.Writer
	// Crowd marks one of many clients that connect together, whose late
	// first reply may come of a full listen backlog, which its failure
	// then names.
	Crowd bool
}

// Window is a named span of time during which the client waits for
// something to happen, or for nothing to: "quiet 50ms". A window that
// passes without bytes means only that nothing arrived within it.
type Window struct {
	Name string
	D    time.Duration
}

func (w Window) String() string { return fmt.Sprintf("%s window of %v", w.Name, w.D) }

// Client is one connection to the target. Its methods must be called from
// one goroutine at a time; every read and write has a deadline.
type Client struct {
	conn     *net.TCPConn
	opts     Options
	ctx      context.Context
	stopCtx  func() bool
	tr       *Transcript
	replyMax int

	// Reading side.
	rbuf     []byte    // received, not yet returned as replies
	arrivals []arrival // when rbuf's bytes arrived
	rerr     error     // sticky: how the connection ended (io.EOF, a reset)
	replies  int       // replies returned so far
	early    []byte    // raw fields skipped before the first reply (see next)
	scratch  []byte
	stamped  *stampedConn // reads with the kernel's receive times, if it gives them
	// lastWrite is when the last write returned: the times sent requests
	// are tracked by, which a kernel receive time may precede (below).
	lastWrite time.Time

	// Writing side: the client splits what it sends, so that each reply's
	// latency is measured from when its request was sent whole.
	obuf      []byte      // sent bytes not yet split into requests
	otrack    bool        // false once the sent stream stopped being requests
	frames    int         // frames sent so far
	pending   []request   // the valid requests not yet answered, in order
	framed    []time.Time // when each frame, valid request or not, was sent whole
	probes    int
	closedWr  bool
	malformed bool     // something sent was not a valid request: the server may close for it
	recent    [][]byte // the last replies' bodies, to recognise a repeat
}

// request is a valid request the client sent whole, awaiting its reply.
type request struct {
	msg  *protocol.ClientMessage
	size int       // encoded bytes, without the framing's prefix
	sent time.Time // when it was sent whole
}

type arrival struct {
	end int // offset in rbuf just past the bytes of this read
	at  time.Time
}

// Dial connects to exactly addr. A failure to connect to "localhost:P" says
// that localhost may resolve to ::1 while the server listens on 127.0.0.1
// only, or the reverse.
func Dial(ctx context.Context, addr string, o Options) (*Client, error) {
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = protocol.MinMaxMessageSize
	}
	if o.Latency <= 0 {
		o.Latency = time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.Name == "" {
		o.Name = "conn"
	}
	d := net.Dialer{Timeout: o.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, (&Failure{Got: DialError(addr, err).Error(), Want: "a connection"}).breaks(notAccepted)
	}
	c := &Client{
		conn:     nc.(*net.TCPConn),
		stamped:  stampConn(nc.(*net.TCPConn)),
		opts:     o,
		ctx:      ctx,
		tr:       newTranscript(fmt.Sprintf("%s %s→%s (%s)", o.Name, nc.LocalAddr(), addr, o.Framing), o.Name, o.Live),
		replyMax: o.MaxMessageSize + replySlack,
		scratch:  make([]byte, 64<<10),
		otrack:   true,
	}
	c.stopCtx = context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Now()) }) //nolint:errcheck // best effort wake-up
	c.tr.note("connected %s→%s (%s)", nc.LocalAddr(), addr, o.Framing)
	return c, nil
}

// DialError explains a failed connect to addr.
func DialError(addr string, err error) error {
	host, _, _ := net.SplitHostPort(addr)
	if strings.EqualFold(host, "localhost") {
		return fmt.Errorf("cannot connect to %s: %w (localhost may resolve to ::1 while the server listens on 127.0.0.1 only, or the reverse: give the address the server prints, e.g. 127.0.0.1:PORT)", addr, err)
	}
	return fmt.Errorf("cannot connect to %s: %w", addr, err)
}

// Replies counts the replies read so far on the connection.
func (c *Client) Replies() int { return c.replies }

// Name is the connection's name in its transcript.
func (c *Client) Name() string { return c.opts.Name }

// Transcript is the connection's record so far.
func (c *Client) Transcript() *Transcript { return c.tr }

// Framing is the framing the client speaks.
func (c *Client) Framing() protocol.Framing { return c.opts.Framing }

// Note adds a line to the transcript, e.g. what the spec is about to do.
func (c *Client) Note(format string, args ...any) { c.tr.note(format, args...) }

// Close closes the connection. It is idempotent.
func (c *Client) Close() error {
	c.stopCtx()
	err := c.conn.Close()
	if err == nil {
		c.tr.note("client closed the connection")
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Reset aborts the connection: the server sees a TCP reset (RST), not a
// clean close.
func (c *Client) Reset() error {
	c.stopCtx()
	if err := c.conn.SetLinger(0); err != nil {
		return err
	}
	c.tr.note("client reset the connection (SO_LINGER 0, close)")
	return c.conn.Close()
}

// CloseWrite half-closes the connection: the server reads EOF, the client
// can still read.
func (c *Client) CloseWrite() error {
	c.closedWr = true
	c.tr.note("client half-closed (shutdown write)")
	return c.conn.CloseWrite()
}

// Frame encodes msgs in the client's framing, back to back.
func (c *Client) Frame(msgs ...*protocol.ClientMessage) ([]byte, error) {
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = c.opts.Framing.AppendMessage(b, m); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// FrameBody puts body behind the client's framing prefix (none in raw).
func (c *Client) FrameBody(body []byte) []byte { return c.opts.Framing.AppendFrame(nil, body) }

// Send writes msgs, framed, with one write: several messages make a batch
// the server receives together.
func (c *Client) Send(msgs ...*protocol.ClientMessage) error {
	b, err := c.Frame(msgs...)
	if err != nil {
		return err
	}
	return c.write(b)
}

// SendRaw writes b exactly as it is, with one write (protocol.IllegalWriter).
func (c *Client) SendRaw(b []byte) error { return c.write(b) }

// SendFrame writes body behind a length prefix declaring declared bytes,
// whatever len(body) is (protocol.IllegalWriter.WriteFrame). In raw framing
// there is no prefix and declared is ignored.
func (c *Client) SendFrame(declared uint64, body []byte) error {
	var b bytesWriter
	if err := (protocol.IllegalWriter{W: &b}).WriteFrame(c.opts.Framing, declared, body); err != nil {
		return err
	}
	return c.write(b)
}

// SendSplit writes parts one write each, pausing between them: the pause is
// the client's behaviour under test (a request arriving in pieces), not a
// way to order events.
func (c *Client) SendSplit(parts [][]byte, pause time.Duration) error {
	for i, p := range parts {
		if i > 0 {
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
				return c.ctx.Err()
			}
		}
		if err := c.write(p); err != nil {
			return err
		}
	}
	return nil
}

type bytesWriter []byte

func (w *bytesWriter) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }

// writeTimeout bounds one write: a server that reads nothing blocks it.
func (c *Client) writeTimeout() time.Duration { return max(2*c.opts.Latency, 2*time.Second) }

func (c *Client) write(b []byte) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout())); err != nil {
		return err
	}
	err := (protocol.IllegalWriter{W: c.conn}).WriteBytes(b)
	now := time.Now()
	c.lastWrite = now
	c.tr.add(now, Sent, b, c.track(now, b))
	if err == nil {
		return nil
	}
	if cerr := c.ctx.Err(); cerr != nil {
		return cerr
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return c.fail(nil, fmt.Sprintf("a write of %d bytes still blocked after %v", len(b), c.writeTimeout()), "the server to read what it is sent")
	}
	c.tr.note("write failed: %v", err)
	return c.fail(nil, fmt.Sprintf("the connection closed by the server while sending (%v)", err), "the connection open").breaks(c.closedBreach(err))
}

// track splits the sent stream into requests, as a server would, and notes
// when each valid request was sent whole. It returns the transcript text.
func (c *Client) track(at time.Time, b []byte) string {
	if !c.otrack {
		return ""
	}
	c.obuf = append(c.obuf, b...)
	var notes []string
	for {
		msg, n, err := c.opts.Framing.Split(c.obuf, c.opts.MaxMessageSize)
		if n > 0 && err != nil {
			notes = append(notes, fmt.Sprintf("%d bytes of other fields, skipped", n))
		}
		if err == nil {
			c.frames++
			c.framed = append(c.framed, at)
			if req, derr := protocol.DecodeRequest(msg); derr != nil {
				c.malformed = true
				notes = append(notes, fmt.Sprintf("frame #%d: not a valid request (%v)", c.frames, derr))
			} else {
				c.pending = append(c.pending, request{msg: req, size: len(msg), sent: at})
				notes = append(notes, fmt.Sprintf("request #%d: %s", c.frames, describeRequest(req)))
			}
		}
		c.obuf = c.obuf[:copy(c.obuf, c.obuf[n:])]
		switch {
		case err == nil:
			continue
		case errors.Is(err, protocol.ErrIncomplete):
			if len(c.obuf) > 0 {
				notes = append(notes, fmt.Sprintf("%d bytes of an incomplete frame", len(c.obuf)))
			}
		default:
			notes = append(notes, "from here on not a request stream: "+err.Error())
			c.otrack, c.obuf, c.malformed = false, nil, true
		}
		return strings.Join(notes, "; ")
	}
}

// outcome is what the next read brought.
type outcome struct {
	reply  *Reply
	closed error    // the connection ended: io.EOF, or the read error
	silent bool     // no whole reply by the deadline
	bad    string   // bytes that are not a reply in this framing
	badIDs []string // the requirement those bytes violate
	hint   []byte   // bytes to derive a framing hint from
	abort  error    // the spec's context ended
}

// framingID is the requirement that defines the client's framing.
func (c *Client) framingID() string {
	switch c.opts.Framing {
	case protocol.Len32:
		return "EA-FRAME-4"
	case protocol.Varint:
		return "EA-FRAME-5"
	default:
		return "EA-FRAME-1"
	}
}

// next returns the next reply, or why there is none by deadline.
func (c *Client) next(deadline time.Time) outcome {
	lookedAgain := false
	for {
		if len(c.rbuf) > 0 {
			whole := append([]byte(nil), c.rbuf...) // for a framing hint: from the reply's start
			n, prefix, skipped, err := splitReply(c.opts.Framing, c.rbuf, c.replyMax)
			switch {
			case skipped > 0 && c.replies > 0:
				// Once a reply has shown that the server speaks raw framing;
				// before, they may be another framing's prefix (a varint
				// length of 80 reads as field 10), judged below.
				o := c.stray(c.rbuf[:skipped], "bytes of fields", whole)
				c.consume(skipped)
				return o
			case skipped > 0:
				c.tr.note("skipped %d bytes of fields that are not replies: % x", skipped, c.rbuf[:min(skipped, maxHexBytes)])
				c.early = append(c.early, c.rbuf[:skipped]...)
				c.consume(skipped)
			}
			if err == nil && c.replies == 0 && len(c.early) > 0 {
				// Fields before the first reply: a greeting (EA-CONN-1), unless
				// the bytes from the start read as another framing's replies,
				// which the framing hint then names.
				early := c.early
				c.early = nil
				if _, other := otherFraming(append(slices.Clone(early), c.rbuf...), c.opts.Framing); !other {
					return c.stray(early, "bytes before the first reply", whole)
				}
			}
			if err == nil {
				o := c.decode(n, prefix)
				o.hint = whole
				return o
			}
			if !errors.Is(err, protocol.ErrIncomplete) {
				o := outcome{bad: "bytes that are not a " + c.opts.Framing.String() + " reply (" + err.Error() + ")", badIDs: []string{c.framingID()}, hint: whole}
				c.tr.note("%s", o.bad)
				return o
			}
		}
		if c.rerr != nil {
			return outcome{closed: c.rerr, hint: c.rbuf}
		}
		if err := c.ctx.Err(); err != nil {
			return outcome{abort: err}
		}
		if err := c.conn.SetReadDeadline(deadline); err != nil {
			return outcome{abort: err}
		}
		n, now, err := c.read(c.scratch)
		if n > 0 {
			c.rbuf = append(c.rbuf, c.scratch[:n]...)
			c.arrivals = append(c.arrivals, arrival{end: len(c.rbuf), at: now})
			c.tr.add(now, Received, c.scratch[:n], "")
		}
		if err == nil {
			continue
		}
		if cerr := c.ctx.Err(); cerr != nil {
			return outcome{abort: cerr}
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if n > 0 {
				continue // split what came first
			}
			if !lookedAgain {
				// A harness held up past the deadline (a loaded machine)
				// gets a timeout even with bytes waiting: one more read
				// takes what is there before calling it silence.
				lookedAgain, deadline = true, time.Now().Add(lastLook)
				continue
			}
			return outcome{silent: true, hint: c.rbuf}
		}
		c.rerr = err
		if errors.Is(err, io.EOF) {
			c.tr.note("server closed the connection (EOF)")
		} else {
			c.tr.note("connection ended: %v", err)
		}
	}
}

// read reads into b, and says when the bytes arrived: the kernel's time
// with stamped, else the time the read returned.
//
// A reply can reach the socket before the write of its request has
// returned and been timed, so a kernel time is taken no earlier than that:
// requests are tracked by when their write returned, and a reply that
// seemed to come before its request would answer nothing. Only a reply to
// an earlier request, which came during a later write, is timed later by
// that write's duration.
func (c *Client) read(b []byte) (int, time.Time, error) {
	if c.stamped == nil {
		n, err := c.conn.Read(b)
		return n, time.Now(), err
	}
	n, at, err := c.stamped.read(b)
	if at.Before(c.lastWrite) {
		at = c.lastWrite
	}
	return n, at, err
}

// lastLook is how long next's last read waits for bytes already there.
const lastLook = time.Millisecond

// stray is the outcome of b, raw fields that are no reply, described as
// what ("bytes before the first reply"): a raw client skips them
// (EA-FRAME-1), but a server writes nothing but replies (EA-CONN-1); the
// original client reads them as a reply that sets nothing.
func (c *Client) stray(b []byte, what string, hint []byte) outcome {
	o := outcome{bad: fmt.Sprintf("%d %s that are no reply (% x), which a raw client skips; a server writes nothing but replies (no greeting, no keep-alive)", len(b), what, b[:min(len(b), maxHexBytes)]), badIDs: []string{"EA-CONN-1"}, hint: hint}
	c.tr.note("%s", o.bad)
	return o
}

// decode turns the first n buffered bytes into a reply. When they are the
// connection's first reply and no valid one (undecodable, not as the schema
// defines it, or setting no field) while the bytes received read as valid
// replies in another framing, the server speaks that framing: the bytes
// are no reply in the client's, and break its framing requirement, not
// EA-MSG-1 (a len32 reply 00 00 00 56 1a... read as varint is an empty
// message, then garbage). They stay buffered, as bytes splitReply rejects do.
func (c *Client) decode(n, prefix int) outcome {
	frame := append([]byte(nil), c.rbuf[:n]...)
	first, last := c.arrivalOf(0), c.arrivalOf(n-1)
	rest := append([]byte(nil), c.rbuf...)
	msg, strict, err := decodeReply(frame[prefix:])
	if c.replies == 0 && (err != nil || strict != nil || msg.GetMessage() == nil) {
		if g, ok := otherFraming(rest, c.opts.Framing); ok {
			o := outcome{bad: fmt.Sprintf("bytes that are not a %s reply (read as %s, %s; they read as %s replies)", c.opts.Framing, c.opts.Framing, invalidReply(msg, strict, err), g), badIDs: []string{c.framingID()}, hint: rest}
			c.tr.note("%s", o.bad)
			return o
		}
	}
	c.consume(n)
	c.replies++
	if err != nil {
		o := outcome{bad: fmt.Sprintf("reply #%d that is not a ServerMessage (%v)", c.replies, err), badIDs: []string{"EA-MSG-1"}, hint: rest}
		c.tr.note("%s", o.bad)
		return o
	}
	r := &Reply{Index: c.replies, Msg: msg, Strict: strict, Frame: frame, Prefix: prefix, First: first, Last: last}
	r.unasked = c.otrack && c.sentBefore(last) < r.Index
	for i, body := range c.recent {
		if string(body) == string(r.Body()) {
			r.repeats = c.replies - len(c.recent) + i
		}
	}
	if c.recent = append(c.recent, r.Body()); len(c.recent) > 4 {
		c.recent = c.recent[1:]
	}
	if strict != nil {
		c.tr.note("%s (not as the schema defines it: %v)", r, strict)
	} else {
		c.tr.note("%s", r)
	}
	return outcome{reply: r, hint: rest}
}

// sentBefore counts the frames sent whole by t.
func (c *Client) sentBefore(t time.Time) int {
	n := 0
	for n < len(c.framed) && !c.framed[n].After(t) {
		n++
	}
	return n
}

func (c *Client) arrivalOf(off int) time.Time {
	for _, a := range c.arrivals {
		if a.end > off {
			return a.at
		}
	}
	return time.Now()
}

func (c *Client) consume(n int) {
	c.rbuf = c.rbuf[:copy(c.rbuf, c.rbuf[n:])]
	kept := c.arrivals[:0]
	for _, a := range c.arrivals {
		if a.end -= n; a.end > 0 {
			kept = append(kept, a)
		}
	}
	c.arrivals = kept
}

// fail builds a Failure with the transcript so far.
func (c *Client) fail(ids []string, got, want string) *Failure {
	return &Failure{IDs: ids, Got: got, Want: want, Transcript: c.tr.Tail(failureEntries)}
}

// failWithHint adds a framing hint derived from b.
func (c *Client) failWithHint(ids []string, got, want string, b []byte) *Failure {
	f := c.fail(ids, got, want)
	f.Hint = framingHint(b, c.opts.Framing)
	return f
}
