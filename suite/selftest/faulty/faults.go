// Package faulty is a small, correct Echo/Add server with one fault injected
// on purpose, for the conformance suite's self-test: each fault breaks one
// requirement the way real implementations do, and the self-test checks that
// the suite catches it. It is test tooling; nothing outside suite/selftest
// uses it.
package faulty

import "slices"

// Fault names one injected bug. The zero Fault is a correct server.
type Fault string

// The faults. Each comment says what real code does to get there.
const (
	None Fault = ""

	// Accepting and concurrency.
	Serial           Fault = "serial"             // serves one client at a time: accept, serve until it leaves, accept
	Pool4            Fault = "pool4"              // a fixed pool of 4 workers, one connection each
	RefuseAfterFirst Fault = "refuse-after-first" // closes the listener once it has a client
	ExitOnReset      Fault = "exit-on-reset"      // treats ECONNRESET from a client as fatal to the process
	BusyIdle         Fault = "busy-idle"          // a connection's goroutine keeps polling after its client left

	// Request semantics.
	AddReturnsA     Fault = "add-returns-a"     // returns a instead of a + b
	Reflect         Fault = "reflect"           // writes the request's bytes back as the reply
	NulTruncate     Fault = "nul-truncate"      // echo content is a C string: cut at the first NUL
	WrongField      Fault = "wrong-field"       // answers an add with echo_message holding the decimal sum
	OmittedIsError  Fault = "omitted-is-error"  // an add without both operands gets an Error (proto2 habits)
	OverflowCrash   Fault = "overflow-crash"    // checked addition: closes the connection on int32 overflow
	GarbageSuccess  Fault = "garbage-success"   // a request it cannot decode gets an empty echo reply
	ExitOnMalformed Fault = "exit-on-malformed" // log.Fatal on a request it cannot decode
	SmallBuffer     Fault = "small-buffer"      // a 512-byte request buffer: larger requests are too large
	TwoMembers      Fault = "two-members"       // writes an empty echo_message before each add_response (a reply built by appending to a default)
	NoDetail        Fault = "no-detail"         // Error replies carry the right code and no detail
	StayOpen        Fault = "stay-open"         // after the Error for a framing error or a request too large, keeps the connection open (and reads nothing more)

	// Framing and writing.
	Merge         Fault = "merge"           // a message is what arrives until 10 ms of quiet: requests after the first are dropped
	TruncateLarge Fault = "truncate-large"  // a reply over 512 bytes is cut to 512 (a fixed write buffer)
	SplitWrite    Fault = "split-write"     // writes a reply over 1000 bytes in two pieces, with a pause between them
	ExtraBytes    Fault = "extra-bytes"     // writes an empty frame after each reply (a "keep-alive")
	Reorder       Fault = "reorder"         // answers the echoes among the requests of one read last-first (a LIFO of echoes)
	Slow          Fault = "slow"            // a request over 4 KiB is answered 1.5 s late (a queue drained on a timer)
	CloseAfterOne Fault = "close-after-one" // closes the connection after the first reply
	VarintOneByte Fault = "varint-1byte"    // varint framing: writes the length as one byte
	Len32Low16    Fault = "len32-low16"     // len32 framing: uses only the low 16 bits of a length
	Len32LE       Fault = "len32-le"        // len32 framing: reads a length little-endian, unchecked and with no read timeout, so it waits for a frame of hundreds of MB and never replies
	RawLenPrefix  Fault = "raw-len-prefix"  // raw framing, but each reply gets a 4-byte length in front
	KeepAlive     Fault = "keep-alive"      // writes an unknown field (78 00) 300 ms after each batch of replies, with a write of its own
	Greeting      Fault = "greeting"        // writes an unknown field (78 00) on accept, before any request

	// Limits (with --idle-timeout and --max-conns set).
	NoIdleTimeout     Fault = "no-idle-timeout"       // sets the idle deadline only before the first request (a "handshake timeout"): once served, a connection may idle forever
	ConnLimitOffByOne Fault = "conn-limit-off-by-one" // checks the limit with > instead of >=: serves one connection more than --max-conns

	// Stopping.
	IgnoreStop    Fault = "ignore-stop"     // ignores SIGTERM and SIGINT
	StopNoDrain   Fault = "stop-no-drain"   // exits at once on stop, in the middle of writing a reply (large replies go out in pieces as produced)
	StopKeepConns Fault = "stop-keep-conns" // on stop closes the listener but never its connections
	StopExitOne   Fault = "stop-exit-1"     // exits 1 after a clean stop (the "server closed" error is returned)
	StopPending   Fault = "stop-pending"    // on stop no longer accepts, but keeps its listening socket (backlog 4) open for 1.5 s: new connections are left pending, then time out, where they must be refused
)

// PendingBacklog is StopPending's listen backlog once stopping: small, as
// in many servers' listen(5), so that pending connections soon fill it.
const PendingBacklog = 4

// Faults lists every fault.
var Faults = []Fault{
	Serial, Pool4, RefuseAfterFirst, ExitOnReset, BusyIdle,
	AddReturnsA, Reflect, NulTruncate, WrongField, OmittedIsError, OverflowCrash, GarbageSuccess, ExitOnMalformed, SmallBuffer, TwoMembers, NoDetail, StayOpen,
	Merge, TruncateLarge, SplitWrite, ExtraBytes, Reorder, Slow, CloseAfterOne, VarintOneByte, Len32Low16, Len32LE, RawLenPrefix, KeepAlive, Greeting,
	NoIdleTimeout, ConnLimitOffByOne,
	IgnoreStop, StopNoDrain, StopKeepConns, StopExitOne, StopPending,
}

// Valid reports whether f is None or one of Faults.
func (f Fault) Valid() bool { return f == None || slices.Contains(Faults, f) }
