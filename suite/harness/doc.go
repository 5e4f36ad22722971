// Package harness is the conformance suite's side of the wire: a client that
// treats every Echo/Add server, the bundled reference included, as a black
// box reached over TCP, and the control of a server process the suite starts
// itself.
//
// # Client
//
// Dial connects to exactly the address it is given. Every read and write of a
// Client has a deadline, so no check can hang whatever the server does. Every
// byte in either direction goes into the connection's Transcript with its
// time offset, as hex and decoded (protocol.DecodeRequest, DecodeReply).
//
// The checks read like the protocol: Echo and Add send a request and check
// its reply; ExpectEcho, ExpectSum, ExpectReply, ExpectErrorReply,
// ExpectNoSuccess, ExpectClosed and ExpectSilence check what arrives next.
// They return nil or a *Failure naming what was seen, what the protocol
// wants, the requirement the observation violates by itself (EA-CONN-6 for a
// late reply, EA-MSG-1 for an undecodable one, the framing's EA-FRAME-n for
// bytes that are not a frame), a framing hint when the replies look like
// another framing, and the transcript.
//
// Every reply is checked against EA-CONN-6: it must arrive within
// Options.Latency of its request having been sent whole. The client knows
// when that was because it splits what it sends with the same framing code
// a server uses (protocol.Framing.Split): each whole, valid request it sends
// starts the clock of the next reply.
//
// Silence is only ever "nothing arrived within a named window": a window
// that passes quietly is no proof that nothing would have come later.
//
// # Server processes
//
// Start runs a shell command (sh -c, in its own process group) with {port}
// replaced by a free 127.0.0.1 port, captures its output and waits, bounded,
// until the port accepts connections. Stop sends SIGTERM to the group and
// SIGKILL after a grace period, and reports the exit status and how long the
// process took to exit. CPUTime reads the group's CPU time from /proc, which
// exists on Linux only (ErrCPUTimeUnsupported elsewhere).
//
// The exit status is that of `sh -c`. Shells exec a single simple command,
// so for `server --listen 127.0.0.1:{port}` it is the server's own; for a
// compound command, write `exec` before the server.
package harness
