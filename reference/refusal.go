package reference

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// logWindow is how long after a warn line of a rateLimitedLog the next
// events are only counted (and logged one by one at debug level).
const logWindow = 10 * time.Second

// rateLimitedLog logs the refusals at one of the server's limits (connections
// at MaxConns, EA-LIM-5; requests at MaxBuffered), or the connections
// closed for one kind of client fault (a stream error, a read or write
// timeout), so that a flood of them does not flood the log: the first is
// logged at warn level at once; those within logWindow after it
// only at debug level, each, and counted; the first after the window logs
// the count in one warn line (its plural message, refused=N or closed=N
// with itself, in_last= the time since the previous warn line) and opens
// the next window. So there is at most one warn line per window; a count
// whose window ends with no event after it is logged within a second of
// the window's end (flushDue).
//
// Refusals come from every goroutine that accepts or reads (epoll engine)
// or serves a connection (goroutine engine). A refusal that writes no line
// takes no lock and allocates nothing: two atomic operations and the clock.
type rateLimitedLog struct {
	// Immutable.
	log   *slog.Logger
	one   string               // the message for one refusal
	many  string               // the message for a count of them
	count string               // the count's key: "refused", "closed"
	limit slog.Attr            // the limit refused at, in every line (or none)
	debug bool                 // log is enabled at debug level
	clock func() time.Duration // monotonic

	next    atomic.Int64 // when the window ends, on clock; 0 before the first refusal
	counted atomic.Int64 // refusals since the last warn line, not in it
}

// newRefusalLog returns a refusal log that logs to log: one and many are
// the messages for one refusal and for a count of them, limit the limit's
// attribute. clock nil means the monotonic clock.
func newRefusalLog(log *slog.Logger, one, many string, limit slog.Attr, clock func() time.Duration) *rateLimitedLog {
	if clock == nil {
		start := time.Now()
		clock = func() time.Duration { return time.Since(start) }
	}
	return &rateLimitedLog{log: log, one: one, many: many, count: "refused", limit: limit, debug: log.Enabled(context.Background(), slog.LevelDebug), clock: clock}
}

// newFaultLog is the log of connections closed for one kind of client
// fault: a hostile client can cause one per connection.
func newFaultLog(log *slog.Logger, one, many string, limit slog.Attr, clock func() time.Duration) *rateLimitedLog {
	r := newRefusalLog(log, one, many, limit, clock)
	r.count = "closed"
	return r
}

// clientFaults are the logs of the connections closed for a client's fault.
type clientFaults struct {
	stream, readTimeout, writeTimeout *rateLimitedLog
}

func newClientFaults(s *Server) clientFaults {
	return clientFaults{
		stream: newFaultLog(s.logger(), "closing connection after a stream error",
			"connections closed after stream errors", slog.Attr{}, s.clock),
		readTimeout: newFaultLog(s.logger(), "request not received within the read timeout",
			"connections closed: requests not received within the read timeout", slog.Duration("read_timeout", s.ReadTimeout), s.clock),
		writeTimeout: newFaultLog(s.logger(), "replies not taken within the write timeout: connection closed",
			"connections closed: replies not taken within the write timeout", slog.Duration("write_timeout", s.WriteTimeout), s.clock),
	}
}

func (f clientFaults) logs() []*rateLimitedLog {
	return []*rateLimitedLog{f.stream, f.readTimeout, f.writeTimeout}
}

// newConnRefusalLog is the log of connections refused at maxConns.
func newConnRefusalLog(log *slog.Logger, maxConns int, clock func() time.Duration) *rateLimitedLog {
	return newRefusalLog(log, "connection refused: at the connection limit", "connections refused at the connection limit", slog.Int("max_conns", maxConns), clock)
}

// newBufferRefusalLog is the log of requests refused because the bytes
// buffered over all connections reached maxBuffered.
func newBufferRefusalLog(log *slog.Logger, maxBuffered int64, clock func() time.Duration) *rateLimitedLog {
	return newRefusalLog(log, "request refused: the server's buffers are full; connection closed",
		"requests refused with the server's buffers full; connections closed", slog.Int64("max_buffered", maxBuffered), clock)
}

// add logs, or counts, one refusal or fault. attrs, called only for a line of
// its own, name the connection and say what happened.
func (r *rateLimitedLog) add(attrs func() []slog.Attr) {
	now := int64(r.clock())
	end := r.next.Load()
	if now < end || !r.next.CompareAndSwap(end, now+int64(logWindow)) {
		// Within the window, or another refusal has just opened a new one.
		r.counted.Add(1)
		if r.debug {
			r.log.LogAttrs(context.Background(), slog.LevelDebug, r.one, append([]slog.Attr{r.limit}, attrs()...)...)
		}
		return
	}
	n := r.counted.Swap(0)
	if n == 0 {
		r.log.LogAttrs(context.Background(), slog.LevelWarn, r.one, append([]slog.Attr{r.limit}, attrs()...)...)
		return
	}
	r.logCount(n+1, time.Duration(now-(end-int64(logWindow))))
}

// logCount writes the warn line for n events over the last d.
func (r *rateLimitedLog) logCount(n int64, d time.Duration) {
	r.log.LogAttrs(context.Background(), slog.LevelWarn, r.many,
		slog.Int64(r.count, n),
		r.limit,
		slog.Duration("in_last", d.Round(time.Millisecond)))
}

// flushDue logs the count, if any, once the window it was counted in has
// ended, and opens the next window: so the count comes within about a
// second of the window's end, and there is still at most one warn line per
// window. An event that has just opened a window and logged is left alone.
func (r *rateLimitedLog) flushDue() {
	if r == nil || r.counted.Load() == 0 {
		return
	}
	now := int64(r.clock())
	end := r.next.Load()
	if now < end || !r.next.CompareAndSwap(end, now+int64(logWindow)) {
		return
	}
	n := r.counted.Swap(0)
	if n == 0 {
		return
	}
	r.logCount(n, time.Duration(now-(end-int64(logWindow))))
}

// flush logs the refusals counted since the last warn line, if any: at
// Shutdown or Close, as a flood that has stopped brings no next refusal to
// log them. r may be nil (no Serve yet).
func (r *rateLimitedLog) flush() {
	if r == nil {
		return
	}
	n := r.counted.Swap(0)
	if n == 0 {
		return
	}
	r.logCount(n, time.Duration(int64(r.clock())-(r.next.Load()-int64(logWindow))))
}
