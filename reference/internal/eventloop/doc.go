// Package eventloop is the reference server's event-driven engine: a few
// epoll loops (half as many as GOMAXPROCS by default; see Config.Loops)
// that serve every connection without a goroutine or a buffer of its own
// while it is idle.
//
// # Shape
//
// Serve accepts on a net.Listener in the caller's goroutine and hands each
// new socket to the loop with the fewest connections. A loop owns an epoll
// instance, an eventfd to be woken with, one read buffer and one output
// buffer that every connection it serves shares. Per connection it keeps a
// small Conn: the descriptor, input bytes only while a request is partly
// received, output bytes only while the socket refuses them, and its place
// in one timer list.
//
// Config.Budget bounds what all connections hold together in input and
// output buffers larger than 4 KiB: a partial request that would need more
// is refused (Handler.OnBuffersFull) and its connection closed, so that many
// slow large requests cannot exhaust the server's memory.
//
// The protocol stays outside: Handler.OnData is given the bytes buffered for
// a connection, appends replies to the loop's output buffer and says how
// much input it consumed. The engine writes each batch of replies with one
// write(2).
//
// # Readiness
//
// Descriptors are registered level-triggered for EPOLLIN (with EPOLLRDHUP
// and EPOLLPRI, which only say that a short read may not have drained the
// socket). A loop reads a connection once per readiness report, so a client
// that never stops sending cannot starve the others, and no read is spent
// learning EAGAIN: a short read means the socket is drained, a full one
// leaves the descriptor ready for the next epoll_wait. EPOLLOUT replaces
// EPOLLIN (which is the backpressure) only while a write was partial;
// otherwise a registration changes (epoll_ctl MOD) only while a request is
// held, when a connection closes, and around a loop's wait alone (below),
// never per request.
//
// Epoll's ready list is first come, first served: under load a descriptor
// that becomes ready waits for every one ready before it. A new
// connection must not wait two such turns (10,000 busy connections made
// each tens of milliseconds), so a loop looks at its wake-up flag after
// every round, not only when the eventfd's readiness comes round, and reads
// a new connection once when it installs it: a client usually sends its
// first request as soon as it is connected.
//
// # Blocking
//
// A loop never blocks in a system call. Its epoll descriptor is itself
// pollable, so it is registered with Go's network poller (as an os.File)
// and the loop goroutine parks there like any goroutine waiting for a
// socket; epoll_wait is only called with a zero timeout, read and write only
// on non-blocking sockets, all as raw system calls. After a round that
// drained every socket it handled, the loop parks without the empty
// epoll_wait that would confirm it: each new readiness wakes Go's poller
// anew (see loop.step). A loop blocked in
// epoll_wait would hold an OS thread and a P in the syscall state, which
// keeps the runtime's sysmon from sleeping and has it retake those Ps, at a
// cost in CPU and latency; parked in the poller, an idle engine leaves every
// P idle (EA-CONC-4).
//
// A loop with a single connection waits on that connection instead: a
// duplicate of its descriptor, registered with Go's poller, for as long as
// it stays alone (loop.waitAlone). With one client every request wakes
// the loop, and a wake-up that comes straight from the socket is shorter
// than one through an epoll descriptor nested in Go's; no epoll_wait
// follows it either, as the loop reads the connection until a read finds
// nothing (it is disabled in the epoll set meanwhile): 1.02-1.13x rather
// than 0.99-1.00x the comparator's throughput at one connection,
// 0.73-0.81x rather than 0.83-0.84x its CPU per request. The eventfd
// cannot reach that wait, so whoever wakes the loop also sets the file's
// deadline in the past; the loop's timers are moved to that file
// meanwhile.
//
// # Handlers that block
//
// A Handler must not block the loop. One that must wait (the reference's
// tests hold requests in progress this way) calls Conn.Hold and answers
// later from another goroutine with Pending.Resume; the connection's input
// waits meanwhile, so replies keep their order.
//
// # Timers
//
// Every connection is in at most one list per loop: partial request (read
// timeout), idle (idle timeout), write stalled (write timeout) or lingering
// close. All members of a list share its timeout, so appending at the tail
// keeps each list sorted by deadline and every update is O(1). The
// earliest head's deadline is the read deadline of the file the loop parks
// on; with the lists empty there is none: an idle server uses no CPU.
//
// # Stopping
//
// Shutdown stops accepting, then every loop reads what each connection has
// already delivered, answers the whole requests in it, writes the replies
// and closes the connection; it returns when all are closed. Close closes
// everything at once.
//
// The engine needs Linux; elsewhere New returns ErrUnsupported and the
// server keeps its goroutine-per-connection engine.
package eventloop
