package eventloop

import (
	"log/slog"
	"net"
	"time"

	"echoadd/reference/internal/budget"
)

// Handler is the protocol side of the engine. A loop calls it from its own
// goroutine, one connection at a time; it must not block or keep in or out.
type Handler interface {
	// OnData is given in, every byte received on c and not yet consumed, and
	// out, the loop's empty output buffer. It appends the replies to the
	// whole requests at the start of in to out and returns how many bytes of
	// in it consumed. It may stop early, for instance once out holds 64 KiB:
	// the engine writes out and calls again with the rest. Consuming nothing
	// means "need more bytes". A closeAfter error asks for the connection
	// to be closed once out is written, and is OnClose's err then; the rest
	// of in is dropped.
	OnData(c *Conn, in, out []byte) (consumed int, reply []byte, closeAfter error)
	// OnReadTimeout is called when a request has been partly received for
	// longer than Config.ReadTimeout. What it appends to out is written
	// before the connection is closed.
	OnReadTimeout(c *Conn, out []byte) []byte
	// OnBuffersFull is called when c's partial request needs more memory
	// than Config.Budget has left. What it appends to out is written before
	// the connection is closed; the request is dropped.
	OnBuffersFull(c *Conn, out []byte) []byte
	// OnOpen is called once per connection served (not for one refused at
	// MaxConns), when its loop takes it.
	OnOpen(c *Conn)
	// OnClose is called once per connection that reached OnData's loop,
	// as it is closed, while its descriptor is still open (RemoteAddr
	// works); err says why: nil when the client closed at a request
	// boundary, io.ErrUnexpectedEOF inside a request, the first reason
	// the server had for closing it (ErrIdleTimeout, ErrReadTimeout,
	// ErrBuffersFull, ErrShuttingDown, ErrWriteTimeout, OnData's
	// closeAfter) or the failed system call's error.
	OnClose(c *Conn, err error)
}

// Config configures an Engine. The zero value of each field means what its
// comment says.
type Config struct {
	Handler Handler
	// Loops is the number of epoll loops; 0 means half of GOMAXPROCS, at
	// least 1. Each busy loop keeps a CPU busy, and on a server most of the
	// cost of a request is the kernel's (the loopback or NIC work done in
	// read and write, softirqs, waking the peer): on 2 CPUs shared with
	// the load generator, 1 loop served 1.13-1.16x the throughput of the
	// goroutine-per-connection comparator at 64 and 256 connections with
	// 0.61-0.68x its CPU per request, 2 loops only 1.01-1.14x with
	// 0.90-1.02x.
	Loops int
	// ReadBufferSize is each loop's read buffer; 0 means 64 KiB.
	ReadBufferSize int
	// ReadTimeout closes a connection whose request has been partly received
	// for longer than this (EA-LIM-3), after Handler.OnReadTimeout; 0 means
	// no limit.
	ReadTimeout time.Duration
	// IdleTimeout closes a connection with no request in progress for longer
	// than this (EA-LIM-4); 0 means no limit.
	IdleTimeout time.Duration
	// WriteTimeout closes a connection whose peer has not taken a pending
	// reply for longer than this; 0 means no limit.
	WriteTimeout time.Duration
	// LingerTimeout bounds how long a connection closed by the server (after
	// a fatal error reply, a timeout or at the connection limit) keeps
	// reading and discarding input after its last reply and FIN, so that
	// the close does not turn into a reset that could destroy that reply;
	// 0 means 2 s. While the kernel still holds replies the client has not
	// taken, it lingers on, up to WriteTimeout from the FIN (MaxUnsentLinger
	// when WriteTimeout is 0): the time a client is given to take replies
	// anyway, and a bound on how long one that never reads keeps its slot.
	LingerTimeout time.Duration
	// MaxConns is the largest number of connections served at once; a
	// connection beyond it gets Overloaded and is closed (EA-LIM-5). 0 means
	// no limit.
	MaxConns int
	// Budget bounds the bytes that all connections hold between them in
	// input and output buffers larger than 4 KiB. A partial request that
	// needs more than is left gets Handler.OnBuffersFull and its connection
	// is closed; replies are counted, never refused. nil means no limit.
	Budget *budget.Budget
	// Overloaded is written to a connection refused at MaxConns.
	Overloaded []byte
	// Refused is called for each connection refused at MaxConns, on the
	// goroutine of the Serve that accepted it, before Overloaded is
	// written; c's RemoteAddr works during the call. It must not block: it
	// holds up accepting. The engine itself does not log refusals, so that
	// the caller can limit how often they are logged; nil means they are
	// not.
	Refused func(c *Conn)
	// Fallback serves a connection accepted from a listener whose
	// connections are not sockets the engine can adopt (a wrapped
	// net.Conn); nil means such connections are closed.
	Fallback func(net.Conn)
	// Logger receives accept errors and other events; nil discards them.
	Logger *slog.Logger
}

const (
	defaultReadBufferSize = 64 << 10
	defaultLingerTimeout  = 2 * time.Second
	// MaxUnsentLinger bounds a linger kept for replies the kernel still
	// holds when there is no WriteTimeout.
	MaxUnsentLinger = 30 * time.Second
)

// Conn is one connection served by a loop. Its fields belong to that loop's
// goroutine; a Handler may use it only during the call it was given in.
type Conn struct {
	fd  int
	seq int32  // tells this connection's epoll events from a previous owner's of fd
	in  []byte // received, not yet consumed: only while a request is partial
	out []byte // replies the socket has not taken yet
	// charged: bytes of in and out counted against Config.Budget.
	charged int
	// why the server began closing it, for OnClose; nil until then.
	why   error
	state connState
	// counted: served, against MaxConns; false for one refused at the limit.
	counted bool
	held    bool // a reply is being prepared elsewhere (Hold); input waits
	// drainLeft: reads left to answer what was delivered before Shutdown.
	drainLeft uint8
	// drainBusy: something was pending on it when Shutdown began.
	drainBusy bool
	tcp       bool // a TCP socket (see loop.onEvent)
	// peer is the client's address as accept reported it: getpeername
	// fails once the client has reset.
	peer net.Addr
	loop *loop
	// Timer list membership (see timerList).
	list       *timerList
	since      time.Duration // when it entered list, on the loop's clock
	prev, next *Conn
	lingerFrom time.Duration // when the FIN was sent (stateLingering), on the loop's clock
	// Context is free for the Handler's per-connection state.
	Context any
}

type connState uint8

const (
	stateOpen      connState = iota
	stateClosing             // close once out is written
	stateLingering           // FIN sent; discarding input until EOF or LingerTimeout (longer while replies are unsent)
	stateClosed
)

// timerList is an intrusive FIFO of connections that share one timeout:
// appending at the tail keeps it sorted by deadline.
type timerList struct {
	timeout    time.Duration
	head, tail *Conn
	onExpire   func(*Conn)
}

func (t *timerList) push(c *Conn, now time.Duration) {
	if c.list != nil {
		c.list.remove(c)
	}
	c.list, c.since, c.prev, c.next = t, now, t.tail, nil
	if t.tail != nil {
		t.tail.next = c
	} else {
		t.head = c
	}
	t.tail = c
}

func (t *timerList) remove(c *Conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		t.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		t.tail = c.prev
	}
	c.list, c.prev, c.next = nil, nil, nil
}

// untimed removes c from whatever list it is in.
func untimed(c *Conn) {
	if c.list != nil {
		c.list.remove(c)
	}
}
