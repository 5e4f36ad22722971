// Package reference is the reference Echo/Add server: the implementation the
// conformance suite is checked against, and a usable server in its own right.
//
// Server holds the configuration (framing, limits, timeouts) and the
// lifecycle: Serve a listener, Shutdown gracefully, Close hard. Handle is the
// protocol's request semantics as a pure function. Two engines serve the
// connections behind that API (Server.Engine): on Linux by default, a few
// epoll loops that hold no goroutine and no buffer for an idle connection
// (epoll.go, internal/eventloop), answering the common requests through a
// zero-allocation fast path held byte for byte to Handle; everywhere, a
// goroutine per connection reading through protocol.Decoder (conn.go). Both
// delimit requests with protocol.Framing.Split.
//
// PROTOCOL.md at the repository root is the specification; comments quote its
// requirement IDs.
package reference
