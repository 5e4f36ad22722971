package selftest

import (
	"fmt"
	"strings"

	"echoadd/suite/selftest/faulty"
)

// What every faulty server is started with and declares to the runner.
const (
	faultyReadTimeout    = "1s"
	faultyMaxMessageSize = "1048576"
)

// The limits runs declare these to the runner and start the server with
// them, and run only the specs that check them: an idle timeout would close
// the connections other specs hold idle, and a limit of 8 would refuse most
// of EA-CONC-1's 100 clients.
const (
	limitsIdleTimeout = "1s"
	limitsMaxConns    = "8"
	limitsFilter      = "EA-LIM-4 || EA-LIM-5"
)

// limitsIDs are the requirements of limitsFilter: a limits run must give
// each PASS, but those it expects to fail.
var limitsIDs = []string{"EA-LIM-4", "EA-LIM-5"}

// target is one run of the runner and the verdicts it must give.
type target struct {
	name      string
	bundled   bool         // the runner's bundled reference, else the server command below
	reference bool         // the reference, started with --server-cmd (the runner's hidden server mode), else faulty-server
	engine    string       // with reference: its --engine; "" is its default
	fault     faulty.Fault // for faulty-server
	framing   string
	limits    bool     // declare limitsIdleTimeout and limitsMaxConns, run only limitsFilter
	must      []string // requirements that must FAIL, exactly
	should    []string // SHOULD/MAY requirements that must be NON-STRICT, exactly
	pass      []string // requirements that must PASS, beside those failures
	hint      string   // text the failure output must contain, if any
}

// long are the faults whose runs take longest (stop specs waiting out their
// grace period, a server serving one client at a time, merge's 10 ms
// gaps): runAll starts them first, to keep the wall time short.
var long = []faulty.Fault{faulty.IgnoreStop, faulty.Serial, faulty.StopKeepConns, faulty.StopPending, faulty.Merge, faulty.TruncateLarge, faulty.Slow}

func (tg target) args() []string {
	var limits []string
	if tg.limits {
		limits = []string{"--idle-timeout", limitsIdleTimeout, "--max-conns", limitsMaxConns}
	}
	if tg.bundled { // the runner starts the reference with the limits it declares
		args := append([]string{"--framing", tg.framing}, limits...)
		if tg.limits {
			args = append(args, "--label-filter", limitsFilter)
		}
		return args
	}
	server := fmt.Sprintf("%s --fault %q", faultyBin, string(tg.fault))
	if tg.reference {
		server = runnerBin + " __reference-server --log-level warn"
		if tg.engine != "" {
			server += " --engine " + tg.engine
		}
	}
	cmd := fmt.Sprintf("exec %s --listen 127.0.0.1:{port} --framing %s --read-timeout %s --max-message-size %s",
		server, tg.framing, faultyReadTimeout, faultyMaxMessageSize)
	if tg.limits {
		cmd += " " + strings.Join(limits, " ")
	}
	args := []string{"--server-cmd", cmd, "--framing", tg.framing,
		"--read-timeout", faultyReadTimeout, "--max-message-size", faultyMaxMessageSize}
	if tg.limits {
		args = append(append(args, limits...), "--label-filter", limitsFilter)
	}
	return args
}

// allTargets: the bundled reference in every framing, the faulty core with
// no fault, and every fault, in the framing where it shows.
func allTargets() []target {
	ts := []target{
		{name: "reference/raw", bundled: true, framing: "raw"},
		{name: "reference/len32", bundled: true, framing: "len32"},
		{name: "reference/varint", bundled: true, framing: "varint"},
		{name: "faulty/none", fault: faulty.None, framing: "len32"},
		// EA-LIM-4 and EA-LIM-5, which need limits declared.
		{name: "reference/limits/len32", bundled: true, framing: "len32", limits: true},
		{name: "reference/limits/raw", reference: true, framing: "raw", limits: true},
		// The reference's second engine, a goroutine per connection: it must
		// pass everything too (the bundled runs above use the default engine).
		{name: "reference/goroutine/raw", reference: true, engine: "goroutine", framing: "raw"},
		{name: "reference/goroutine/len32", reference: true, engine: "goroutine", framing: "len32"},
		{name: "reference/goroutine/varint", reference: true, engine: "goroutine", framing: "varint"},
	}
	for _, f := range faultTargets {
		f.name = "faulty/" + string(f.fault)
		ts = append(ts, f)
	}
	return ts
}

// faultTargets are the faults and what each breaks: the requirements the
// suite must report FAIL (must) and NON-STRICT (should), exactly. A failure
// counts against the requirement its observation breaks (harness.Failure
// Blame: a wrong sum is EA-ADD-n whatever else the spec checks), so beyond
// the requirement a fault aims at, a set holds only what the fault really
// breaks as well (a server that closes after one reply breaks EA-CONN-3,
// and the "other clients are served" requirements of specs whose first
// connection it closes; one that serves one client at a time leaves a
// second client unanswered, which counts against the spec's own IDs).
var faultTargets = []target{
	{fault: faulty.Serial, framing: "len32",
		must:   []string{"EA-TRANS-1", "EA-MAL-1", "EA-CONC-1", "EA-CONC-2", "EA-CONC-3", "EA-STOP-3", "EA-STOP-4"},
		should: []string{"EA-CONC-4", "EA-STOP-5"}},
	{fault: faulty.Pool4, framing: "len32",
		must:   []string{"EA-CONC-1", "EA-CONC-2"},
		should: []string{"EA-CONC-4"}},
	{fault: faulty.RefuseAfterFirst, framing: "len32",
		must: []string{"EA-TRANS-1", "EA-MAL-1", "EA-CONC-1", "EA-CONC-2", "EA-CONC-3"}},
	{fault: faulty.ExitOnReset, framing: "len32",
		must: []string{"EA-CONC-3"}},
	{fault: faulty.BusyIdle, framing: "len32",
		must:   []string{},
		should: []string{"EA-CONC-4"}},
	{fault: faulty.AddReturnsA, framing: "len32",
		must: []string{"EA-ADD-1", "EA-ADD-2", "EA-ADD-3"}},
	{fault: faulty.Reflect, framing: "len32",
		must:   []string{"EA-MSG-1", "EA-ADD-1", "EA-ADD-2", "EA-ADD-3"},
		should: []string{"EA-ERR-1", "EA-ERR-2", "EA-MAL-3"}},
	{fault: faulty.NulTruncate, framing: "len32",
		must: []string{"EA-ECHO-1", "EA-ECHO-2"}},
	{fault: faulty.WrongField, framing: "len32",
		must: []string{"EA-MSG-1"}},
	{fault: faulty.OmittedIsError, framing: "len32",
		must: []string{"EA-ADD-3"}},
	{fault: faulty.OverflowCrash, framing: "len32",
		must: []string{"EA-ADD-2"}},
	{fault: faulty.GarbageSuccess, framing: "len32",
		must:   []string{"EA-MAL-2"},
		should: []string{"EA-ERR-1", "EA-ERR-2", "EA-MAL-3", "EA-MAL-4"}},
	{fault: faulty.ExitOnMalformed, framing: "len32",
		must:   []string{"EA-MAL-1"},
		should: []string{"EA-ERR-1", "EA-ERR-2", "EA-MAL-3", "EA-MAL-4"}},
	{fault: faulty.SmallBuffer, framing: "len32",
		must: []string{"EA-ECHO-3", "EA-LIM-1"}},
	// A missing detail fails EA-ERR-1 alone: the specs that meet it on
	// the way still judge their own requirements.
	{fault: faulty.NoDetail, framing: "raw",
		should: []string{"EA-ERR-1"},
		pass:   []string{"EA-MAL-3", "EA-MAL-5", "EA-LIM-2", "EA-ERR-2"}},
	// A missing close after a fatal error fails the close's requirements
	// only: the Error replies before it were right.
	{fault: faulty.StayOpen, framing: "raw",
		should: []string{"EA-MAL-5", "EA-LIM-2"},
		pass:   []string{"EA-MAL-3", "EA-ERR-1"}},
	{fault: faulty.TwoMembers, framing: "len32",
		must: []string{"EA-MSG-1"}},
	{fault: faulty.Merge, framing: "len32",
		must:   []string{"EA-FRAME-6", "EA-CONN-4"},
		should: []string{"EA-CONN-5", "EA-MAL-4"}},
	{fault: faulty.TruncateLarge, framing: "len32",
		must: []string{"EA-FRAME-4", "EA-ECHO-3", "EA-LIM-1", "EA-STOP-2"}},
	{fault: faulty.SplitWrite, framing: "raw",
		must: []string{"EA-FRAME-2"}},
	// After an Error that must close, its empty frame comes instead of
	// the close: the close's requirement, not the Error's (right) code or
	// detail.
	{fault: faulty.ExtraBytes, framing: "len32",
		must:   []string{"EA-MSG-1", "EA-CONN-1"},
		should: []string{"EA-LIM-2"}},
	{fault: faulty.Reorder, framing: "len32",
		must: []string{"EA-CONN-2"}},
	{fault: faulty.Slow, framing: "len32",
		must: []string{"EA-CONN-6", "EA-STOP-2"}},
	{fault: faulty.CloseAfterOne, framing: "len32",
		must:   []string{"EA-TRANS-1", "EA-CONN-3", "EA-MAL-1", "EA-CONC-1", "EA-CONC-2", "EA-CONC-3"},
		should: []string{"EA-CONN-5", "EA-ERR-1", "EA-MAL-4"}},
	{fault: faulty.VarintOneByte, framing: "varint",
		must: []string{"EA-FRAME-5", "EA-MSG-1", "EA-ECHO-3"}},
	{fault: faulty.Len32Low16, framing: "len32",
		must:   []string{"EA-MSG-1", "EA-ECHO-3"},
		should: []string{"EA-ERR-1", "EA-MAL-3", "EA-LIM-2"}},
	// It never replies: the first spec fails, and every later one, the
	// lifecycle specs with their fresh servers too, is NOT JUDGED.
	{fault: faulty.Len32LE, framing: "len32",
		must: []string{"EA-CONN-2", "EA-CONN-3"}},
	{fault: faulty.RawLenPrefix, framing: "raw",
		must: []string{"EA-FRAME-1"},
		hint: "--framing len32"},
	{fault: faulty.KeepAlive, framing: "raw",
		must: []string{"EA-CONN-1"}},
	{fault: faulty.Greeting, framing: "raw",
		must: []string{"EA-CONN-1"}},
	{fault: faulty.NoIdleTimeout, framing: "len32", limits: true,
		should: []string{"EA-LIM-4"}},
	{fault: faulty.ConnLimitOffByOne, framing: "len32", limits: true,
		should: []string{"EA-LIM-5"}},
	{fault: faulty.IgnoreStop, framing: "len32", // answers the request, so EA-STOP-2 holds: the close that never comes is EA-STOP-3's
		must: []string{"EA-STOP-1", "EA-STOP-3", "EA-STOP-4"}},
	{fault: faulty.StopNoDrain, framing: "len32",
		must: []string{"EA-STOP-2"}},
	{fault: faulty.StopKeepConns, framing: "len32", // as ignore-stop: the reply comes, the close does not
		must: []string{"EA-STOP-3", "EA-STOP-4"}},
	{fault: faulty.StopExitOne, framing: "len32",
		must: []string{"EA-STOP-4"}},
	{fault: faulty.StopPending, framing: "len32",
		must: []string{"EA-STOP-1"}},
}
