package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"echoadd/protocol"
	"echoadd/suite/harness"
)

// Hard caps: whatever the caller asks, a run ends.
const (
	MaxConns    = 10000
	MaxDuration = 10 * time.Minute // also the bound of a run limited by Requests only
	MaxRequests = 100_000_000      // per connection
	MaxPipeline = 1024
	MaxPayload  = protocol.DefaultMaxMessageSize - 64 // fits a default server's limit
	MaxWarmup   = time.Minute
)

// DefaultTimeout bounds each round trip when Load.Timeout is 0.
const DefaultTimeout = 5 * time.Second

// Mix is the proportion of echo to add requests: request i of a connection
// is an echo when i mod (Echo+Add) < Echo.
type Mix struct {
	Echo, Add int
}

// ParseMix parses "E:A", e.g. "1:0" (echo only) or "3:1".
func ParseMix(s string) (Mix, error) {
	e, a, ok := strings.Cut(s, ":")
	if !ok {
		return Mix{}, fmt.Errorf("%q is not ECHO:ADD (e.g. 1:0, 3:1)", s)
	}
	ev, err1 := strconv.Atoi(e)
	av, err2 := strconv.Atoi(a)
	if err1 != nil || err2 != nil || ev < 0 || av < 0 || ev+av == 0 || ev > 1000 || av > 1000 {
		return Mix{}, fmt.Errorf("%q is not ECHO:ADD with whole numbers 0..1000, not both 0", s)
	}
	return Mix{Echo: ev, Add: av}, nil
}

func (m Mix) String() string { return fmt.Sprintf("%d:%d", m.Echo, m.Add) }

// Load describes a closed-loop load: each of Conns connections sends a
// batch of Pipeline requests, reads and checks every reply, and sends the
// next batch, until Duration has passed or it has sent Requests.
type Load struct {
	Framing  protocol.Framing
	Conns    int
	Duration time.Duration // 0: bounded by Requests (and MaxDuration)
	Requests int           // per connection; 0: bounded by Duration
	Warmup   time.Duration // load before measuring, on the same connections
	Mix      Mix
	Payload  int           // echo content size in bytes
	Pipeline int           // requests per batch; 0 or 1: none (raw allows no other)
	Timeout  time.Duration // bound of each batch's round trip; 0: DefaultTimeout
	Driver   Driver        // how connections are driven; "": DefaultDriver

	// Progress, when set, gets a one-line status every half second, each
	// line starting with a carriage return (for a terminal).
	Progress io.Writer
}

// Driver is how the load generator drives its connections.
type Driver string

const (
	// DriverEpoll serves every connection from one goroutine with one
	// epoll instance (Linux): the cheapest client, so that most of the
	// machine's CPU is left to the server.
	DriverEpoll Driver = "epoll"
	// DriverGoroutine gives each connection a goroutine with blocking
	// reads and writes, the way most Go clients are written.
	DriverGoroutine Driver = "goroutine"
)

// DefaultDriver is epoll where the system has it.
func DefaultDriver() Driver {
	if epollSupported {
		return DriverEpoll
	}
	return DriverGoroutine
}

// ParseDriver parses "epoll" or "goroutine".
func ParseDriver(s string) (Driver, error) {
	d := Driver(s)
	switch {
	case d.available():
		return d, nil
	case d == DriverEpoll:
		return "", errors.New("the epoll driver needs Linux; use goroutine")
	}
	return "", fmt.Errorf("%q is not a driver: use epoll or goroutine", s)
}

func (d Driver) available() bool {
	return d == DriverGoroutine || (d == DriverEpoll && epollSupported)
}

// Validate checks the load's own bounds.
func (l Load) Validate() error {
	switch {
	case l.Conns < 1 || l.Conns > MaxConns:
		return fmt.Errorf("connections must be 1..%d, not %d", MaxConns, l.Conns)
	case l.Duration <= 0 && l.Requests <= 0:
		return errors.New("a duration or a request count is needed")
	case l.Duration < 0 || l.Duration > MaxDuration:
		return fmt.Errorf("duration must be at most %v", MaxDuration)
	case l.Requests < 0 || l.Requests > MaxRequests:
		return fmt.Errorf("requests per connection must be at most %d", MaxRequests)
	case l.Warmup < 0 || l.Warmup > MaxWarmup:
		return fmt.Errorf("warm-up must be 0..%v", MaxWarmup)
	case l.Mix.Echo < 0 || l.Mix.Add < 0 || l.Mix.Echo+l.Mix.Add == 0:
		return errors.New("the mix needs echo or add requests")
	case l.Payload < 0 || l.Payload > MaxPayload:
		return fmt.Errorf("payload must be 0..%d bytes", MaxPayload)
	case l.Pipeline < 0 || l.Pipeline > MaxPipeline:
		return fmt.Errorf("pipeline depth must be 1..%d", MaxPipeline)
	case l.Driver != "" && !l.Driver.available():
		return fmt.Errorf("driver %q is not available here: use epoll (Linux) or goroutine", l.Driver)
	case l.Pipeline > 1 && l.Framing == protocol.Raw:
		return errors.New("pipelining needs a framed mode (len32 or varint): raw has no pipelining (EA-CONN-4)")
	}
	return nil
}

// Target is a server to load: its address and, when it is a child process
// this program started, the process, for CPU and memory figures.
type Target struct {
	Addr   string
	Server *Process // nil: not ours, no CPU or memory figures
}

// Result is one measured run.
type Result struct {
	Target     string      `json:"target"`
	Framing    string      `json:"framing"`
	Driver     string      `json:"driver"`
	Conns      int         `json:"conns"`
	Mix        string      `json:"mix"`
	Payload    int         `json:"payload_bytes"`
	Pipeline   int         `json:"pipeline"`
	Elapsed    float64     `json:"elapsed_s"`          // the measured phase
	Warmup     float64     `json:"warmup_s,omitempty"` // the warm-up as it ran: its batches in flight are finished, up to Timeout
	Requests   uint64      `json:"requests"`           // replies received and checked
	Errors     ErrorCounts `json:"errors"`
	Throughput float64     `json:"throughput_rps"` // valid replies per second
	Latency    *Latency    `json:"latency_us"`     // nil (null) when no reply was valid
	ServerCPU  *ServerCPU  `json:"server_cpu,omitempty"`
	// CPUNotMeasured says why ServerCPU is absent: the server is not a
	// child of this process, or the window is shorter than MinCPUWindow.
	CPUNotMeasured string     `json:"server_cpu_not_measured,omitempty"`
	NewClient      *NewClient `json:"new_client,omitempty"` // runs that last half their --duration
	// Hints are advice for people about what went wrong on most
	// connections: no reply at all, or replies that look like another
	// framing.
	Hints []string `json:"hints,omitempty"`
}

// NewClient is one more client that connects halfway through the measured
// phase and has one echo answered while the load runs: the server must stay
// responsive to it (EA-CONC-2). A failure also counts as a connection error.
type NewClient struct {
	Served    bool    `json:"served"`
	LatencyUs float64 `json:"latency_us,omitempty"` // connect and round trip
	Error     string  `json:"error,omitempty"`
}

// ErrorCounts counts what went wrong; Examples holds the first few, each
// naming its connection.
type ErrorCounts struct {
	Invalid    uint64   `json:"invalid_replies"`
	Connection uint64   `json:"connection_errors"`
	Examples   []string `json:"examples,omitempty"`
}

// Total is every error.
func (e ErrorCounts) Total() uint64 { return e.Invalid + e.Connection }

// Latency is the round-trip time of valid replies, in microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// ServerCPU is the server's user+system CPU time over the measured window.
// /proc counts it in ticks (CPUTick), so it is given only for a window of
// at least MinCPUWindow.
type ServerCPU struct {
	Seconds       float64 `json:"seconds"`
	PerRequestUs  float64 `json:"per_request_us"`
	UtilisationPc float64 `json:"utilisation_pct"` // of one core
}

// CPUTick is the unit of the CPU times /proc gives: USER_HZ, 100 on every
// Linux architecture Go supports.
const CPUTick = 10 * time.Millisecond

// MinCPUWindow is the shortest measured window given a server CPU figure:
// 100 ticks, so that the tick or so by which a reading can be off is at
// most about 1% of one core. Below it the figure means nothing (a 2 ms run
// could read as 500% of a core).
const MinCPUWindow = 100 * CPUTick

const maxExamples = 5

// errorLog collects errors from every connection.
type errorLog struct {
	mu     sync.Mutex
	counts ErrorCounts
	prefix string // for the examples of the phase running
}

func (e *errorLog) add(invalid bool, format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if invalid {
		e.counts.Invalid++
	} else {
		e.counts.Connection++
	}
	if len(e.counts.Examples) < maxExamples {
		e.counts.Examples = append(e.counts.Examples, e.prefix+fmt.Sprintf(format, args...))
	}
}

// phase sets the prefix of the examples added from now on.
func (e *errorLog) phase(prefix string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.prefix = prefix
}

// worker is one connection's state; only its goroutine touches it, except
// done, which the progress line reads.
type worker struct {
	id      int
	load    *Load
	conn    net.Conn
	rr      *ReplyReader
	wbuf    []byte
	want    []expectation
	batch   int    // requests in the batch last filled
	content []byte // the echo content, stamped anew for each request; a copy goes into wbuf
	// frameMax is the most bytes one request of the load takes in wbuf.
	frameMax int
	seq      uint64
	rng      uint64
	ep       epollConn // the epoll driver's state
	hist     Histogram
	done     atomic.Uint64 // valid replies in the measured phase
	errs     *errorLog
	replies  uint64 // replies received, valid or not, in every phase
	invalid  uint64 // invalid replies in the measured phase
	// lastValid is when the measured phase's last valid reply came.
	lastValid time.Time
	first     firstFailure // how the connection failed, if before any reply
	refused   bool         // the server refused it (Error CODE_OVERLOADED): its close is no error of its own
}

// firstFailure is how a connection failed before its first reply: the
// clues for Result.Hints.
type firstFailure int

const (
	noFirstFailure   firstFailure = iota
	firstSilent                   // the timeout passed with no byte received
	firstClosed                   // the server closed the connection, no byte received
	firstUndecodable              // bytes arrived that are no valid reply in the framing used
	firstOther                    // a write failed, or another error
)

// failed notes err, the failure that ends the connection, if no reply had
// arrived on it.
func (w *worker) failed(err error) {
	if w.replies > 0 || w.first != noFirstFailure {
		return
	}
	var ne net.Error
	var fe *protocol.FramingError
	var te *protocol.TooLargeError
	pending := w.rr != nil && w.rr.start < w.rr.end
	switch {
	case errors.As(err, &fe), errors.As(err, &te), errors.Is(err, io.ErrUnexpectedEOF),
		pending && (errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())):
		w.first = firstUndecodable
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		w.first = firstSilent
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		w.first = firstClosed
	default:
		w.first = firstOther
	}
}

// Run puts load on target and returns the measured figures. It returns an
// error only when the load cannot be run at all (invalid load, no connection
// could be made); errors of the server are counted in the Result.
func Run(ctx context.Context, target Target, load Load) (Result, error) {
	if err := load.Validate(); err != nil {
		return Result{}, err
	}
	load.Pipeline = max(load.Pipeline, 1)
	if load.Timeout <= 0 {
		load.Timeout = DefaultTimeout
	}
	if load.Driver == "" {
		load.Driver = DefaultDriver()
	}
	res := Result{
		Target: target.Addr, Framing: load.Framing.String(), Driver: string(load.Driver), Conns: load.Conns,
		Mix: load.Mix.String(), Payload: load.Payload, Pipeline: load.Pipeline,
	}
	errs := &errorLog{}

	// Dial every connection first: set-up is not measured.
	workers := make([]*worker, load.Conns)
	var dialWG sync.WaitGroup
	dialSem := make(chan struct{}, 32)
	for i := range workers {
		w := newWorker(i, &load, errs)
		workers[i] = w
		dialWG.Add(1)
		dialSem <- struct{}{}
		go func() {
			defer dialWG.Done()
			defer func() { <-dialSem }()
			d := net.Dialer{Timeout: load.Timeout}
			c, err := d.DialContext(ctx, "tcp", target.Addr)
			if err != nil {
				errs.add(false, "connection %d: %v", w.id, err)
				return
			}
			w.conn = c
			w.rr = NewReplyReader(c, load.Framing, load.Payload+1024)
		}()
	}
	dialWG.Wait()
	defer func() {
		for _, w := range workers {
			if w.conn != nil {
				w.conn.Close()
			}
		}
	}()
	live := 0
	for _, w := range workers {
		if w.conn != nil {
			live++
		}
	}
	if live == 0 {
		return res, fmt.Errorf("no connection to %s could be made (%s): check that a server listens there", target.Addr, strings.Join(errs.counts.Examples, "; "))
	}

	// phase runs every connection until stop, the deadline or limit
	// requests each, and returns when all are done.
	phase := func(stop *atomic.Bool, deadline time.Time, limit int, measured bool) {
		startWorkers(workers, stop, deadline, limit, measured).Wait()
	}
	if load.Driver == DriverEpoll {
		d, err := newEpollDriver(workers)
		if err != nil {
			return res, fmt.Errorf("epoll driver: %w", err)
		}
		defer d.close()
		phase = func(stop *atomic.Bool, deadline time.Time, limit int, measured bool) {
			d.run(&load, stop, deadline, limit, measured)
		}
	}

	var stop atomic.Bool
	ctxStop := context.AfterFunc(ctx, func() { stop.Store(true) })
	defer ctxStop()

	// Warm up on the same connections, unmeasured.
	if load.Warmup > 0 {
		t := time.Now()
		errs.phase("during the warm-up: ")
		phase(&stop, t.Add(load.Warmup), 0, false)
		errs.phase("")
		res.Warmup = time.Since(t).Seconds()
		if stop.Load() {
			return res, ctx.Err()
		}
	}
	measuredConns := 0 // the connections the warm-up left
	for _, w := range workers {
		if w.open() {
			measuredConns++
		}
	}

	var cpu0 time.Duration
	var noCPU string // why there will be no CPU figure, once known
	if target.Server != nil {
		var err error
		if cpu0, noCPU, err = readServerCPU(target.Server, errs, "during the warm-up"); err != nil {
			return res, err
		}
	}
	start := time.Now()
	deadline := start.Add(MaxDuration)
	if load.Duration > 0 {
		deadline = start.Add(load.Duration)
	}
	progressDone := make(chan struct{})
	if load.Progress != nil {
		go progress(load.Progress, workers, errs, start, progressDone)
	}
	probed := make(chan *NewClient, 1)
	loadDone := make(chan struct{})
	if load.Duration > 0 {
		go func() { probed <- newClient(ctx, loadDone, target.Addr, &load, start.Add(load.Duration/2)) }()
	} else {
		probed <- nil
	}
	phase(&stop, deadline, load.Requests, true)
	end := measuredEnd(workers, time.Now(), deadline, load.Duration > 0)
	close(loadDone)
	if res.NewClient = <-probed; res.NewClient != nil && !res.NewClient.Served {
		errs.add(false, "a new client during the load: %s", res.NewClient.Error)
	}
	if load.Progress != nil {
		progressDone <- struct{}{}
		<-progressDone
	}

	var hist Histogram
	var done, invalid uint64
	for _, w := range workers {
		hist.Merge(&w.hist)
		done += w.done.Load()
		invalid += w.invalid
	}
	res.Elapsed = end.Sub(start).Seconds()
	res.Requests = done + invalid // the warm-up's errors are in Errors, its replies not here
	if res.Elapsed > 0 {
		res.Throughput = float64(done) / res.Elapsed
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	if done > 0 { // invalid replies count as requests, but have no latency
		res.Latency = &Latency{
			P50: us(hist.Quantile(0.50)), P90: us(hist.Quantile(0.90)), P99: us(hist.Quantile(0.99)),
			P999: us(hist.Quantile(0.999)), Max: us(hist.Max()),
		}
	}
	switch {
	case target.Server == nil:
		res.CPUNotMeasured = "the server is not a child of this process"
	case noCPU == "":
		cpu1, why, err := readServerCPU(target.Server, errs, "during the run")
		if err != nil {
			return res, err
		}
		if noCPU = why; why == "" {
			res.ServerCPU, res.CPUNotMeasured = serverCPU(cpu1-cpu0, end.Sub(start), done)
		}
	}
	if noCPU != "" {
		res.CPUNotMeasured = noCPU
	}
	errs.mu.Lock()
	res.Errors = errs.counts // after readServerCPU, which may add one
	errs.mu.Unlock()
	res.Hints = diagnose(ctx, workers, live, measuredConns, target.Addr, &load)
	if target.Server != nil && !target.Server.Running() {
		res.Hints = append(res.Hints, target.Server.exitHint())
	}
	return res, nil
}

// measuredEnd is the end of the measured window: the phase's end, unless
// connections waited out their timeout after the load was over (a server
// that stopped answering some of them): then the last valid reply's time,
// or for a load bounded by time, its deadline if that is later. A window
// stretched by a timeout understated the throughput (2 s of load reported
// over 8 s with --timeout 8s).
func measuredEnd(workers []*worker, phaseEnd, deadline time.Time, timed bool) time.Time {
	var last time.Time
	for _, w := range workers {
		if w.lastValid.After(last) {
			last = w.lastValid
		}
	}
	switch {
	case last.IsZero():
		return phaseEnd
	case timed && last.Before(deadline):
		last = deadline
	}
	if last.Before(phaseEnd) {
		return last
	}
	return phaseEnd
}

// readServerCPU reads the CPU time of a server started here. A server
// that has exited has none: that is counted as a connection error (its
// connections failed with it, or would have) and returned as the reason
// for no figure, as is a system without /proc. Any other failure is an
// error.
func readServerCPU(p *Process, errs *errorLog, when string) (time.Duration, string, error) {
	cpu, err := p.CPUTime()
	switch {
	case err == nil:
		return cpu, "", nil
	case errors.Is(err, harness.ErrCPUTimeUnsupported):
		return 0, err.Error(), nil
	}
	select {
	case <-p.Exited():
	case <-time.After(time.Second):
		return 0, "", fmt.Errorf("server CPU: %w", err)
	}
	errs.add(false, "the server exited %s: %v", when, p.ExitStatus())
	return 0, "the server exited " + when, nil
}

// serverCPU is the CPU figure of cpu time used over a window in which done
// requests were answered, or why there is none.
func serverCPU(cpu, window time.Duration, done uint64) (*ServerCPU, string) {
	if window < MinCPUWindow {
		return nil, fmt.Sprintf("not measurable: the %v window is shorter than %v, 100 ticks of the %v clock /proc counts CPU time in", window.Round(time.Microsecond), MinCPUWindow, CPUTick)
	}
	sc := &ServerCPU{Seconds: cpu.Seconds()}
	if done > 0 {
		sc.PerRequestUs = sc.Seconds * 1e6 / float64(done)
	}
	sc.UtilisationPc = 100 * sc.Seconds / window.Seconds()
	return sc, ""
}

// diagnose says, for people, what most of the live connections had in
// common when they failed before any reply: a framing hint when their
// first replies could not be read (from a probe with the conformance
// harness's client, which says which framing the replies look like), or
// that no reply came at all.
func diagnose(ctx context.Context, workers []*worker, live, measuredConns int, addr string, load *Load) []string {
	var silent, closed, undecodable, replied, refused int
	for _, w := range workers {
		if w.refused {
			refused++
		}
		switch w.first {
		case firstSilent:
			silent++
		case firstClosed:
			closed++
		case firstUndecodable:
			undecodable++
		}
		if w.replies > 0 {
			replied++
		}
	}
	var hints []string
	if refused > 0 {
		hints = append(hints, fmt.Sprintf("%d of %d connections were refused with Error CODE_OVERLOADED: the server's connection limit is below --conns (or its buffers are full); measure with fewer connections or raise the limit", refused, len(workers)))
	}
	switch {
	case undecodable*2 > live:
		what := fmt.Sprintf("%d of %d connections failed on their first reply, with bytes that are no %s reply", undecodable, live, load.Framing)
		if h := probeFraming(ctx, addr, load); h != "" {
			hints = append(hints, what+": "+h)
		} else {
			hints = append(hints, what+": is the server using another framing (--framing raw, len32 or varint)?")
		}
	case replied > 0:
	case silent == live:
		hints = append(hints, fmt.Sprintf("no reply within the %v timeout (--timeout) on any of the %d connections", load.Timeout, live))
	case closed == live:
		hints = append(hints, fmt.Sprintf("no reply: the server closed each of the %d connections without replying", live))
	default:
		hints = append(hints, fmt.Sprintf("no reply on any of the %d connections", live))
	}
	if measuredConns == 0 && load.Warmup > 0 {
		hints = append(hints, "every connection failed during the warm-up: none was left to measure")
	}
	// Connections still open that finished no request: their batches take
	// longer than the window (the figures are then of the others only).
	idle, measured := 0, 0
	for _, w := range workers {
		switch {
		case w.done.Load() > 0 || w.invalid > 0:
			measured++
		case w.open():
			idle++
		}
	}
	if idle > 0 && measured > 0 {
		hints = append(hints, fmt.Sprintf("%d of %d connections finished no request in the measured window: a batch of --pipeline %d requests of --payload %d bytes takes longer than --duration; raise --duration or send smaller batches", idle, len(workers), load.Pipeline, load.Payload))
	}
	return hints
}

// probeFraming makes one echo request on a new connection with the
// conformance harness's client and returns the framing hint of its verdict
// ("the bytes received look like len32 framing ...: try --framing len32"),
// or "" if it has none.
func probeFraming(ctx context.Context, addr string, load *Load) string {
	if ctx.Err() != nil {
		return ""
	}
	c, err := harness.Dial(ctx, addr, harness.Options{Framing: load.Framing, Latency: load.Timeout, DialTimeout: load.Timeout, Name: "framing probe"})
	if err != nil {
		return ""
	}
	defer c.Close()
	var f *harness.Failure
	if err := c.Echo("echoadd-bench framing probe"); errors.As(err, &f) {
		return f.Hint
	}
	return ""
}

func newWorker(id int, load *Load, errs *errorLog) *worker {
	w := &worker{
		id: id, load: load, errs: errs,
		want:    make([]expectation, load.Pipeline),
		content: echoPattern(load.Payload),
		frameMax: max(len(appendEcho(nil, load.Framing, make([]byte, load.Payload))),
			len(appendAdd(nil, load.Framing, math.MinInt32, math.MinInt32))),
		rng: uint64(id)*0x9e3779b97f4a7c15 + 1,
	}

	return w
}

// startWorkers runs the loop of every connected worker in a goroutine of its
// own; the caller waits on the group.
func startWorkers(workers []*worker, stop *atomic.Bool, deadline time.Time, limit int, measured bool) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, w := range workers {
		if w.conn == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(stop, deadline, limit, measured)
		}()
	}
	return &wg
}

// loop runs batches until stop, the deadline, or limit requests (0: none).
// Only a measured loop records latencies and counts. It returns when the
// connection fails, after counting the failure and closing the connection,
// which later phases then skip (as the epoll driver's drop does).
func (w *worker) loop(stop *atomic.Bool, deadline time.Time, limit int, measured bool) {
	sent := 0
	var ioDeadline time.Time
	for !stop.Load() {
		now := time.Now()
		if !now.Before(deadline) || (limit > 0 && sent >= limit) {
			return
		}
		batch := w.fill(limit, sent)
		sent += batch
		// Move the deadline only when it comes near: cheaper than per batch.
		if ioDeadline.Sub(now) < w.load.Timeout/2 {
			ioDeadline = now.Add(w.load.Timeout)
			w.conn.SetDeadline(ioDeadline)
		}
		t0 := time.Now()
		// A batch larger than the sockets take at once is written while
		// its replies are read: a server stops reading while its replies
		// wait, and a client that wrote it all first would wait for ever.
		// Each reply then moves the deadline: progress is bounded, not the
		// batch.
		var wrote chan error
		if big := len(w.wbuf) > concurrentWriteAbove; big {
			conn, batchBuf := w.conn, w.wbuf
			conn.SetWriteDeadline(time.Time{}) // a stalled writer ends with the reader's timeout, which closes conn
			ioDeadline = time.Time{}           // set anew for the next small batch
			wrote = make(chan error, 1)
			go func() {
				_, err := conn.Write(batchBuf)
				wrote <- err
			}()
		} else if _, err := w.conn.Write(w.wbuf); err != nil {
			w.writeFailed(batch, err)
			w.dropConn()
			return
		}
		for j := range batch {
			if wrote != nil {
				w.conn.SetReadDeadline(time.Now().Add(w.load.Timeout))
			}
			body, err := w.rr.Next()
			if err != nil {
				w.readFailed(batch-j, err)
				w.dropConn()
				if wrote != nil {
					<-wrote // the close ends it
				}
				return
			}
			w.check(j, body, t0, measured)
		}
		if wrote != nil {
			if err := <-wrote; err != nil {
				w.writeFailed(batch, err)
				w.dropConn()
				return
			}
		}
		if w.refused || w.surplus(measured) {
			w.dropConn()
			return
		}
	}
}

// concurrentWriteAbove is the batch size above which the goroutine driver
// writes a batch while it reads the replies: more than loopback's socket
// buffers take at once with nobody reading.
const concurrentWriteAbove = 256 << 10

// surplus reports, and counts as an invalid reply, bytes that came after
// the replies to every request sent: a reply nobody asked for (a server
// that answers twice, or splits one request into two). After it the
// connection's replies cannot be matched to requests any more.
func (w *worker) surplus(measured bool) bool {
	extra := w.rr.Buffered()
	if len(extra) == 0 {
		return false
	}
	w.replies++
	if measured {
		w.invalid++
	}
	w.errs.add(true, "connection %d: %d more bytes after the reply to request %d, with no request outstanding (%s): a reply nobody asked for; connection closed", w.id, len(extra), w.seq-1, hexShort(extra))
	return true
}

// open reports whether w's connection has not failed, under either driver.
func (w *worker) open() bool {
	if w.load.Driver == DriverEpoll {
		return w.ep.fd >= 0
	}
	return w.conn != nil
}

// dropConn closes a failed connection of the goroutine driver.
func (w *worker) dropConn() {
	w.conn.Close()
	w.conn = nil
}

// fill encodes the next batch into wbuf, at most limit-sent requests when
// limit > 0, records what each reply must be, and returns the batch size.
func (w *worker) fill(limit, sent int) int {
	f := w.load.Framing
	mix := w.load.Mix
	period := uint64(mix.Echo + mix.Add)
	batch := w.load.Pipeline
	if limit > 0 {
		batch = min(batch, limit-sent)
	}
	// One array for the batch, of its final size: grown by appending, a
	// batch of megabytes cost a garbage collection per doubling, and page
	// faults, in the middle of the load.
	if need := batch * w.frameMax; cap(w.wbuf) < need {
		w.wbuf = make([]byte, 0, need)
	}
	w.wbuf = w.wbuf[:0]
	echoes := false
	for j := range batch {
		if w.seq%period < uint64(mix.Echo) {
			stamp(w.content, w.seq)
			w.wbuf = appendEcho(w.wbuf, f, w.content)
			// The reply must equal the copy just made: where it ends, as an
			// offset while wbuf may still grow (see below).
			w.want[j] = expectation{end: len(w.wbuf)}
			echoes = true
		} else {
			a, b := int32(w.next()), int32(w.next())
			w.want[j] = expectation{add: true, sum: a + b}
			w.wbuf = appendAdd(w.wbuf, f, a, b)
		}
		w.seq++
	}
	if echoes { // wbuf has its final array now: point each echo's expectation into it
		for j := range batch {
			if e := &w.want[j]; !e.add {
				e.content = w.wbuf[e.end-len(w.content) : e.end : e.end]
			}
		}
	}
	w.batch = batch
	return batch
}

// echoPattern is n bytes of printable content, for stamp to number.
func echoPattern(n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz"
	c := make([]byte, n)
	for i := 0; i < n; i += len(alphabet) {
		copy(c[i:], alphabet)
	}
	return c
}

// check validates the reply to request j of the batch sent at t0.
func (w *worker) check(j int, body []byte, t0 time.Time, measured bool) {
	first := w.replies == 0
	w.replies++
	if err := checkReply(body, w.want[j]); err != nil {
		m, derr := protocol.DecodeReply(body)
		if first && (derr != nil || m.GetMessage() == nil) && w.first == noFirstFailure {
			// Bytes that decode to no reply at all are as much a sign of
			// another framing as bytes that do not decode.
			w.first = firstUndecodable
		}
		if derr == nil && m.GetError().GetCode() == protocol.Code_CODE_OVERLOADED && !w.refused {
			// A refusal at the server's limit, not a wrong reply: one
			// connection error, and the close that follows is its own
			// (more such replies on it are wrong replies).
			w.refused = true
			w.errs.add(false, "connection %d refused by the server at request %d: %v", w.id, w.seq-uint64(w.batch-j), err)
			return
		}
		if measured {
			w.invalid++
		}
		w.errs.add(true, "connection %d, request %d: %v", w.id, w.seq-uint64(w.batch-j), err)
		return
	}
	if measured {
		now := time.Now()
		w.hist.Record(now.Sub(t0))
		w.lastValid = now
		w.done.Add(1)
	}
}

func (w *worker) writeFailed(batch int, err error) {
	w.failed(err)
	if w.refused {
		return // the refusal's close, counted with it
	}
	w.errs.add(false, "connection %d: writing request %d: %v", w.id, w.seq-uint64(batch), err)
}

// readFailed counts a failure to read the first of the last left replies.
func (w *worker) readFailed(left int, err error) {
	w.failed(err)
	if w.refused {
		return // the refusal's close, counted with it
	}
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("server closed the connection (EOF)")
	}
	w.errs.add(false, "connection %d: reading the reply to request %d: %v", w.id, w.seq-uint64(left), err)
}

// newClient connects at the given time and has one echo answered, unless
// ctx ends or the load is done first (nil then: a run bounded by --requests
// can end long before half its --duration). Once connecting, it finishes.
func newClient(ctx context.Context, loadDone <-chan struct{}, addr string, load *Load, at time.Time) *NewClient {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil
	case <-loadDone:
		return nil
	}
	t0 := time.Now()
	c, err := dialEcho(ctx, addr, load.Framing, load.Timeout, 1<<40)
	if err != nil {
		return &NewClient{Error: err.Error()}
	}
	c.Close()
	return &NewClient{Served: true, LatencyUs: float64(time.Since(t0)) / float64(time.Microsecond)}
}

// stamp writes seq in hex at the start of c, its last digits when c is
// shorter than 16 bytes, so that every echo of at least one byte differs
// from the one before: a stale, repeated or reordered reply then shows.
func stamp(c []byte, seq uint64) {
	const hex = "0123456789abcdef"
	k := min(len(c), 16)
	for i := range k {
		c[i] = hex[(seq>>(4*(k-1-i)))&0xf]
	}
}

// next is xorshift64*: operands over the whole int32 range, overflow
// included (EA-ADD-2).
func (w *worker) next() uint64 {
	w.rng ^= w.rng >> 12
	w.rng ^= w.rng << 25
	w.rng ^= w.rng >> 27
	return (w.rng * 2685821657736338717) >> 32
}

func progress(out io.Writer, workers []*worker, errs *errorLog, start time.Time, done chan struct{}) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var last uint64
	lastT := start
	for {
		select {
		case <-done:
			fmt.Fprint(out, "\r\033[K")
			done <- struct{}{}
			return
		case now := <-t.C:
			var n uint64
			for _, w := range workers {
				n += w.done.Load()
			}
			errs.mu.Lock()
			e := errs.counts.Total()
			errs.mu.Unlock()
			rate := float64(n-last) / now.Sub(lastT).Seconds()
			last, lastT = n, now
			fmt.Fprintf(out, "\r\033[K%6.1fs  %10d replies  %10.0f req/s  %d errors", now.Sub(start).Seconds(), n, rate, e)
		}
	}
}
