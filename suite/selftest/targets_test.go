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

// faultTargets are the faults and what each breaks.
var faultTargets = []target{
	{fault: faulty.Serial, framing: "len32"},
	{fault: faulty.Pool4, framing: "len32"},
	{fault: faulty.RefuseAfterFirst, framing: "len32"},
	{fault: faulty.ExitOnReset, framing: "len32"},
	{fault: faulty.BusyIdle, framing: "len32"},
	{fault: faulty.AddReturnsA, framing: "len32"},
	{fault: faulty.Reflect, framing: "len32"},
	{fault: faulty.NulTruncate, framing: "len32"},
	{fault: faulty.WrongField, framing: "len32"},
	{fault: faulty.OmittedIsError, framing: "len32"},
	{fault: faulty.OverflowCrash, framing: "len32"},
	{fault: faulty.GarbageSuccess, framing: "len32"},
	{fault: faulty.ExitOnMalformed, framing: "len32"},
	{fault: faulty.SmallBuffer, framing: "len32"},
	{fault: faulty.Merge, framing: "len32"},
	{fault: faulty.TruncateLarge, framing: "len32"},
	{fault: faulty.SplitWrite, framing: "raw"},
	{fault: faulty.ExtraBytes, framing: "len32"},
	{fault: faulty.Reorder, framing: "len32"},
	{fault: faulty.Slow, framing: "len32"},
	{fault: faulty.CloseAfterOne, framing: "len32"},
	{fault: faulty.VarintOneByte, framing: "varint"},
	{fault: faulty.Len32Low16, framing: "len32"},
	{fault: faulty.RawLenPrefix, framing: "raw", hint: "--framing len32"},
	{fault: faulty.IgnoreStop, framing: "len32"},
	{fault: faulty.StopNoDrain, framing: "len32"},
	{fault: faulty.StopKeepConns, framing: "len32"},
	{fault: faulty.StopExitOne, framing: "len32"},
}
