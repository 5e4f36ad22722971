package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"echoadd/protocol"

	"google.golang.org/protobuf/encoding/protowire"
)

// MaxIdleConns caps an idle run.
const MaxIdleConns = 200_000

// IdleLoad opens Conns connections, makes one echo request on each, and
// holds them idle for Hold; meanwhile a new client must still be served.
type IdleLoad struct {
	Framing protocol.Framing
	Conns   int
	Hold    time.Duration // how long the connections stay idle before the memory is read
	Timeout time.Duration // bound of each dial and round trip; 0: DefaultTimeout
	// Partial, if above 0, has each connection, after its first reply,
	// send the first Partial bytes of an echo request of PartialOf encoded
	// bytes and stop there for the hold: what a server buffers for requests
	// in progress (slow uploads, or a flood of them). After the hold each
	// sends the rest and must get its echo back, unless the server refused
	// the request meanwhile with Error CODE_OVERLOADED or a close: a
	// server's defence, counted in IdleResult.Refused, not an error. Other
	// Error replies (CODE_TIMEOUT: a hold longer than the server's read
	// timeout; CODE_TOO_LARGE: a request above its maximum) are errors.
	Partial   int
	PartialOf int // 0: protocol.DefaultMaxMessageSize
}

// MaxIdlePartial caps IdleLoad.PartialOf.
const MaxIdlePartial = 1 << 30

// IdleResult is what an idle run measured. The memory figures need a child
// server (Target.Server).
type IdleResult struct {
	Target          string      `json:"target"`
	Framing         string      `json:"framing"`
	Conns           int         `json:"conns"`  // asked for
	Opened          int         `json:"opened"` // connected and answered
	Errors          ErrorCounts `json:"errors"`
	RSSBefore       int64       `json:"rss_before_bytes,omitempty"`
	RSSAfter        int64       `json:"rss_after_bytes,omitempty"`
	RSSPerConn      float64     `json:"rss_per_conn_bytes,omitempty"`
	NewClientServed bool        `json:"new_client_served"`
	NewClientUs     float64     `json:"new_client_latency_us"`
	StillOpen       int         `json:"still_open_after_hold"` // answered a second request after the hold
	HoldSeconds     float64     `json:"hold_s"`
	PartialBytes    int         `json:"partial_bytes,omitempty"` // IdleLoad.Partial
	RequestBytes    int         `json:"partial_request_bytes,omitempty"`
	// Refused counts the partial requests the server refused, by the code
	// of its Error reply, or "closed" for a connection closed without one.
	Refused map[string]int `json:"refused,omitempty"`
}

// IdleRatio is the target's idle figures divided by the comparator's; a
// figure is null when the comparator's is not above 0 or was not measured
// (memory needs a child server).
type IdleRatio struct {
	RSSPerConn *float64 `json:"rss_per_conn"`
	NewClient  *float64 `json:"new_client_latency"`
}

// NewIdleRatio compares t with c.
func NewIdleRatio(t, c IdleResult) *IdleRatio {
	r := &IdleRatio{}
	if t.RSSBefore != 0 && c.RSSBefore != 0 && c.RSSPerConn > 0 {
		r.RSSPerConn = ratio(t.RSSPerConn, c.RSSPerConn)
	}
	if t.NewClientServed && c.NewClientServed && c.NewClientUs > 0 {
		r.NewClient = ratio(t.NewClientUs, c.NewClientUs)
	}
	return r
}

// WriteText writes the ratio for people.
func (r IdleRatio) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "ratio server/comparator: bytes per connection %s, new client latency %s\n", timesOrWhy(r.RSSPerConn), timesOrWhy(r.NewClient))
	return err
}

func timesOrWhy(r *float64) string {
	if r == nil {
		return "- (the comparator's figure is not above 0, or not measured)"
	}
	return fmt.Sprintf("%.2f×", *r)
}

// RunIdle performs an idle run against target. The caller raises the open
// file limit first (RaiseOpenFileLimit), before starting a child server so
// that the server inherits it.
func RunIdle(ctx context.Context, target Target, load IdleLoad) (IdleResult, error) {
	res := IdleResult{Target: target.Addr, Framing: load.Framing.String(), Conns: load.Conns, HoldSeconds: load.Hold.Seconds()}
	if load.Conns < 1 || load.Conns > MaxIdleConns {
		return res, fmt.Errorf("idle connections must be 1..%d, not %d", MaxIdleConns, load.Conns)
	}
	if load.Hold < 0 || load.Hold > MaxDuration {
		return res, fmt.Errorf("hold must be 0..%v", MaxDuration)
	}
	if load.PartialOf <= 0 {
		load.PartialOf = protocol.DefaultMaxMessageSize
	}
	if load.PartialOf < 16 || load.PartialOf > MaxIdlePartial {
		return res, fmt.Errorf("the partial request's size must be 16..%d bytes, not %d", MaxIdlePartial, load.PartialOf)
	}
	if load.Partial < 0 || load.Partial >= load.PartialOf {
		return res, fmt.Errorf("the bytes sent of a partial request must be 0..%d, less than its size, not %d", load.PartialOf-1, load.Partial)
	}
	if load.Timeout <= 0 {
		load.Timeout = DefaultTimeout
	}
	errs := &errorLog{}
	// One request for every connection: they only read it.
	var partial []byte
	if load.Partial > 0 {
		partial = appendEcho(nil, load.Framing, bytes.Repeat([]byte{'p'}, echoContentFor(load.PartialOf)))
		res.PartialBytes, res.RequestBytes = load.Partial, load.PartialOf
	}

	// One connection first, so that the server's one-time costs of a first
	// client are not counted per connection.
	first, err := dialEcho(ctx, target.Addr, load.Framing, load.Timeout, 0)
	if err != nil {
		return res, fmt.Errorf("first connection: %w", err)
	}
	defer first.Close()
	rss := func() (int64, error) { return ProcessGroupRSS(target.Server.PID()) }
	if target.Server != nil {
		if res.RSSBefore, err = rss(); err != nil {
			return res, err
		}
	}

	conns := make([]net.Conn, load.Conns)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range conns {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialEcho(ctx, target.Addr, load.Framing, load.Timeout, uint64(i+1))
			if err != nil {
				errs.add(false, "idle connection %d: %v", i, err)
				return
			}
			if partial != nil {
				// A failed write is a refusal seen after the hold.
				c.SetWriteDeadline(time.Now().Add(load.Timeout))
				c.Write(partial[:load.Partial])
				c.SetWriteDeadline(time.Time{})
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for _, c := range conns {
		if c != nil {
			res.Opened++
		}
	}

	// A new client is served while they are all open (EA-CONC-2).
	t0 := time.Now()
	if c, err := dialEcho(ctx, target.Addr, load.Framing, load.Timeout, 1<<40); err != nil {
		errs.add(false, "new client while %d connections were idle: %v", res.Opened, err)
	} else {
		res.NewClientServed = true
		res.NewClientUs = float64(time.Since(t0)) / float64(time.Microsecond)
		c.Close()
	}

	if load.Hold > 0 {
		held := time.Now()
		t := time.NewTimer(load.Hold)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		res.HoldSeconds = time.Since(held).Seconds() // shorter when interrupted
	}
	if target.Server != nil {
		if res.RSSAfter, err = rss(); err != nil {
			return res, err
		}
		if res.Opened > 0 {
			res.RSSPerConn = float64(res.RSSAfter-res.RSSBefore) / float64(res.Opened)
		}
	}

	// The connections were really held: a closed one would have flattered
	// the memory figure.
	for i, c := range conns {
		if c == nil {
			continue
		}
		if partial != nil {
			refused, err := finishPartial(c, load, partial)
			if err != nil {
				errs.add(true, "idle connection %d, its partial request: %v", i, err)
				continue
			}
			if refused != "" {
				if res.Refused == nil {
					res.Refused = map[string]int{}
				}
				res.Refused[refused]++
				continue
			}
		}
		if err := roundTrip(c, load.Framing, load.Timeout, uint64(i+1)<<20); err != nil {
			errs.add(false, "idle connection %d after the hold: %v", i, err)
			continue
		}
		res.StillOpen++
	}
	errs.mu.Lock()
	res.Errors = errs.counts
	errs.mu.Unlock()
	return res, nil
}

// finishPartial sends the rest of c's partial request and checks the
// echo. If the server refused the request instead, with an Error reply or
// a close, it returns the code's name or "closed"; any other reply is an
// error. A refusal is looked for before the rest is written, since writing
// to a connection the server has closed would have it reset, which can
// destroy the Error reply unread.
func finishPartial(c net.Conn, load IdleLoad, req []byte) (refused string, err error) {
	defer c.SetDeadline(time.Time{})
	rr := NewReplyReader(c, load.Framing, len(req)+64)
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	body, err := rr.Next()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.SetDeadline(time.Now().Add(load.Timeout))
		if _, err := c.Write(req[load.Partial:]); err != nil {
			return "closed", nil
		}
		rr = NewReplyReader(c, load.Framing, len(req)+64) // the timed-out read took nothing
		body, err = rr.Next()
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return "", fmt.Errorf("no reply within %v", load.Timeout)
		}
		return "closed", nil
	}
	if m, err := protocol.DecodeReply(body); err == nil && m.GetError() != nil {
		// Only a refusal for memory is the server's defence; the others say
		// the measurement was set up wrong, and its figures mean nothing.
		switch code := m.GetError().GetCode(); code {
		case protocol.Code_CODE_OVERLOADED:
			return code.String(), nil
		case protocol.Code_CODE_TOO_LARGE:
			return "", fmt.Errorf("the server refused it as too large (%v): the request of %d bytes is above its maximum message size; lower --idle-partial-of", code, load.PartialOf)
		case protocol.Code_CODE_TIMEOUT:
			return "", fmt.Errorf("the server timed it out (%v) during the hold: its read timeout is shorter than --idle-hold (%v); shorten --idle-hold", code, load.Hold)
		default:
			return "", fmt.Errorf("the server answered it with an Error reply, %v (%s): a server that reads the request differently (check --framing) or a fault of the server's", code, strconv.QuoteToGraphic(m.GetError().GetDetail()))
		}
	}
	return "", checkReply(body, expectation{content: req[len(req)-echoContentFor(load.PartialOf):]})
}

// echoContentFor is the content length of the largest echo request whose
// encoding (without a length prefix) is at most size bytes.
func echoContentFor(size int) int {
	for n := size; n > 0; n-- {
		inner := 1 + protowire.SizeBytes(n)
		if 1+protowire.SizeBytes(inner) <= size {
			return n
		}
	}
	return 0
}

// dialEcho connects to addr and has one echo answered on the connection,
// each step bounded by timeout.
func dialEcho(ctx context.Context, addr string, f protocol.Framing, timeout time.Duration, seq uint64) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := roundTrip(c, f, timeout, seq); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// roundTrip sends one 16-byte echo and checks the reply.
func roundTrip(c net.Conn, f protocol.Framing, timeout time.Duration, seq uint64) error {
	content := make([]byte, 16)
	stamp(content, seq)
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(appendEcho(nil, f, content)); err != nil {
		return err
	}
	// A small reader: 10,000 idle clients must not hold 4 KiB each here.
	rr := &ReplyReader{r: c, framing: f, max: 1024, buf: make([]byte, 64)}
	body, err := rr.Next()
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		return fmt.Errorf("reading the reply: %w", err)
	}
	return checkReply(body, expectation{content: content})
}
