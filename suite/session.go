package suite

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	ginkgotypes "github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"echoadd/protocol"
	"echoadd/suite/harness"
)

// harnessErrorPrefix starts the failure message of a spec that could not
// judge the target because the harness failed (suite/report reads it).
const harnessErrorPrefix = "HARNESS ERROR"

// shared is the server every spec but the lifecycle ones talks to: the
// target address, or the process BeforeSuite started from ServerCmd. Set in
// BeforeSuite, read by specs.
var shared struct {
	mu   sync.Mutex // guards addr and proc: concurrency specs dial from goroutines
	addr string
	proc *harness.Process // nil with a target address
}

// sharedTarget is the shared server's address and process (nil with a
// target address).
func sharedTarget() (string, *harness.Process) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	return shared.addr, shared.proc
}

func setShared(addr string, p *harness.Process) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.addr, shared.proc = addr, p
}

var _ = BeforeSuite(func(ctx SpecContext) {
	if !isConfigured() {
		Fail(harnessErrorPrefix + ": suite.Configure was not called before RunSpecs")
	}
	cfg := Current()
	w := cfg.windows()
	// Latencies are measured here, at the client: the watch tells a late
	// reply from one read late by a held-up harness (EA-CONN-6).
	watching, stopWatching := context.WithCancel(context.Background())
	watched := harness.WatchLag(watching)
	DeferCleanup(func() { stopWatching(); watched() })
	if cfg.Target != "" {
		d := net.Dialer{Timeout: w.start}
		c, err := d.DialContext(ctx, "tcp", cfg.Target)
		if err != nil {
			Fail(harnessErrorPrefix + ": " + harness.DialError(cfg.Target, err).Error())
		}
		c.Close()
		setShared(cfg.Target, nil)
		return
	}
	p, err := harness.Start(ctx, harness.StartOptions{Command: cfg.ServerCmd, Stdout: cfg.Stdout, Stderr: cfg.Stderr, StartTimeout: w.start})
	if err != nil {
		Fail(harnessErrorPrefix + ": " + err.Error())
	}
	setShared(p.Addr, p)
	DeferCleanup(func() {
		if _, p := sharedTarget(); p != nil { // the last one, if it had to be restarted
			p.Stop(w.grace)
		}
	})
})

// restartIfGone restarts the shared server if it has exited (crashed,
// most likely, in an earlier spec, which failed for it), so that one crash
// does not fail every later spec. The spec that notices says so in a
// report entry.
func restartIfGone(ctx context.Context, cfg Config) {
	_, p := sharedTarget()
	if p == nil || p.Running() {
		return
	}
	AddReportEntry("shared server restarted", fmt.Sprintf("the server process had exited (%v) before this spec; it was started again\n%s", p.ExitStatus(), p.OutputSection()))
	again, err := harness.Start(ctx, harness.StartOptions{Command: cfg.ServerCmd, Stdout: cfg.Stdout, Stderr: cfg.Stderr, StartTimeout: cfg.windows().start})
	if err != nil {
		Fail(harnessErrorPrefix + ": restarting the server after it exited: " + err.Error())
	}
	setShared(again.Addr, again)
}

// session is one spec's view of the target: its configuration, windows and
// connections. Create it first thing in a spec with begin.
type session struct {
	ctx context.Context
	cfg Config
	w   windows

	mu      sync.Mutex // guards clients: concurrency specs dial from goroutines
	clients []*harness.Client
	crowd   bool // the spec's clients connect together (harness.Options.Crowd); set before they dial
	// later is a failure on a requirement the spec does not check, seen
	// on the way: reported when the spec's own checks have passed
	// (reportLater), so that it does not leave them unjudged.
	later error
}

// begin starts a spec's session; every connection it opens is closed when
// the spec ends. A spec that talks to the shared server skips at once once
// that server has stopped answering, or has shown that it speaks another
// framing (see checkAnswering).
func begin(ctx context.Context) *session {
	cfg := Current()
	s := &session{ctx: ctx, cfg: cfg, w: cfg.windows()}
	usesShared := !slices.Contains(CurrentSpecReport().Labels(), lifecycle)
	if usesShared {
		skipIfStopped()
	}
	if cfg.Transcript != nil {
		fmt.Fprintf(cfg.Transcript, "=== %s\n", CurrentSpecReport().FullText())
	}
	if usesShared {
		// Registered first, so it runs last (DeferCleanup runs in reverse
		// order): after closeAll, so that a server serving one client at a
		// time is free to answer the probe.
		DeferCleanup(checkAnswering, cfg.Framing, s.w.alive)
	}
	DeferCleanup(s.closeAll)
	DeferCleanup(s.reportLater)
	DeferCleanup(awaitCrash, s.w.quiet.D) // runs first: before closeAll (reverse order)
	restartIfGone(ctx, cfg)
	return s
}

// answering records whether the shared server can still be judged. A
// target that accepts connections (or leaves them in its backlog) and never
// replies would make every spec wait out its own timeouts, minutes in all;
// instead, once a spec has failed and a fresh connection then gets nothing
// at all, the specs after it that need the shared server skip at once,
// naming that first failure. Likewise once a spec's failure shows that the
// target speaks another framing (the harness's framing hint): every later
// spec would fail on that alone, or time out waiting for a reply to bytes
// that are no whole request in the target's framing. MUST specs still run
// until one has failed (or the harness has), so that such a run is never
// CONFORMANT. A server that is slow, wrong, or crashed (it refuses or
// resets) is answering: every spec judges it, except that a target given by
// its address that refuses connections has gone for good (nobody restarts
// it), and the specs after skip.
var answering struct {
	mu      sync.Mutex
	stopped string // "": judge on; else why the specs after skip, after notJudgedPrefix
	// mismatch: stopped is a framing mismatch, which a restart of the
	// server (the same command) does not change.
	mismatch bool
	decided  bool // a spec failed on a MUST requirement, or the harness failed: the run is not CONFORMANT
	// fresh is what a server started afresh for a lifecycle spec did once
	// the shared one had stopped answering: "" if it answered
	// (freshUnanswering); freshAsked says whether it was asked.
	fresh      string
	freshAsked bool
	replies    int // replies read on the connections of the specs that ended so far
}

// notJudgedPrefix starts the skip reason of a spec not run because of an
// earlier spec's failure (suite/report reads it: NOT JUDGED).
const notJudgedPrefix = "not judged: "

// skipIfStopped skips the running spec if the shared server has stopped
// answering or speaks another framing, unless it is a MUST spec and none
// has failed yet. A started server that has stopped answering and exited
// since is started again (restartIfGone) and judged afresh.
func skipIfStopped() {
	answering.mu.Lock()
	defer answering.mu.Unlock()
	if answering.stopped == "" {
		return
	}
	if _, p := sharedTarget(); p != nil && !p.Running() && !answering.mismatch {
		answering.stopped, answering.fresh, answering.freshAsked = "", "", false
		return
	}
	if answering.decided || !slices.Contains(CurrentSpecReport().Labels(), "must") {
		Skip(notJudgedPrefix + answering.stopped)
	}
}

// checkAnswering runs when a spec that talks to the shared server ends. If
// the spec failed with a framing hint, the specs after it skip
// (skipIfStopped); if it failed otherwise, it checks that the server still
// answers anything at all on a fresh connection within w
// (harness.Unanswering), and if it does not, the specs after it skip.
func checkAnswering(framing protocol.Framing, w harness.Window) {
	r := CurrentSpecReport()
	if !r.Failed() || r.State.Is(ginkgotypes.SpecStateInterrupted|ginkgotypes.SpecStateAborted) {
		return
	}
	first, _, _ := strings.Cut(r.Failure.Message, "\n")
	answering.mu.Lock()
	if failsMust(first, r.Labels()) {
		answering.decided = true
	}
	stopped := answering.stopped != ""
	if hint := harness.FramingHintIn(r.Failure.Message); hint != "" && !answering.mismatch {
		answering.stopped = fmt.Sprintf("the target speaks another framing: %s (seen in %q)", hint, r.FullText())
		answering.mismatch = true
		answering.mu.Unlock()
		AddReportEntry("target speaks another framing", hint+"; the specs that follow skip")
		return
	}
	answering.mu.Unlock()
	addr, p := sharedTarget()
	if stopped || (p != nil && !p.Running()) {
		return // a crash is restartIfGone's
	}
	what := harness.Unanswering(context.Background(), addr, framing, w)
	if what == "" && p == nil {
		// A target nobody restarts: refused connections mean it is gone,
		// and every spec after would fail on it, for no requirement of its own.
		what = harness.Refusing(context.Background(), addr, w)
	}
	if what == "" || (p != nil && !p.Running()) {
		return
	}
	answering.mu.Lock()
	defer answering.mu.Unlock()
	answering.stopped = fmt.Sprintf("the target stopped answering: %s (in %q); then %s", first, r.FullText(), what)
	if answering.replies == 0 && strings.HasPrefix(what, harness.NothingInReply) {
		what += "; " + harness.NoReplyHint(framing)
		answering.stopped += "; " + harness.NoReplyHint(framing)
	}
	AddReportEntry("target stopped answering", "after this spec failed, "+what+"; the specs that follow skip")
}

// failsMust reports whether a failure whose first line is first, in a spec
// labelled labels, makes the run NOT CONFORMANT (or a harness error): it
// names a MUST requirement, or it names none and the spec is a MUST one.
func failsMust(first string, labels []string) bool {
	if strings.HasPrefix(first, harnessErrorPrefix) {
		return true
	}
	head, _, _ := strings.Cut(first, ":")
	head, _, _ = strings.Cut(head, " (checking")
	named := false
	for _, id := range strings.Fields(head) {
		if l, ok := levels[id]; ok {
			named = true
			if l == "must" {
				return true
			}
		}
	}
	return !named && slices.Contains(labels, "must")
}

// awaitCrash gives a shared server that a failed spec may have crashed a
// moment to exit, so that the next spec's restartIfGone sees the crash
// instead of racing it (and failing on a connection refused by a process
// that is still dying). Only failed specs wait.
func awaitCrash(d time.Duration) {
	if !CurrentSpecReport().Failed() {
		return
	}
	if _, p := sharedTarget(); p != nil {
		select {
		case <-p.Exited():
			// Said here, under the spec that crashed it, as well as by the
			// next spec, which restarts it.
			AddReportEntry("server exited", fmt.Sprintf("the server process exited (%v) during this spec\n%s", p.ExitStatus(), p.OutputSection()))
		case <-time.After(d):
		}
	}
}

// expectDetail holds r, an Error reply on c, to EA-ERR-1's detail: at
// once in a spec that checks EA-ERR-1 alone, else once the spec's other
// checks have passed (reportLater). An empty detail is a SHOULD's failure,
// which must not leave EA-LIM-2 or EA-MAL-3 unjudged.
func (s *session) expectDetail(c *harness.Client, r *harness.Reply) {
	GinkgoHelper()
	err := c.CheckDetail(r)
	switch {
	case err == nil:
	case slices.Equal(specIDs(), []string{"EA-ERR-1"}):
		Expect(err).To(Conform())
	default:
		s.mu.Lock()
		if s.later == nil {
			s.later = err
		}
		s.mu.Unlock()
	}
}

// failLast fails the spec on err, the failure of its last check, if any,
// counted against ids when err names none: the checks before it passed,
// which the message says (harness.OwnPassed), unless one of them put off a
// failure of its own (expectDetail).
func (s *session) failLast(err error, ids []string) {
	GinkgoHelper()
	var f *harness.Failure
	if !errors.As(err, &f) {
		Expect(err).To(Conform())
		return
	}
	if len(f.IDs) == 0 && len(f.Among) == 0 && len(ids) > 0 {
		f.IDs = ids
	}
	note := harness.OwnPassed
	s.mu.Lock()
	if s.later != nil {
		note = ""
	}
	s.mu.Unlock()
	Fail(failureTextNoting(f, note))
}

// reportLater fails a spec that passed its own checks with the failure
// expectDetail put off, noting that they passed (harness.OwnPassed).
func (s *session) reportLater() {
	s.mu.Lock()
	err := s.later
	s.mu.Unlock()
	if err != nil && !CurrentSpecReport().Failed() {
		Fail(failureTextNoting(err, harness.OwnPassed))
	}
}

func (s *session) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	replies := 0
	for _, c := range s.clients {
		c.Close() //nolint:errcheck // the spec is over; a close error changes nothing
		replies += c.Replies()
	}
	answering.mu.Lock()
	answering.replies += replies
	answering.mu.Unlock()
}

// dial connects to the shared server, failing the spec if it cannot.
func (s *session) dial() *harness.Client {
	addr, _ := sharedTarget()
	return s.dialAddr(addr)
}

// dialAddr connects to addr, failing the spec if it cannot.
func (s *session) dialAddr(addr string) *harness.Client {
	c, err := s.tryDial(addr)
	if err != nil {
		var f *harness.Failure
		if !errors.As(err, &f) {
			s.fail(nil, nil, err.Error(), "a connection")
		}
		var details []string // the server's output, if any
		if f.Transcript != "" {
			details = append(details, f.Transcript)
		}
		s.fail(nil, f.Blame(specIDs()), f.Got, f.Want, details...)
	}
	return c
}

// tryShared connects to the shared server; safe to call from any goroutine.
func (s *session) tryShared() (*harness.Client, error) {
	addr, _ := sharedTarget()
	return s.tryDial(addr)
}

// tryDial connects to addr; safe to call from any goroutine.
func (s *session) tryDial(addr string) (*harness.Client, error) {
	s.mu.Lock()
	name := fmt.Sprintf("conn %d", len(s.clients)+1)
	s.mu.Unlock()
	c, err := harness.Dial(s.ctx, addr, harness.Options{
		Framing:        s.cfg.Framing,
		MaxMessageSize: s.cfg.MaxMessageSize,
		Latency:        s.w.latency.D,
		DialTimeout:    s.w.closing.D * 5,
		Name:           name,
		Live:           s.cfg.Transcript,
		Crowd:          s.crowd,
	})
	if err != nil {
		if _, p := sharedTarget(); p != nil && addr == p.Addr {
			select { // a crash may be a moment from being reaped
			case <-p.Exited():
				var f *harness.Failure
				if errors.As(err, &f) {
					f.Got += fmt.Sprintf("; the server process has exited: %v", p.ExitStatus())
					f.Transcript = p.OutputSection()
				} else {
					err = fmt.Errorf("%w; the server process has exited: %v\n%s", err, p.ExitStatus(), p.OutputSection())
				}
			case <-time.After(s.w.quiet.D):
			}
		}
		return nil, err
	}
	s.mu.Lock()
	s.clients = append(s.clients, c)
	s.mu.Unlock()
	return c, nil
}

// needServerCmd skips a spec that must start and stop its own server.
func (s *session) needServerCmd() {
	if s.cfg.ServerCmd == "" {
		Skip("needs --server-cmd: the spec starts and stops the server itself")
	}
}

// start starts a fresh server process from ServerCmd on port (0: a free
// one); it is stopped when the spec ends.
func (s *session) start(port int) (*harness.Process, error) {
	p, err := harness.Start(s.ctx, harness.StartOptions{Command: s.cfg.ServerCmd, Port: port, Stdout: s.cfg.Stdout, Stderr: s.cfg.Stderr, StartTimeout: s.w.start})
	if err != nil {
		return nil, err
	}
	DeferCleanup(func() { p.Stop(s.w.grace) })
	return p, nil
}

// undeclaredReadTimeout is the read timeout the suite assumes of a server
// that declares none: sending a request in pieces stays within half of it.
const undeclaredReadTimeout = time.Second

// sendBudget is how long sending one request in pieces may take: half the
// server's read timeout, so that the request is whole long before the
// server may rightly give up on it (EA-LIM-3), whatever --timeout-scale.
func (s *session) sendBudget() time.Duration {
	if rt := s.cfg.ReadTimeout; rt > 0 {
		return rt / 2
	}
	return undeclaredReadTimeout / 2
}

// piecePause is pause, shortened if need be so that the pauses between a
// request's pieces add up to half sendBudget at most: the other half is
// for the writes themselves and timers that fire late.
func (s *session) piecePause(pause time.Duration, pieces int) time.Duration {
	if pieces < 2 {
		return pause
	}
	return min(pause, s.sendBudget()/time.Duration(2*(pieces-1)))
}

// sendInPieces sends parts, one request in pieces, with pauses between them
// (piecePause). If the suite itself took longer than sendBudget to send
// them (a loaded machine), the spec stops, not judged: the server's reply
// to a request that long in coming proves nothing against it.
func (s *session) sendInPieces(c *harness.Client, parts [][]byte, pause time.Duration) {
	GinkgoHelper()
	start := time.Now()
	err := c.SendSplit(parts, s.piecePause(pause, len(parts)))
	s.skipIfSlowSend(time.Since(start), len(parts)) // before err: the server may rightly have closed meanwhile
	Expect(err).To(Conform())
}

// skipIfSlowSend stops the spec, not judged, when sending a request in
// pieces took the suite longer than sendBudget.
func (s *session) skipIfSlowSend(took time.Duration, pieces int) {
	GinkgoHelper()
	if budget := s.sendBudget(); took > budget {
		Skip(notJudgedPrefix + fmt.Sprintf("the suite took %v to send a request in %d pieces, more than half the server's read timeout (%v): this machine is too loaded to judge it; run again on a quieter one",
			took.Round(time.Millisecond), pieces, 2*budget))
	}
}

// mustStart is start, and a harness error if the server does not start.
// Once the shared server has stopped answering or shown another framing,
// a lifecycle spec skips like the others (skipIfStopped) if the fresh
// server does not answer either: its own requirements would otherwise be
// charged with "no reply" (EA-STOP-1 failing for a server that never
// answers anything).
func (s *session) mustStart() *harness.Process {
	p, err := s.start(0)
	if err != nil {
		Fail(harnessErrorPrefix + ": " + err.Error())
	}
	if why := freshUnanswering(s.ctx, p.Addr, s.cfg.Framing, s.w.alive); why != "" {
		Skip(notJudgedPrefix + why)
	}
	return p
}

// freshUnanswering returns why a lifecycle spec should skip, or "": the
// shared server stopped answering (or speaks another framing), the spec
// is one skipIfStopped would skip, and a server just started at addr from
// the same command does not answer either. The first such spec asks the
// fresh server (harness.Unanswering, at most twice w); the others take its
// answer, since every start is the same command.
func freshUnanswering(ctx context.Context, addr string, f protocol.Framing, w harness.Window) string {
	answering.mu.Lock()
	stopped, mismatch, decided := answering.stopped, answering.mismatch, answering.decided
	fresh, asked := answering.fresh, answering.freshAsked
	answering.mu.Unlock()
	if stopped == "" || (!decided && slices.Contains(CurrentSpecReport().Labels(), "must")) {
		return ""
	}
	if mismatch {
		return stopped
	}
	if !asked {
		fresh = harness.Unanswering(ctx, addr, f, w)
		answering.mu.Lock()
		answering.fresh, answering.freshAsked = fresh, true
		answering.mu.Unlock()
	}
	if fresh == "" {
		return ""
	}
	return stopped + "; a server started afresh from the command did not answer either (" + fresh + ")"
}

// fail fails the spec: requirement IDs (nil: the spec's own) and a
// one-line got/want, then any details (e.g. the server's output), then the
// transcripts of c, or of every connection of the spec when c is nil.
func (s *session) fail(c *harness.Client, ids []string, got, want string, details ...string) {
	var b strings.Builder
	b.WriteString(idLine(ids))
	fmt.Fprintf(&b, "got %s, want %s\n", got, want)
	for _, d := range details {
		b.WriteString("\n" + strings.TrimRight(d, "\n") + "\n")
	}
	if c != nil {
		b.WriteString("\n" + c.Transcript().Tail(40))
	} else {
		b.WriteString(s.transcripts())
	}
	Fail(b.String())
}

// transcripts are the tails of the spec's connections, a few at most.
func (s *session) transcripts() string {
	const shown = 8
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for i, c := range s.clients {
		if i == shown {
			fmt.Fprintf(&b, "\n(%d more connections not shown)\n", len(s.clients)-shown)
			break
		}
		b.WriteString("\n" + c.Transcript().Tail(20))
	}
	return b.String()
}

// specIDs are the requirement IDs among the running spec's labels.
func specIDs() []string {
	var ids []string
	for _, l := range CurrentSpecReport().Labels() {
		if _, ok := levels[l]; ok {
			ids = append(ids, l)
		}
	}
	return ids
}

// idLine starts a failure message: ids (nil: the spec's), and the spec's
// own IDs when they differ.
func idLine(ids []string) string { return idLineNoting(ids, "") }

// idLineNoting is idLine with note after the spec's own IDs; with a note
// (harness.OwnPassed), it names only those of them that ids leaves out.
func idLineNoting(ids []string, note string) string {
	own := specIDs()
	if len(ids) == 0 {
		ids = own
	}
	if note != "" {
		own = slices.DeleteFunc(own, func(id string) bool { return slices.Contains(ids, id) })
	}
	line := strings.Join(ids, " ") + ": "
	if !slices.Equal(ids, own) && len(own) > 0 {
		line = strings.Join(ids, " ") + " (checking " + strings.Join(own, " ") + note + "): "
	}
	return line
}

// Conform succeeds for a nil error. For a *harness.Failure its failure
// message is the contract's: the requirement IDs the observation violates
// (the spec's own if it names none) with a one-line got/want, then the
// framing hint and the connection's transcript.
func Conform() types.GomegaMatcher { return conformMatcher{} }

type conformMatcher struct{}

func (conformMatcher) Match(actual any) (bool, error) {
	if actual == nil {
		return true, nil
	}
	if _, ok := actual.(error); !ok {
		return false, fmt.Errorf("Conform wants an error, got %T", actual)
	}
	return false, nil
}

func (conformMatcher) FailureMessage(actual any) string { return failureText(actual.(error)) }

func (conformMatcher) NegatedFailureMessage(any) string {
	return "want a failure, got none"
}

func failureText(err error) string { return failureTextNoting(err, "") }

// failureTextNoting is failureText with note in its ID line (idLineNoting).
func failureTextNoting(err error, note string) string {
	var f *harness.Failure
	if errors.As(err, &f) {
		var b strings.Builder
		b.WriteString(idLineNoting(f.Blame(specIDs()), note) + f.Reason())
		if f.Hint != "" {
			b.WriteString("\nhint: " + f.Hint)
		}
		if f.Transcript != "" {
			b.WriteString("\n\n" + f.Transcript)
		}
		return b.String()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return idLine(nil) + "got the spec's time up or an interrupt (" + err.Error() + "), want the check to finish"
	}
	return idLine(nil) + err.Error()
}
