//go:build linux

package eventloop

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Engine serves connections on epoll loops. Create it with New; Serve hands
// it listeners; Shutdown or Close stop it.
type Engine struct {
	cfg   Config
	h     Handler
	log   *slog.Logger
	epoch time.Time // the loops' clock starts here (monotonic)
	loops []*loop

	conns atomic.Int64 // connections counted against MaxConns

	mu        sync.Mutex // guards state, listeners and serving.Add
	state     engineState
	listeners map[net.Listener]struct{}
	serving   sync.WaitGroup // Serve calls that may still hand over a socket
	quit      chan struct{}  // closed when the engine stops accepting

	loopsDone sync.WaitGroup
	done      chan struct{} // closed when every loop has returned
}

type engineState uint8

const (
	running engineState = iota
	draining
	closed
)

// New starts cfg.Loops loops (half of GOMAXPROCS by default). The loops run until
// Shutdown or Close.
func New(cfg Config) (*Engine, error) {
	if cfg.Handler == nil {
		return nil, errors.New("eventloop: Config.Handler is nil")
	}
	if cfg.Loops <= 0 {
		cfg.Loops = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = defaultReadBufferSize
	}
	if cfg.LingerTimeout <= 0 {
		cfg.LingerTimeout = defaultLingerTimeout
	}
	e := &Engine{
		cfg:       cfg,
		h:         cfg.Handler,
		log:       cfg.Logger,
		epoch:     time.Now(),
		listeners: make(map[net.Listener]struct{}),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	for range cfg.Loops {
		l, err := newLoop(e)
		if err != nil {
			for _, l := range e.loops {
				l.closeFDs()
			}
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	e.loopsDone.Add(len(e.loops))
	for _, l := range e.loops {
		go l.run()
	}
	go func() {
		e.loopsDone.Wait()
		close(e.done)
	}()
	return e, nil
}

// Conns reports how many connections are being served (refused ones not
// counted).
func (e *Engine) Conns() int { return int(e.conns.Load()) }

// stopAccepting closes the listeners, once, and reports whether the state
// changed to s.
func (e *Engine) stopAccepting(s engineState) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state >= s {
		return false
	}
	if e.state == running {
		close(e.quit)
		for ln := range e.listeners {
			ln.Close()
		}
	}
	e.state = s
	return true
}

// Shutdown stops accepting, then has every loop answer the whole requests
// its connections have already delivered, write the replies and close them
// (EA-STOP-1, EA-STOP-2, EA-STOP-3). It returns nil when every connection
// is closed and the loops have returned. If ctx ends first it returns ctx's
// error and the drain goes on: the caller counts what is left (Conns) and
// closes it with Close, as net/http's Shutdown leaves it to Close.
func (e *Engine) Shutdown(ctx context.Context) error {
	if e.stopAccepting(draining) {
		// No Serve call hands over a socket after this.
		e.serving.Wait()
		for _, l := range e.loops {
			l.command(cmdDrain)
		}
	}
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting and closes every connection at once; it returns when
// the loops have.
func (e *Engine) Close() error {
	e.stopAccepting(closed)
	for _, l := range e.loops {
		l.command(cmdClose)
	}
	<-e.done
	return nil
}

// A loop serves its connections from one goroutine.
type loop struct {
	e *Engine
	*poller
	wakefd int
	load   atomic.Int32 // connections, for adopt's choice

	// Owned by the loop's goroutine.
	conns   []*Conn // by descriptor
	live    int
	seq     int32
	buf     []byte   // every read lands here first
	spareIn [][]byte // empty arrays for partial requests (releaseIn)
	// spareLarge is one empty array for a large partial request, of at most
	// twice the read buffer (releaseIn), so that a pipelining client's
	// batches do not each allocate, and zero, the room for a read.
	spareLarge []byte
	out        []byte // the Handler appends replies here
	events     []unix.EpollEvent
	now        time.Duration // since e.epoch, read after each epoll_wait
	draining   bool
	// again: a descriptor handled in this round may still be ready without
	// the kernel signalling it anew, so epoll_wait must be called before
	// parking (see step).
	again   bool
	stop    bool          // the loop must return
	fail    error         // epoll_wait failed
	due     time.Duration // the deadline set on the poller, on the loop's clock; -1: none
	partial timerList     // a request partly received: ReadTimeout
	idle    timerList     // no request in progress: IdleTimeout
	stalled timerList     // a reply not taken: WriteTimeout
	linger  timerList     // closing: LingerTimeout
	timers  []*timerList
	// sole: the connection handled or installed last, which waitAlone
	// may wait on when it is the loop's only one.
	sole    *Conn
	noAlone bool // a descriptor could not be duplicated for waitAlone: do not try again

	mu      sync.Mutex // guards the fields below
	pending []*Conn    // adopted, not yet registered
	resumed []resumed  // replies from Pending.Resume
	cmd     command
	// woken: wakefd written since the loop last read it. Written under mu
	// with pending, resumed and cmd; round also reads it without.
	woken atomic.Bool
	// parked: the file waitAlone waits on, whose deadline a waker sets to
	// interrupt the wait, as the eventfd cannot.
	parked atomic.Pointer[os.File]
	exited bool
}

type command uint8

const (
	cmdNone command = iota
	cmdDrain
	cmdClose
)

const (
	wakeSeq          = -1
	wakeRuntimeEvery = 16 // rounds without parking; see step
	maxEvents        = 256
	maxKeptOut       = 1 << 20 // a larger output buffer is dropped after use
	smallIn          = 4 << 10 // a partial request fill moves, and an array releaseIn keeps, up to this size
	maxSparesIn      = 64      // arrays releaseIn keeps per loop
	drainReads       = 64      // reads per connection at Shutdown, in all
	readEvents       = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLPRI
	writeEvents      = unix.EPOLLOUT
)

func newLoop(e *Engine) (*loop, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		p.close()
		return nil, os.NewSyscallError("eventfd", err)
	}
	epfd := p.epfd
	l := &loop{
		e:      e,
		poller: p,
		wakefd: wakefd,
		buf:    make([]byte, e.cfg.ReadBufferSize),
		events: make([]unix.EpollEvent, maxEvents),
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd), Pad: wakeSeq}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		l.closeFDs()
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l.partial = timerList{timeout: e.cfg.ReadTimeout, onExpire: l.readTimedOut}
	l.idle = timerList{timeout: e.cfg.IdleTimeout, onExpire: l.idleTimedOut}
	l.stalled = timerList{timeout: e.cfg.WriteTimeout, onExpire: l.writeTimedOut}
	l.linger = timerList{timeout: e.cfg.LingerTimeout, onExpire: l.lingerTimedOut}
	l.timers = []*timerList{&l.partial, &l.idle, &l.stalled, &l.linger}
	return l, nil
}

func (l *loop) closeFDs() {
	unix.Close(l.wakefd)
	l.poller.close()
}

// enqueue passes c to the loop's goroutine; false if the loop has returned.
func (l *loop) enqueue(c *Conn) bool {
	l.mu.Lock()
	if l.exited {
		l.mu.Unlock()
		return false
	}
	l.pending = append(l.pending, c)
	wake := !l.woken.Swap(true)
	l.mu.Unlock()
	l.load.Add(1)
	if wake {
		l.signal()
	}
	return true
}

func (l *loop) command(cmd command) {
	l.mu.Lock()
	if l.exited || l.cmd >= cmd {
		l.mu.Unlock()
		return
	}
	l.cmd = cmd
	wake := !l.woken.Swap(true)
	l.mu.Unlock()
	if wake {
		l.signal()
	}
}

// signal wakes the loop: through its eventfd, and when the loop waits on a
// connection's own descriptor (waitAlone), through that file's deadline
// too. Called after setting woken, which waitAlone looks at after its last
// deadline change and before it parks: either it sees the flag, or this
// deadline is set after its own.
func (l *loop) signal() {
	l.wake()
	if f := l.parked.Load(); f != nil {
		f.SetReadDeadline(time.Unix(1, 0))
	}
}

func (l *loop) wake() {
	one := [8]byte{1}
	for range 8 { // EINTR; EAGAIN means the counter is already non-zero
		if _, err := writeRaw(l.wakefd, one[:]); err != unix.EINTR {
			return
		}
	}
}

func (l *loop) run() {
	defer l.e.loopsDone.Done()
	defer l.exit()
	if l.rc == nil {
		l.runBlocking()
		return
	}
	l.due = -1
	for {
		// RawConn.Read clears the descriptor's readiness in Go's poller,
		// then calls step, which looks for events before it parks. It
		// returns only when the loop must, or when a timer is due, or
		// (waitAlone) when the connection is no longer alone.
		var err error
		if c := l.alone(); c != nil && !l.woken.Load() {
			err = l.waitAlone(c)
		} else {
			err = l.rc.Read(l.stepShared)
		}
		switch {
		case l.fail != nil:
			err = l.fail
		case err == nil && !l.stop:
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			l.now = time.Since(l.e.epoch)
			l.expire()
			l.due = -1 // expired: set again, or cleared, below
			if l.draining && l.live == 0 {
				return
			}
			l.setTimer(true)
			continue
		}
		if l.stop {
			return
		}
		l.e.log.Error("waiting for events failed; closing this loop's connections", "err", err)
		l.closeAll(err)
		return
	}
}

// alone returns the loop's only connection if the loop can wait for its
// next request alone: it is open and waits for one, and no drain is on.
func (l *loop) alone() *Conn {
	c := l.sole
	if l.live != 1 || c == nil || c.state != stateOpen || c.held || len(c.out) > 0 || l.draining || l.noAlone {
		return nil
	}
	return c
}

// waitAlone serves c, the loop's only connection, until it is no longer
// alone, parked on a duplicate of c's descriptor registered with Go's
// poller rather than on the epoll descriptor nested in Go's. With one
// client every request wakes the loop, and this wake-up is shorter: it
// comes straight from the socket, and no epoll_wait is needed after it, as
// c is all there is to read (at one connection, in interleaved pairs:
// 1.02-1.13x against 0.99-1.00x the comparator's throughput, 0.73-0.81x
// against 0.83-0.84x its CPU per request). The file exists while c is
// alone: duplicating a descriptor costs three system calls, closing it two.
//
// c is disabled in the epoll set meanwhile (epoll_ctl with no events) and
// read after every wake-up until a read finds nothing: the wake-up is
// edge-triggered, and a FIN that came with the last bytes read brings no
// new one. Reading c only when epoll_wait(0) reports it, as step does, lost
// requests: that epoll_wait can come back empty while Go's poller is
// scanning the nested epoll set, which wakes a loop parked on the epoll
// descriptor again, but not one parked here. What the eventfd would signal
// ends the wait through the file's deadline (see signal); timers are set
// on the file meanwhile.
func (l *loop) waitAlone(c *Conn) error {
	f, rc := dupFile(c.fd)
	if f == nil {
		l.noAlone = true
		return nil
	}
	if l.interest(c, 0); c.state == stateClosed {
		f.Close()
		return nil
	}
	l.waitFor(f)
	l.parked.Store(f)
	err := rc.Read(func(uintptr) bool {
		for reads := 1; ; reads++ {
			if reads%wakeRuntimeEvery == 0 {
				wakeRuntime() // a client that never pauses: see step
			}
			l.now = time.Since(l.e.epoch)
			l.again = false
			l.onReadable(c, unix.EPOLLIN|unix.EPOLLRDHUP) // read again unless it finds nothing
			l.expire()
			l.setTimer(false)
			if l.alone() != c || l.woken.Load() {
				return true
			}
			if !l.again {
				return false
			}
		}
	})
	l.parked.Store(nil)
	l.waitFor(l.file)
	if c.state != stateClosed && !c.held && len(c.out) == 0 {
		l.interest(c, readEvents) // reports input already there, as a read would
	}
	// Closed only now, as Close waits for the Read: the duplicate also
	// keeps the socket open, so a connection closed above gets its FIN
	// here.
	f.Close()
	return err
}

// waitFor makes f the file the loop waits on (the epoll descriptor's, or
// waitAlone's) and carries the loop's timer deadline over to it.
func (l *loop) waitFor(f *os.File) {
	l.waitOn, l.deadline = f, false
	switch {
	case l.due >= 0:
		l.setDeadline(l.e.epoch.Add(l.due))
	case f == l.file: // it may keep a deadline set before
		l.setDeadline(time.Time{})
	}
}

// stepShared is step for the wait on the epoll descriptor, which returns
// to run when a connection is left alone, for waitAlone. Not while woken is
// set: the eventfd is read there first.
func (l *loop) stepShared(uintptr) bool {
	return l.step(0) || l.alone() != nil && !l.woken.Load()
}

// step is the poller's look function: it handles rounds of events while
// they keep coming, and returns false to park the goroutine in Go's poller
// until the epoll descriptor is readable again, or true when the loop must
// return.
//
// Parking needs no empty epoll_wait first when the last one returned less
// than a full batch and left nothing ready that the kernel will not signal
// again (again is false): every later readiness of a descriptor comes with
// a wake-up callback, and Linux's callback (ep_poll_callback) wakes the
// epoll file's pollers, Go's among them, each time, even when the
// descriptor is still on the ready list. Go's poller keeps that readiness
// until the goroutine waits (RawRead resets it only on entry), so an event
// that arrived during the round makes the wait return at once.
//
// A loop under sustained load never parks, so it never enters the
// scheduler, and its raw system calls do not tell the runtime that it is
// busy. If the runtime's monitor thread (sysmon) went into its deep sleep
// while every P was idle, and nothing allocates enough for a collection,
// nothing polls Go's network poller, and the goroutine accepting
// connections is not woken until the loop parks: a new client waited 1.5 s,
// until the end of the load, behind 10,000 busy ones. So every
// wakeRuntimeEvery rounds without parking, the loop makes a system call
// through the runtime's entry (wakeRuntime), which wakes sysmon; awake, it
// polls the network every 10 ms and preempts the loop for the goroutines it
// wakes (runtime.Gosched would not: with one P it returns to the loop at
// once).
func (l *loop) step(uintptr) bool {
	for rounds := 1; ; rounds++ {
		if rounds%wakeRuntimeEvery == 0 {
			wakeRuntime()
		}
		n, err := epollWaitNow(l.epfd, l.events)
		if err != nil {
			l.fail = err
			return true
		}
		if n == 0 {
			return false
		}
		if l.round(n) {
			l.stop = true
			return true
		}
		l.setTimer(false)
		if !l.again && n < len(l.events) {
			return false
		}
	}
}

// round handles n events; it reports whether the loop must return.
func (l *loop) round(n int) bool {
	l.now = time.Since(l.e.epoch)
	l.again = false
	woken := false
	for i := range n {
		ev := &l.events[i]
		if ev.Pad == wakeSeq {
			woken = true
			continue
		}
		fd := int(ev.Fd)
		if fd >= len(l.conns) {
			continue
		}
		if c := l.conns[fd]; c != nil && c.seq == ev.Pad {
			l.onEvent(c, ev.Events)
		}
	}
	// New connections are installed after the batch, so that no event
	// of a descriptor closed above can reach a connection reusing it. The
	// flag is looked at too: under load the eventfd's readiness waits its
	// turn behind every connection ready before it (a full turn of 10,000
	// busy ones took tens of milliseconds).
	if (woken || l.woken.Load()) && l.onWake() {
		return true
	}
	l.expire()
	return l.draining && l.live == 0
}

// setTimer sets the poller's deadline to the earliest timer's, if that is
// earlier than the one set; a deadline later than needed is left, as one
// that passes with nothing due costs one wake-up. With reset, a deadline
// is cleared when no timer is armed.
func (l *loop) setTimer(reset bool) {
	due := l.nextDue()
	switch {
	case due >= 0 && (l.due < 0 || due < l.due):
		l.due = due
		l.setDeadline(l.e.epoch.Add(due))
	case due < 0 && reset && l.deadline:
		l.setDeadline(time.Time{})
	}
}

// runBlocking is run for a loop whose epoll descriptor could not be
// registered with Go's poller: it blocks in epoll_wait.
func (l *loop) runBlocking() {
	var timeout time.Duration = -1
	for {
		n, err := l.wait(l.events, timeout)
		if err != nil {
			l.e.log.Error("waiting for events failed; closing this loop's connections", "err", err)
			l.closeAll(err)
			return
		}
		if l.round(max(n, 0)) {
			return
		}
		timeout = l.nextTimeout()
		if n > 0 {
			// Look again without blocking first, as under load the next
			// events are already there.
			timeout = 0
		}
	}
}

func (l *loop) exit() {
	l.mu.Lock()
	l.exited = true
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, c := range pending {
		unix.Close(c.fd)
		if c.counted {
			l.e.conns.Add(-1)
		}
	}
	l.closeFDs()
}

// onWake installs new connections and carries out a command; it reports
// whether the loop must return.
func (l *loop) onWake() bool {
	var b [8]byte
	if n, err := read(l.wakefd, b[:]); n != len(b) && err != unix.EAGAIN {
		l.again = true
	}
	l.mu.Lock()
	pending, done := l.pending, l.resumed
	l.pending, l.resumed = nil, nil
	cmd := l.cmd
	l.woken.Store(false)
	l.mu.Unlock()
	for _, c := range pending {
		l.install(c)
	}
	for _, r := range done {
		l.resume(r)
	}
	switch cmd {
	case cmdClose:
		l.closeAll(net.ErrClosed)
		return true
	case cmdDrain:
		if !l.draining {
			l.draining = true
			for _, c := range l.conns {
				if c != nil {
					l.startDrain(c)
				}
			}
		}
	}
	return false
}

func (l *loop) install(c *Conn) {
	c.loop = l

	l.seq++
	if l.seq == wakeSeq {
		l.seq = 0
	}
	c.seq = l.seq
	events := uint32(readEvents)
	if len(c.out) > 0 {
		events = writeEvents
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(c.fd), Pad: c.seq}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		l.e.log.Error("cannot register connection", "err", os.NewSyscallError("epoll_ctl", err))
		unix.Close(c.fd)
		l.load.Add(-1)
		if c.counted {
			l.e.conns.Add(-1)
		}
		return
	}
	for c.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*Conn, max(c.fd+1-len(l.conns), len(l.conns)/2, 64))...)
	}
	l.conns[c.fd] = c
	l.live++
	l.sole = c
	if c.counted {
		l.e.h.OnOpen(c)
	}
	switch {
	case c.state == stateClosing: // refused: write the reply, then close
		l.flush(c)
	case l.draining:
		l.startDrain(c)
	default:
		l.retime(c, false)
		// A client usually sends its first request as soon as it is
		// connected, so it is often here already: read it now rather than
		// after the readiness of every connection queued before this one.
		l.onReadable(c, unix.EPOLLIN)
	}
}

// onEvent handles one event, and sets l.again unless c is left either
// closed or not ready until its next wake-up callback: a write that was
// partial is followed by one when the socket is writable. A full one
// re-registers the socket for input, which epoll_ctl(MOD) signals only when
// the socket is not on epoll's ready list already, so flush sets l.again.
// Only TCP sockets are trusted this far.
func (l *loop) onEvent(c *Conn, events uint32) {
	l.sole = c
	if len(c.out) > 0 {
		// Only EPOLLOUT is registered: writable, or an error or hang-up
		// that the write reports.
		if events != unix.EPOLLOUT || !c.tcp {
			l.again = true
		}
		l.flush(c)
		return
	}
	l.onReadable(c, events)
}

// onReadable reads c once. A read that is short leaves a TCP socket
// drained (it stops early only at urgent data, reported as EPOLLPRI) unless
// the peer's FIN was queued behind the bytes, which the event then reports
// as EPOLLRDHUP; a FIN or bytes that arrive after the epoll_wait come with
// a callback of their own.
func (l *loop) onReadable(c *Conn, events uint32) {
	in, inConn, full, err := l.fill(c)
	switch {
	case err == unix.EAGAIN:
		return
	case err == ErrBuffersFull:
		l.abandon(c, ErrBuffersFull, l.e.h.OnBuffersFull(c, l.out[:0]))
		return
	case err == unix.EINTR:
		l.again = true
		return
	case err == io.EOF:
		l.onEOF(c)
		return
	case err != nil:
		l.close(c, os.NewSyscallError("read", err))
		return
	}
	if full || events != unix.EPOLLIN || !c.tcp {
		l.again = true
	}
	if c.state == stateLingering {
		return // discarded
	}
	if c.held { // an error or hang-up event: keep the bytes for later
		if !inConn {
			c.in = append(c.in[:0], in...)
			l.account(c)
		}
		return
	}
	l.process(c, in, inConn)
}

// fill reads c once and returns every byte buffered for it, which lies in
// c.in when inConn, else in the read buffer; full says the read filled the
// space it was given (the socket may hold more); a read of 0 bytes is
// io.EOF. A small partial request is moved to the front of the read buffer
// and the read lands behind it: in a stream of pipelined requests most
// reads end inside one, and appending each read to c.in instead would grow
// c.in, an allocation, every time. A large one stays in c.in, and the read
// lands in c.in's free space: moving a large request to and fro at every
// read would cost copies in proportion to its size for one that arrives in
// small pieces. When less than a quarter of a full read is free, c.in
// first grows to hold the request twice, or the request and a full read if
// that is more, within Config.Budget, else by what the budget has left;
// never reading more than c.in holds keeps the requests queued behind a
// partial one from getting it refused. When c.in cannot grow at all, fill
// returns ErrBuffersFull: c.in holds one partial request (whole ones are
// answered before a connection is read again), which is refused.
func (l *loop) fill(c *Conn) (in []byte, inConn, full bool, err error) {
	small := !l.large(len(c.in))
	space, k := l.buf, 0
	if small {
		k = copy(l.buf, c.in)
	} else {
		// Only when little is left, so that a buffer that has settled
		// stays as it is.
		want := max(len(c.in)+len(l.buf), 2*len(c.in))
		if cap(c.in)-len(c.in) < len(l.buf)/4 && !l.growIn(c, want, len(c.in)+1, true) {
			return nil, false, false, ErrBuffersFull
		}
		space = c.in[len(c.in):cap(c.in)]
	}
	n, err := read(c.fd, space[k:])
	switch {
	case err != nil:
		return nil, false, false, err
	case n == 0:
		return nil, false, false, io.EOF
	case small:
		return l.buf[:k+n], false, n == len(l.buf)-k, nil
	}
	c.in = c.in[:len(c.in)+n]
	return c.in, true, n == len(space), nil
}

// large reports whether a partial request of n bytes stays in c.in between
// reads (see fill).
func (l *loop) large(n int) bool { return n > min(smallIn, len(l.buf)/2) }

// chargeFor is what a buffer of capacity n counts against Config.Budget:
// nothing up to smallIn, which any connection may hold, else all of it.
func chargeFor(n int) int {
	if n <= smallIn {
		return 0
	}
	return n
}

// growIn makes c.in's capacity want bytes, keeping what it holds. When the
// budget has no room for that, it takes a quarter more than now, then all
// that is left, as long as that makes least: near the limit a large request
// still grows in a few steps (each a copy of all of it), not one per read.
// With check, it changes nothing and reports false when none fits;
// without, want is taken regardless. The capacity is set exactly (no
// append), so that the charge is what is held.
func (l *loop) growIn(c *Conn, want, least int, check bool) bool {
	if want <= cap(c.in) {
		return true
	}
	size := want
	if b := l.e.cfg.Budget; b != nil {
		more := func(size int) int { return chargeFor(size) - chargeFor(cap(c.in)) }
		if !check {
			b.Add(more(size))
		} else {
			fits := false
			for _, s := range [...]int{want, max(least, cap(c.in)+cap(c.in)/4), max(least, cap(c.in)+b.Left())} {
				if fits = b.Grow(more(s)); fits {
					size = s
					break
				}
			}
			if !fits {
				return false
			}
		}
		c.charged += more(size)
	}
	var in []byte
	if k := cap(l.spareLarge); k >= size && k < 2*size {
		// The loop's spare, if the budget has room for what it has more.
		if b := l.e.cfg.Budget; b == nil || !check || b.Left() >= chargeFor(k)-chargeFor(size) {
			in, l.spareLarge = l.spareLarge[:len(c.in)], nil
		}
	}
	if in == nil {
		in = make([]byte, len(c.in), size)
	}
	copy(in, c.in)
	c.in = in
	l.account(c) // the spare's capacity, if it was taken
	return true
}

// account brings c's charge against Config.Budget in line with its
// buffers, taking or giving back the difference without a check.
func (l *loop) account(c *Conn) {
	if l.e.cfg.Budget == nil {
		return
	}
	held := chargeFor(cap(c.in)) + chargeFor(cap(c.out))
	if d := held - c.charged; d != 0 {
		l.e.cfg.Budget.Add(d)
		c.charged = held
	}
}

// onEOF: the client half-closed. The replies already due are written, then
// the connection is closed (EA-CONN-5); a partial request is dropped.
func (l *loop) onEOF(c *Conn) {
	var err error
	if len(c.in) > 0 {
		err = io.ErrUnexpectedEOF
	}
	c.in = nil
	l.account(c)
	if len(c.out) > 0 && c.state != stateLingering {
		c.state = stateClosing
		return
	}
	l.close(c, err)
}

// process runs the Handler over in (which is c.in when inConn, else the
// read buffer), writes the replies and keeps the unconsumed rest in c.in.
func (l *loop) process(c *Conn, in []byte, inConn bool) {
	progressed, needMore := false, false
	for len(in) > 0 && !c.held {
		consumed, out, closeAfter := l.e.h.OnData(c, in, l.out[:0])
		if cap(out) <= maxKeptOut {
			l.out = out[:0]
		} else {
			l.out = nil
		}
		in = in[consumed:]
		if closeAfter != nil {
			c.why = cmp.Or(c.why, closeAfter)
			c.in = nil
			l.send(c, out)
			if c.state == stateOpen {
				l.beginClose(c)
			}
			return
		}
		if consumed > 0 {
			progressed = true
		}
		if len(out) > 0 {
			l.send(c, out)
		}
		if consumed == 0 {
			needMore = true
			break
		}
		if c.state != stateOpen || len(c.out) > 0 {
			break
		}
	}
	if c.state == stateClosed {
		return
	}
	if c.held && len(c.out) == 0 {
		l.interest(c, 0) // neither read nor write until Resume
		if c.state == stateClosed {
			return
		}
	}
	switch {
	case len(in) == 0:
		l.releaseIn(c)
	case cap(c.in) > 2*(len(in)+len(l.buf)):
		// Too large to keep for the rest (a large request's buffer): room
		// for it and a full read (see fill).
		c.in = append(make([]byte, 0, len(in)+len(l.buf)), in...)
	case inConn:
		c.in = c.in[:copy(c.in, in)]
	default: // in lies in the read buffer
		if c.in == nil && len(l.spareIn) > 0 {
			c.in = l.spareIn[len(l.spareIn)-1]
			l.spareIn = l.spareIn[:len(l.spareIn)-1]
		}
		// Only a partial request can be refused: whole ones are kept,
		// unchecked, while the socket refuses their replies. A large one
		// gets room for the next read at once (see fill).
		want := len(in)
		if needMore && l.large(len(in)) {
			want += len(l.buf)
		}
		if c.in = c.in[:0]; !l.growIn(c, want, len(in), needMore) {
			l.abandon(c, ErrBuffersFull, l.e.h.OnBuffersFull(c, l.out[:0]))
			return
		}
		c.in = append(c.in, in...)
	}
	l.account(c)
	if c.state == stateOpen {
		l.retime(c, progressed)
	}
}

// releaseIn empties c.in. A small array, or one large one, is kept for the
// next partial request on this loop: a pipelining client leaves one at the
// end of most reads and none at the end of its batch, and an idle
// connection must not keep one (buffers only while a request is in
// flight).
func (l *loop) releaseIn(c *Conn) {
	if k := cap(c.in); k > 0 && k <= smallIn && len(l.spareIn) < maxSparesIn {
		l.spareIn = append(l.spareIn, c.in[:0])
	} else if k > smallIn && k <= 2*len(l.buf) && cap(l.spareLarge) < k {
		l.spareLarge = c.in[:0]
	}
	c.in = nil
}

// retime puts c in the timer list of what it waits for.
func (l *loop) retime(c *Conn, progressed bool) {
	switch {
	case c.state != stateOpen:
	case c.held:
		untimed(c) // a request in progress
	case len(c.out) > 0:
		if c.list != &l.stalled {
			l.arm(&l.stalled, c)
		}
	case len(c.in) > 0:
		if c.list != &l.partial || progressed {
			l.arm(&l.partial, c)
		}
	default:
		l.arm(&l.idle, c)
	}
}

func (l *loop) arm(t *timerList, c *Conn) {
	if t.timeout > 0 {
		t.push(c, l.now)
	} else {
		untimed(c)
	}
}

// send writes out, one write(2); what the socket refuses waits in c.out.
func (l *loop) send(c *Conn, out []byte) {
	if len(out) == 0 {
		return
	}
	if len(c.out) > 0 {
		c.out = append(c.out, out...)
		l.account(c)
		return
	}
	n, err := write(c.fd, out)
	if err != nil {
		l.close(c, err)
		return
	}
	if n < len(out) {
		c.out = append([]byte(nil), out[n:]...)
		l.account(c)
		l.interest(c, writeEvents)
		l.retime(c, false)
	}
}

// flush writes c.out after EPOLLOUT.
func (l *loop) flush(c *Conn) {
	n, err := write(c.fd, c.out)
	if err != nil {
		l.close(c, err)
		return
	}
	c.out = c.out[n:]
	if len(c.out) > 0 {
		return
	}
	c.out = nil
	l.account(c)
	switch {
	case c.state == stateClosing:
		l.beginClose(c)
	case c.held:
		l.interest(c, 0)
	case l.draining: // still open: requests may be left in c.in, and in the socket
		// Back to EPOLLIN: a lingering close waits for the client's FIN,
		// and EPOLLOUT, level-triggered, would report ready at every round.
		if l.interest(c, readEvents); c.state != stateOpen {
			return
		}
		if len(c.in) > 0 {
			l.process(c, c.in, true)
		}
		l.drain(c)
	default:
		if l.interest(c, readEvents); c.state != stateOpen {
			return
		}
		// The socket may hold input: epoll_ctl signals that only if epoll
		// had not listed it as ready already, and it has, level-triggered,
		// since the round that reported it writable. Look again before
		// parking.
		l.again = true
		if len(c.in) > 0 {
			l.process(c, c.in, true) // whole requests may be left
		} else {
			l.retime(c, false)
		}
	}
}

func write(fd int, b []byte) (int, error) {
	for range 8 {
		n, err := writeRaw(fd, b)
		switch err {
		case nil:
			return n, nil
		case unix.EAGAIN:
			return 0, nil
		case unix.EINTR:
			continue
		default:
			return 0, os.NewSyscallError("write", err)
		}
	}
	return 0, nil
}

func (l *loop) interest(c *Conn, events uint32) {
	ev := unix.EpollEvent{Events: events, Fd: int32(c.fd), Pad: c.seq}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		l.close(c, os.NewSyscallError("epoll_ctl", err))
	}
}

// beginClose ends a connection from the server's side: once the replies are
// written it sends FIN and discards input until the client's FIN or
// LingerTimeout, so that unread input does not turn the close into a reset
// that could destroy the last reply.
func (l *loop) beginClose(c *Conn) {
	c.in = nil
	l.account(c)
	if len(c.out) > 0 {
		c.state = stateClosing
		return
	}
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		l.close(c, nil)
		return
	}
	if c.state == stateClosing {
		l.interest(c, readEvents)
		if c.state == stateClosed {
			return
		}
		l.again = true // input already there is not signalled (see flush)
	}
	c.state = stateLingering
	c.lingerFrom = l.now
	l.linger.push(c, l.now)
}

func (l *loop) readTimedOut(c *Conn) {
	l.abandon(c, ErrReadTimeout, l.e.h.OnReadTimeout(c, l.out[:0]))
}

func (l *loop) idleTimedOut(c *Conn) {
	c.why = cmp.Or(c.why, ErrIdleTimeout)
	l.beginClose(c)
}

// abandon drops c's partial request, writes out (its Error reply) and
// closes c, for reason why.
func (l *loop) abandon(c *Conn, why error, out []byte) {
	c.why = cmp.Or(c.why, why)
	c.in = nil
	l.account(c)
	l.send(c, out)
	if c.state == stateOpen {
		l.beginClose(c)
	}
}

func (l *loop) writeTimedOut(c *Conn) { l.close(c, ErrWriteTimeout) }

// lingerTimedOut closes c, unless the kernel still holds replies for a
// client slow to read: after the close its next bytes would get a reset,
// which destroys them. It lingers on for them, up to WriteTimeout from the
// FIN, MaxUnsentLinger without one (Shutdown's deadline ends it sooner).
func (l *loop) lingerTimedOut(c *Conn) {
	if Unsent(c.fd) > 0 && l.now-c.lingerFrom < cmp.Or(l.e.cfg.WriteTimeout, MaxUnsentLinger) {
		l.linger.push(c, l.now)
		return
	}
	l.close(c, nil)
}

// drain answers what c has already delivered and closes it (Shutdown):
// it reads until the socket is empty, within c.drainLeft reads in all, and
// answers; flush and resume come back here once replies are written. The
// close is the lingering one (beginClose): closing a socket with input
// unread would reset it, and the reset destroys the replies the client has
// not read yet.
func (l *loop) drain(c *Conn) {
	idle := !c.drainBusy && c.drainLeft == drainReads
	switch {
	case c.state != stateOpen || len(c.out) > 0 || c.held:
		return // lingering already, closed once written (flush), or resumed (resume)
	}
	for c.drainLeft > 0 {
		c.drainLeft--
		in, inConn, _, err := l.fill(c)
		switch {
		case err == unix.EINTR:
			continue
		case err == io.EOF:
			l.onEOF(c)
			return
		case err != nil: // EAGAIN: all delivered is read; or the socket failed
		default:
			l.process(c, in, inConn)
			if c.state != stateOpen || len(c.out) > 0 || c.held {
				return
			}
			continue
		}
		break
	}
	c.why = cmp.Or(c.why, ErrShuttingDown)
	if idle && c.drainLeft == drainReads-1 && Unsent(c.fd) == 0 {
		// Idle: nothing was pending, its one read found nothing, and the
		// kernel holds no reply the client has yet to take. No reply is in
		// flight for a reset to destroy: close at once, so that idle
		// clients do not hold up the stop for the linger.
		l.close(c, nil)
		return
	}
	// Input may be left (the reads ran out), which epoll, having listed the
	// socket as ready already, will not signal again: look again before
	// parking, so that the linger reads it instead of a reset at its end.
	l.again = true
	l.beginClose(c)
}

// startDrain begins c's drain at Shutdown (drain), noting whether
// anything was pending on it.
func (l *loop) startDrain(c *Conn) {
	c.drainLeft = drainReads
	c.drainBusy = len(c.in) > 0 || len(c.out) > 0 || c.held || c.state != stateOpen
	l.drain(c)
}

// RemoteAddr returns the peer's address as accept reported it, or else
// getpeername(2)'s, or nil.
func (c *Conn) RemoteAddr() net.Addr {
	if c.peer != nil {
		return c.peer
	}
	sa, err := unix.Getpeername(c.fd)
	if err != nil {
		return nil
	}
	return netAddr(sa)
}

// netAddr converts a socket address to a net.Addr, or nil.
func netAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: "unix"}
	}
	return nil
}

// Hold tells the engine that the reply to the request OnData is handling
// will come later, from another goroutine, through the returned Pending's
// Resume: OnData returns, counting that request as consumed and with the
// replies to the requests before it in out; the engine writes them and then
// neither reads from c nor calls OnData for it until Resume. This is for
// handlers that may block; a loop must never wait. Shutdown waits for held
// requests; Close drops their replies.
func (c *Conn) Hold() *Pending {
	c.held = true
	return &Pending{c: c, l: c.loop}
}

// Pending is a reply that a Handler prepares outside the loop.
type Pending struct {
	c *Conn
	l *loop
}

// errClosedAfterHeld: Resume was asked to close after its reply.
var errClosedAfterHeld = errors.New("closed after the held reply")

type resumed struct {
	c          *Conn
	reply      []byte
	closeAfter bool
}

// Resume hands the reply to the loop, which writes it and serves c again
// (or closes it after the reply, with closeAfter). Call it once, from any
// goroutine; reply is the caller's no more.
func (p *Pending) Resume(reply []byte, closeAfter bool) {
	l := p.l
	l.mu.Lock()
	if l.exited {
		l.mu.Unlock()
		return
	}
	l.resumed = append(l.resumed, resumed{c: p.c, reply: reply, closeAfter: closeAfter})
	wake := !l.woken.Swap(true)
	l.mu.Unlock()
	if wake {
		l.signal()
	}
}

func (l *loop) resume(r resumed) {
	c := r.c
	if c.state == stateClosed || !c.held {
		return // closed meanwhile (Close): the reply is dropped
	}
	c.held = false
	l.send(c, r.reply)
	switch {
	case c.state != stateOpen:
		return
	case r.closeAfter:
		c.why = cmp.Or(c.why, errClosedAfterHeld)
		l.beginClose(c)
		return
	case len(c.out) > 0:
		return // send asked for EPOLLOUT; flush carries on
	}
	l.interest(c, readEvents)
	if c.state != stateOpen {
		return
	}
	l.again = true // as in flush: the socket may hold input epoll_ctl does not signal
	if len(c.in) > 0 {
		l.process(c, c.in, true)
	}
	switch {
	case c.state != stateOpen:
	case l.draining:
		l.drain(c)
	default:
		l.retime(c, true)
	}
}

// close releases c at once.
func (l *loop) close(c *Conn, err error) {
	if c.state == stateClosed {
		return
	}
	// The server's reason, if it began the close, comes first: a reset
	// from a client that then left is no news.
	err = cmp.Or(c.why, err)
	untimed(c)
	if c.counted {
		// Before the close: once closed, the descriptor's number may be
		// reused at once by the accepting goroutine, and RemoteAddr would
		// name another peer.
		l.e.h.OnClose(c, err)
	}
	unix.Close(c.fd)
	if c.fd < len(l.conns) && l.conns[c.fd] == c {
		l.conns[c.fd] = nil
	}
	c.state = stateClosed
	c.in, c.out = nil, nil
	l.account(c)
	l.live--
	l.load.Add(-1)
	if c.counted {
		l.e.conns.Add(-1)
	}
}

func (l *loop) closeAll(err error) {
	for _, c := range l.conns {
		if c != nil {
			l.close(c, err)
		}
	}
}

// expire runs the handlers of every deadline passed.
func (l *loop) expire() {
	for _, t := range l.timers {
		for t.head != nil && t.head.since+t.timeout <= l.now {
			c := t.head
			t.remove(c)
			t.onExpire(c)
		}
	}
}

// nextDue is the earliest timer's deadline on the loop's clock, or -1.
func (l *loop) nextDue() time.Duration {
	var next time.Duration = -1
	for _, t := range l.timers {
		if t.head == nil {
			continue
		}
		if d := t.head.since + t.timeout; next < 0 || d < next {
			next = d
		}
	}
	return next
}

// nextTimeout is how long the loop may wait: until the earliest deadline,
// or -1 for no limit.
func (l *loop) nextTimeout() time.Duration {
	var next time.Duration = -1
	now := time.Since(l.e.epoch)
	for _, t := range l.timers {
		if t.head == nil {
			continue
		}
		d := max(t.head.since+t.timeout-now, time.Millisecond) // 0 would mean "do not wait"
		if next < 0 || d < next {
			next = d
		}
	}
	return next
}
