// Package reference is the reference Echo/Add server: the implementation the
// conformance suite is checked against, and a usable server in its own right.
//
// Server holds the configuration (framing, limits, timeouts) and the
// lifecycle: Serve a listener, Shutdown gracefully, Close hard. Handle is the
// protocol's request semantics as a pure function. Each connection is served
// by its own goroutine (conn.go); that engine is kept apart from Server and
// Handle so that another one (an event-driven reader built on
// protocol.Framing.Split) can replace it behind the same API.
//
// PROTOCOL.md at the repository root is the specification; comments quote its
// requirement IDs.
package reference
