package selftest

import (
	"fmt"

	"echoadd/suite/selftest/faulty"
)

// What every faulty server is started with and declares to the runner.
const (
	faultyReadTimeout    = "1s"
	faultyMaxMessageSize = "1048576"
)

// target is one run of the runner and the verdicts it must give.
type target struct {
	name    string
	bundled bool         // the runner's bundled reference, else faulty-server
	fault   faulty.Fault // for faulty-server
	framing string
	must    []string // requirements that must FAIL, exactly
	should  []string // SHOULD/MAY requirements that must be NON-STRICT, exactly
	hint    string   // text the failure output must contain, if any
}

// long are the faults whose runs take longest (stop specs waiting out their
// grace period, a server serving one client at a time, merge's 10 ms
// gaps): runAll starts them first, to keep the wall time short.
var long = []faulty.Fault{faulty.IgnoreStop, faulty.Serial, faulty.StopKeepConns, faulty.Merge, faulty.TruncateLarge, faulty.Slow}

func (tg target) args() []string {
	if tg.bundled {
		return []string{"--framing", tg.framing}
	}
	cmd := fmt.Sprintf("exec %s --fault %q --listen 127.0.0.1:{port} --framing %s --read-timeout %s --max-message-size %s",
		faultyBin, string(tg.fault), tg.framing, faultyReadTimeout, faultyMaxMessageSize)
	return []string{"--server-cmd", cmd, "--framing", tg.framing,
		"--read-timeout", faultyReadTimeout, "--max-message-size", faultyMaxMessageSize}
}

// allTargets: the bundled reference in every framing, the faulty core with
// no fault, and every fault, in the framing where it shows.
func allTargets() []target {
	ts := []target{
		{name: "reference/raw", bundled: true, framing: "raw"},
		{name: "reference/len32", bundled: true, framing: "len32"},
		{name: "reference/varint", bundled: true, framing: "varint"},
		{name: "faulty/none", fault: faulty.None, framing: "len32"},
	}
	for _, f := range faultTargets {
		f.name = "faulty/" + string(f.fault)
		ts = append(ts, f)
	}
	return ts
}

// faultTargets are the faults and what each breaks: the requirements the
// suite must report FAIL (must) and NON-STRICT (should), exactly. Beyond
// the requirement a fault aims at, a set holds what the fault really breaks
// as well (a server that serves one client at a time fails every spec with
// two clients) and the requirements of specs whose checks name their own IDs
// for a symptom of the fault (see the self-test's report for those).
var faultTargets = []target{
	{fault: faulty.Serial, framing: "len32",
		must:   []string{"EA-TRANS-1", "EA-ECHO-1", "EA-MAL-1", "EA-MAL-2", "EA-CONC-1", "EA-CONC-2", "EA-CONC-3", "EA-STOP-3", "EA-STOP-4"},
		should: []string{"EA-CONC-4", "EA-STOP-5"}},
	{fault: faulty.Pool4, framing: "len32",
		must:   []string{"EA-CONC-1", "EA-CONC-2"},
		should: []string{"EA-CONC-4"}},
	{fault: faulty.RefuseAfterFirst, framing: "len32",
		must:   []string{"EA-TRANS-1", "EA-FRAME-4", "EA-FRAME-6", "EA-MSG-1", "EA-ECHO-1", "EA-ECHO-2", "EA-ECHO-3", "EA-ADD-1", "EA-ADD-2", "EA-ADD-3", "EA-CONN-1", "EA-CONN-2", "EA-CONN-3", "EA-CONN-4", "EA-CONN-6", "EA-MAL-1", "EA-MAL-2", "EA-LIM-1", "EA-CONC-1", "EA-CONC-2", "EA-CONC-3", "EA-STOP-1", "EA-STOP-2", "EA-STOP-3", "EA-STOP-4"},
		should: []string{"EA-CONN-5", "EA-ERR-1", "EA-ERR-2", "EA-MAL-3", "EA-MAL-4", "EA-LIM-2", "EA-LIM-3", "EA-CONC-4", "EA-STOP-5"}},
	{fault: faulty.ExitOnReset, framing: "len32",
		must: []string{"EA-CONC-3"}},
	{fault: faulty.BusyIdle, framing: "len32",
		must:   []string{},
		should: []string{"EA-CONC-4"}},
	{fault: faulty.AddReturnsA, framing: "len32",
		must:   []string{"EA-FRAME-6", "EA-ADD-1", "EA-ADD-2", "EA-ADD-3", "EA-CONN-1", "EA-CONN-2", "EA-CONN-3", "EA-CONN-4", "EA-CONC-1"},
		should: []string{"EA-CONN-5"}},
	{fault: faulty.Reflect, framing: "len32",
		must:   []string{"EA-FRAME-6", "EA-MSG-1", "EA-ADD-1", "EA-ADD-2", "EA-ADD-3", "EA-CONN-1", "EA-CONN-2", "EA-CONN-3", "EA-CONN-4", "EA-CONC-1"},
		should: []string{"EA-CONN-5", "EA-ERR-1", "EA-ERR-2", "EA-MAL-3"}},
	{fault: faulty.NulTruncate, framing: "len32",
		must: []string{"EA-ECHO-1", "EA-ECHO-2", "EA-CONN-1", "EA-CONN-3"}},
	{fault: faulty.WrongField, framing: "len32",
		must:   []string{"EA-MSG-1", "EA-CONN-2", "EA-CONN-4"},
		should: []string{"EA-CONN-5"}},
	{fault: faulty.OmittedIsError, framing: "len32",
		must: []string{"EA-ADD-3", "EA-CONC-1"}},
	{fault: faulty.OverflowCrash, framing: "len32",
		must: []string{"EA-ADD-2"}},
	{fault: faulty.GarbageSuccess, framing: "len32",
		must:   []string{"EA-MAL-1", "EA-MAL-2"},
		should: []string{"EA-ERR-1", "EA-ERR-2", "EA-MAL-3", "EA-MAL-4"}},
	{fault: faulty.ExitOnMalformed, framing: "len32",
		must:   []string{"EA-MAL-1", "EA-MAL-2"},
		should: []string{"EA-ERR-1", "EA-ERR-2", "EA-MAL-3", "EA-MAL-4"}},
	{fault: faulty.SmallBuffer, framing: "len32",
		must: []string{"EA-MSG-1", "EA-ECHO-3", "EA-CONN-6", "EA-LIM-1", "EA-STOP-2"}},
	{fault: faulty.Merge, framing: "len32",
		must:   []string{"EA-FRAME-6", "EA-CONN-2", "EA-CONN-4"},
		should: []string{"EA-CONN-5", "EA-MAL-4"}},
	{fault: faulty.TruncateLarge, framing: "len32",
		must: []string{"EA-FRAME-4", "EA-ECHO-3", "EA-CONN-6", "EA-LIM-1", "EA-STOP-2"}},
	{fault: faulty.SplitWrite, framing: "raw",
		must: []string{"EA-FRAME-2"}},
	{fault: faulty.ExtraBytes, framing: "len32",
		must:   []string{"EA-MSG-1", "EA-CONN-1", "EA-STOP-2", "EA-STOP-3", "EA-STOP-4"},
		should: []string{"EA-ERR-1", "EA-MAL-3", "EA-LIM-2", "EA-LIM-3"}},
	{fault: faulty.Reorder, framing: "len32",
		must:   []string{"EA-CONN-2", "EA-CONN-4"},
		should: []string{"EA-CONN-5"}},
	{fault: faulty.Slow, framing: "len32",
		must: []string{"EA-CONN-6", "EA-STOP-2"}},
	{fault: faulty.CloseAfterOne, framing: "len32",
		must:   []string{"EA-TRANS-1", "EA-FRAME-4", "EA-FRAME-6", "EA-MSG-1", "EA-ECHO-1", "EA-ECHO-2", "EA-ECHO-3", "EA-ADD-1", "EA-ADD-2", "EA-ADD-3", "EA-CONN-1", "EA-CONN-2", "EA-CONN-3", "EA-CONN-4", "EA-CONN-6", "EA-MAL-1", "EA-MAL-2", "EA-LIM-1", "EA-CONC-1", "EA-CONC-2", "EA-CONC-3"},
		should: []string{"EA-CONN-5", "EA-ERR-1", "EA-MAL-4", "EA-CONC-4"}},
	{fault: faulty.VarintOneByte, framing: "varint",
		must: []string{"EA-FRAME-5", "EA-MSG-1", "EA-ECHO-3", "EA-CONN-6"}},
	{fault: faulty.Len32Low16, framing: "len32",
		must:   []string{"EA-MSG-1", "EA-ECHO-3", "EA-STOP-2"},
		should: []string{"EA-ERR-1", "EA-MAL-3", "EA-LIM-2"}},
	{fault: faulty.RawLenPrefix, framing: "raw",
		must: []string{"EA-FRAME-1"},
		hint: "--framing len32"},
	{fault: faulty.IgnoreStop, framing: "len32",
		must: []string{"EA-STOP-1", "EA-STOP-2", "EA-STOP-3", "EA-STOP-4"}},
	{fault: faulty.StopNoDrain, framing: "len32",
		must: []string{"EA-STOP-2"}},
	{fault: faulty.StopKeepConns, framing: "len32",
		must: []string{"EA-STOP-2", "EA-STOP-3", "EA-STOP-4"}},
	{fault: faulty.StopExitOne, framing: "len32",
		must: []string{"EA-STOP-4"}},
}
