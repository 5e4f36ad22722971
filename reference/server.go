package reference

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"echoadd/protocol"
	"echoadd/reference/internal/budget"
	"echoadd/reference/internal/eventloop"
)

// DefaultListenAddr is where ListenAndServe listens when ListenAddr is empty:
// loopback only, as the command line's --listen default.
const DefaultListenAddr = "127.0.0.1:7878"

// DefaultMaxBuffered is the command line's --max-buffered (Server.MaxBuffered):
// 256 requests of the default maximum size at once.
const DefaultMaxBuffered = 256 << 20

// ErrServerClosed is returned by Serve and ListenAndServe once Shutdown or
// Close has been called.
var ErrServerClosed = errors.New("reference: server closed")

// Accept back-off for temporary errors such as EMFILE: the first wait, and
// the ceiling the doubling stops at.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// Server is the reference Echo/Add server. The zero value serves raw framing
// with a 1 MiB limit, no timeouts and no connection limit.
//
// The configuration fields are owned by the caller until the first call to
// Serve or ListenAndServe and are read-only afterwards, from every goroutine:
// set them before serving and do not change them.
type Server struct {
	// ListenAddr is the TCP address ListenAndServe listens on; "" means
	// DefaultListenAddr. A port of 0 picks a free port, which Addr reports.
	// Serve ignores it.
	ListenAddr string

	// Framing is how requests and replies are delimited on every connection
	// (EA-FRAME-*). The zero value is protocol.Raw.
	Framing protocol.Framing

	// MaxMessageSize is the largest request accepted, in encoded bytes
	// without the length prefix; a bigger one gets Error CODE_TOO_LARGE and the
	// connection is closed (EA-LIM-2). 0 means protocol.DefaultMaxMessageSize
	// (1 MiB). Values below protocol.MinMaxMessageSize break EA-LIM-1.
	MaxMessageSize int

	// IdleTimeout closes a connection that has had no request in progress
	// (no byte of an unfinished request received, no reply owed) for this
	// long (EA-LIM-4). 0 means connections may stay idle for ever.
	IdleTimeout time.Duration

	// ReadTimeout bounds how long a request may take to arrive once its first
	// byte has: on expiry the connection gets Error CODE_TIMEOUT and is closed
	// (EA-LIM-3), so that clients sending a byte now and then (slow-loris)
	// cannot hold connections. 0 means no limit.
	ReadTimeout time.Duration

	// WriteTimeout closes a connection whose client leaves replies untaken:
	// once the socket refuses a reply (the client is not reading), the
	// replies waiting must all be taken within WriteTimeout, or the
	// connection is closed. Until then the server reads no more of that
	// connection's requests (TCP flow control), so it cannot grow a backlog;
	// the timeout frees the connection itself (with MaxConns, its slot).
	// 0 means no limit.
	WriteTimeout time.Duration

	// MaxConns is the most connections served at once; a connection beyond
	// it gets Error CODE_OVERLOADED and is closed (EA-LIM-5). 0 means no limit.
	MaxConns int

	// MaxBuffered bounds the bytes that all connections together hold in
	// buffers larger than 4 KiB: requests still arriving and replies the
	// client has not taken. A connection whose request would take it beyond
	// MaxBuffered gets Error CODE_OVERLOADED and is closed; the others go on.
	// Without it the worst case is MaxConns times MaxMessageSize. Replies are
	// counted but never refused: they may take it a little beyond. 0 means
	// no limit; the command line's default is DefaultMaxBuffered.
	MaxBuffered int64

	// ShutdownGrace, if positive, bounds how long Shutdown waits for requests
	// in progress before it closes the remaining connections by force, on top
	// of the context Shutdown is given. 0 means only that context bounds it.
	// The command line sets it from --shutdown-grace for its stop signals
	// (SIGTERM, SIGINT, SIGHUP).
	ShutdownGrace time.Duration

	// Engine is how connections are served: EngineEpoll (event loops, Linux
	// only) or EngineGoroutine (a goroutine per connection). "" means
	// DefaultEngine: EngineEpoll on Linux. Both serve the same protocol
	// with the same limits, timeouts and shutdown; connections from a
	// listener that does not yield sockets are served by goroutines.
	Engine string

	// Logger receives the start-up line ("listening on HOST:PORT", info),
	// connection open and close (debug) and errors (warn). nil discards.
	Logger *slog.Logger

	// handle answers decoded requests; nil means Handle. Tests set it to
	// hold a request in progress. Same ownership as the fields above.
	handle func(*protocol.ClientMessage) *protocol.ServerMessage
	// clock is the refusal log's clock (see rateLimitedLog); nil means the
	// monotonic clock. Tests set it to pass its window without waiting.
	// Same ownership as the fields above.
	clock func() time.Duration

	mu         sync.Mutex                // guards the fields below
	listeners  map[net.Listener]struct{} // listeners whose Serve is running
	conns      map[*conn]struct{}        // connections whose goroutine is running
	served     int                       // conns that are served, not rejected (MaxConns)
	addr       net.Addr                  // address of the first listener served
	inShutdown bool                      // Shutdown or Close has been called
	done       chan struct{}             // closed when inShutdown becomes true
	quiet      chan struct{}             // closed once inShutdown and nothing runs
	closeErr   error                     // from closing the listeners
	epoll      *eventloop.Engine         // the epoll engine, once started

	// refusals logs the connections refused at MaxConns, bufferRefusals the
	// requests refused at MaxBuffered, which budget counts against, faults
	// the connections closed for a client's fault. Set under mu by the first
	// Serve before it accepts, and read-only after, from the goroutines that
	// accept and serve connections.
	refusals       *rateLimitedLog
	bufferRefusals *rateLimitedLog
	faults         clientFaults
	budget         *budget.Budget

	held      sync.WaitGroup // goroutines running handle for the epoll engine
	flushStop chan struct{}  // closed to end flushCounts; nil while it does not run
	flushDone chan struct{}  // closed by flushCounts as it returns
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) maxMessageSize() int {
	if s.MaxMessageSize <= 0 {
		return protocol.DefaultMaxMessageSize
	}
	return s.MaxMessageSize
}

func (s *Server) handler() func(*protocol.ClientMessage) *protocol.ServerMessage {
	if s.handle == nil {
		return Handle
	}
	return s.handle
}

// Addr returns the address of the first listener being served, or nil
// before Serve (or ListenAndServe's listen) has started. It does not block.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ListenAndServe listens on ListenAddr and serves it; see Serve.
func (s *Server) ListenAndServe() error {
	if s.shuttingDown() {
		return ErrServerClosed
	}
	addr := s.ListenAddr
	if addr == "" {
		addr = DefaultListenAddr
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve accepts connections on l and serves them with the Engine (on the
// epoll loops, or each in its own goroutine) until Shutdown or Close, then
// returns ErrServerClosed. It takes ownership of l
// and closes it on return. Any other accept error is returned, except
// temporary ones such as EMFILE, after which Serve waits (5 ms, doubling up
// to 1 s) and tries again. Serve may be called for several listeners.
func (s *Server) Serve(l net.Listener) error {
	if !s.trackListener(l) {
		l.Close()
		return ErrServerClosed
	}
	defer s.untrackListener(l)
	s.logger().Info("listening on "+l.Addr().String(),
		slog.String("framing", s.Framing.String()),
		slog.Int("max_message_size", s.maxMessageSize()),
		slog.Duration("idle_timeout", s.IdleTimeout),
		slog.Duration("read_timeout", s.ReadTimeout),
		slog.Duration("write_timeout", s.WriteTimeout),
		slog.Int("max_conns", s.MaxConns),
		slog.Int64("max_buffered", s.MaxBuffered),
		slog.String("engine", cmp.Or(s.Engine, DefaultEngine)),
		slog.Duration("shutdown_grace", s.ShutdownGrace))

	loops, err := s.loops()
	if err != nil {
		return err
	}
	if loops != nil {
		return s.serveLoops(l, loops)
	}
	var backoff time.Duration
	outage := eventloop.AcceptOutage{Log: s.logger()}
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shuttingDown() {
				return ErrServerClosed
			}
			if !eventloop.TemporaryAcceptError(err) {
				return err
			}
			backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
			outage.Failed(err, backoff)
			if !s.wait(backoff) {
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		outage.Accepted()
		s.startConn(nc)
	}
}

// wait sleeps for d, or until Shutdown or Close; it reports whether the full
// time passed.
func (s *Server) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.doneChan():
		return false
	}
}

// startConn tracks nc and starts its goroutine, or closes it at once when the
// server is stopping.
func (s *Server) startConn(nc net.Conn) {
	s.mu.Lock()
	if s.inShutdown {
		s.mu.Unlock()
		nc.Close()
		return
	}
	c := newConn(s, nc)
	c.rejected = s.MaxConns > 0 && s.served >= s.MaxConns
	if !c.rejected {
		s.served++
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	go c.serve()
}

// connDone forgets c once its goroutine is about to return.
func (s *Server) connDone(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if !c.rejected {
		s.served--
	}
	s.checkQuietLocked()
}

func (s *Server) trackListener(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[l] = struct{}{}
	if s.addr == nil {
		s.addr = l.Addr()
	}
	if s.refusals == nil {
		s.refusals = newConnRefusalLog(s.logger(), s.MaxConns, s.clock)
		s.bufferRefusals = newBufferRefusalLog(s.logger(), s.MaxBuffered, s.clock)
		s.faults = newClientFaults(s)
		s.budget = budget.New(s.MaxBuffered)
	}
	if s.flushStop == nil && s.clock == nil { // a test with a clock of its own calls flushDue itself
		s.flushStop, s.flushDone = make(chan struct{}), make(chan struct{})
		go s.flushCounts(s.rateLimitedLogsLocked(), s.flushStop, s.flushDone)
	}
	return true
}

// stopFlushLocked ends flushCounts, if it runs (at Shutdown or Close, and
// when the last Serve returns), and returns what is closed once it has
// returned: the caller waits on it after unlocking mu.
func (s *Server) stopFlushLocked() <-chan struct{} {
	if s.flushStop == nil {
		return nil
	}
	close(s.flushStop)
	done := s.flushDone
	s.flushStop, s.flushDone = nil, nil
	return done
}

// waitFlush waits for a flushCounts that stopFlushLocked ended (nil: none).
func waitFlush(done <-chan struct{}) {
	if done != nil {
		<-done
	}
}

// flushCounts logs, every second until done, the counts of the rate-limited
// logs whose window has ended: a flood that stops brings no next event to
// log its count, and an operator should not wait for one (or the stop).
func (s *Server) flushCounts(logs []*rateLimitedLog, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			for _, r := range logs {
				r.flushDue()
			}
		}
	}
}

// rateLimitedLogsLocked are every rateLimitedLog of the server (nil
// before the first Serve), for Shutdown and Close to flush.
func (s *Server) rateLimitedLogsLocked() []*rateLimitedLog {
	return append([]*rateLimitedLog{s.refusals, s.bufferRefusals}, s.faults.logs()...)
}

func (s *Server) untrackListener(l net.Listener) {
	s.mu.Lock()
	var flushed <-chan struct{}
	if _, ok := s.listeners[l]; ok {
		l.Close()
		delete(s.listeners, l)
		if len(s.listeners) == 0 && !s.inShutdown { // Shutdown and Close end it themselves, after the drain
			flushed = s.stopFlushLocked()
		}
	}
	s.checkQuietLocked()
	s.mu.Unlock()
	waitFlush(flushed)
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inShutdown
}

func (s *Server) doneChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doneChanLocked()
}

func (s *Server) doneChanLocked() chan struct{} {
	if s.done == nil {
		s.done = make(chan struct{})
	}
	return s.done
}

// beginShutdownLocked stops accepting (EA-STOP-1) the first time it is
// called and returns the quiet channel.
func (s *Server) beginShutdownLocked() <-chan struct{} {
	if !s.inShutdown {
		s.inShutdown = true
		close(s.doneChanLocked())
		for l := range s.listeners {
			if err := l.Close(); err != nil && s.closeErr == nil {
				s.closeErr = err
			}
		}
		s.quiet = make(chan struct{})
		s.checkQuietLocked()
	}
	return s.quiet
}

// checkQuietLocked closes quiet once stopping and no Serve or connection
// goroutine is left.
func (s *Server) checkQuietLocked() {
	if !s.inShutdown || len(s.listeners) > 0 || len(s.conns) > 0 {
		return
	}
	select {
	case <-s.quiet:
	default:
		close(s.quiet)
	}
}

// Shutdown stops the server gracefully: it closes the listeners at once
// (EA-STOP-1), lets every request already received get its reply
// (EA-STOP-2), closes each connection as soon as nothing is owed on it
// (EA-STOP-3; an idle connection at once, a partly received request is
// dropped; one whose replies the kernel still holds, unread by a slow
// client, after FIN once they are taken, within WriteTimeout, or 30 s
// without one), and waits until every Serve and connection goroutine has
// returned. If ctx ends first, or ShutdownGrace passes, it closes what is
// left as Close does and returns a *ForcedCloseError that says how many
// connections that closed and wraps ctx.Err() (context.DeadlineExceeded for
// the grace). Otherwise it returns the error, if any, from closing the
// listeners. Shutdown may be called more than once and concurrently with
// Close.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ShutdownGrace > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.ShutdownGrace)
		defer cancel()
	}
	s.mu.Lock()
	quiet := s.beginShutdownLocked()
	for c := range s.conns {
		c.drain()
	}
	closeErr := s.closeErr
	loops := s.epoll
	s.mu.Unlock()
	defer s.endCounts() // counts go on being logged while connections drain

	if loops != nil {
		if err := loops.Shutdown(ctx); err != nil {
			return s.closeByForce(err)
		}
		s.held.Wait() // their replies are written: they are returning
	}
	select {
	case <-quiet:
		return closeErr
	case <-ctx.Done():
		return s.closeByForce(ctx.Err())
	}
}

// ForcedCloseError is Shutdown's error when its context ended before every
// connection had closed: Conns connections, still open then, were closed
// at once, with whatever they were owed. Err is the context's error.
type ForcedCloseError struct {
	Conns int
	Err   error
}

func (e *ForcedCloseError) Error() string {
	return fmt.Sprintf("closed %d connections by force: %v", e.Conns, e.Err)
}

func (e *ForcedCloseError) Unwrap() error { return e.Err }

// closeByForce closes what a Shutdown that ran out of time (err) left open,
// and says how much that was.
func (s *Server) closeByForce(err error) error {
	s.mu.Lock()
	n := len(s.conns)
	if s.epoll != nil {
		n += s.epoll.Conns()
	}
	s.mu.Unlock()
	s.Close()
	return &ForcedCloseError{Conns: n, Err: err}
}

// Close stops the server at once: it closes the listeners and every
// connection, replies owed or not, and returns when every Serve and
// connection goroutine has returned, with the error, if any, from closing
// the listeners.
func (s *Server) Close() error {
	s.mu.Lock()
	quiet := s.beginShutdownLocked()
	for c := range s.conns {
		c.nc.Close()
	}
	closeErr := s.closeErr
	loops := s.epoll
	s.mu.Unlock()
	if loops != nil {
		loops.Close()
		s.held.Wait()
	}
	<-quiet // closed connections unblock their goroutines at once
	s.endCounts()
	return closeErr
}

// endCounts stops flushCounts and logs the counts not logged yet: at the
// end of Shutdown or Close, as a flood that has stopped brings no next
// event to log them. Calling it again logs nothing more.
func (s *Server) endCounts() {
	s.mu.Lock()
	logs := s.rateLimitedLogsLocked()
	flushed := s.stopFlushLocked()
	s.mu.Unlock()
	waitFlush(flushed)
	for _, r := range logs {
		r.flush()
	}
}
