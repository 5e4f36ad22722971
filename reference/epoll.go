package reference

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"

	"echoadd/protocol"
	"echoadd/reference/internal/eventloop"
)

// Engines: how a Server serves its connections (Server.Engine).
const (
	// EngineEpoll serves every connection from a few epoll loops (half as
	// many as GOMAXPROCS), with no goroutine and no buffer of its own while idle:
	// see reference/internal/eventloop. Linux only.
	EngineEpoll = "epoll"
	// EngineGoroutine serves each connection in its own goroutine through
	// protocol.Decoder; it runs everywhere.
	EngineGoroutine = "goroutine"
)

// DefaultEngine is the engine used when Server.Engine is empty: EngineEpoll
// on Linux, else EngineGoroutine.
var DefaultEngine = defaultEngine()

func defaultEngine() string {
	if runtime.GOOS == "linux" {
		return EngineEpoll
	}
	return EngineGoroutine
}

// loops returns the epoll engine to serve with, starting it on first use,
// or nil for the goroutine engine.
func (s *Server) loops() (*eventloop.Engine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.Engine {
	case "", EngineEpoll:
	case EngineGoroutine:
		return nil, nil
	default:
		return nil, fmt.Errorf("reference: unknown Engine %q: use %q or %q", s.Engine, EngineEpoll, EngineGoroutine)
	}
	if s.epoll != nil {
		return s.epoll, nil
	}
	if s.inShutdown {
		// Shutdown or Close has begun and did not see an engine to stop:
		// one started now would run for ever.
		return nil, ErrServerClosed
	}
	overloaded, _ := s.Framing.AppendMessage(nil, protocol.ErrorReply(protocol.Code_CODE_OVERLOADED, ""))
	h := &loopHandler{s: s, framing: s.Framing, max: s.maxMessageSize(), handle: s.handle, log: s.logger()}
	h.debug = h.log.Enabled(context.Background(), slog.LevelDebug)
	e, err := eventloop.New(eventloop.Config{
		Handler:       h,
		ReadTimeout:   s.ReadTimeout,
		WriteTimeout:  s.WriteTimeout,
		IdleTimeout:   s.IdleTimeout,
		LingerTimeout: lingerTimeout,
		MaxConns:      s.MaxConns,
		Budget:        s.budget,
		Overloaded:    overloaded,
		Refused:       h.refused,
		Fallback:      s.startConn,
		Logger:        s.logger(),
	})
	if errors.Is(err, eventloop.ErrUnsupported) && s.Engine == "" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.epoll = e
	return e, nil
}

// serveLoops is Serve on the epoll engine.
func (s *Server) serveLoops(l net.Listener, e *eventloop.Engine) error {
	err := e.Serve(l)
	if errors.Is(err, eventloop.ErrClosed) || s.shuttingDown() {
		return ErrServerClosed
	}
	// The listener failed. If nothing else uses the loops, stop them, so
	// that a Server that serves nothing runs no goroutine; a later Serve
	// starts new ones.
	s.mu.Lock()
	idle := s.epoll == e && len(s.listeners) <= 1 && e.Conns() == 0
	if idle {
		s.epoll = nil
	}
	s.mu.Unlock()
	if idle {
		e.Close()
	}
	return err
}

// loopHandler is the protocol side of the epoll engine: Framing.Split
// delimits requests in the bytes a loop has buffered, eventloop.AppendReply
// answers the common ones without allocating, and protocol.DecodeRequest
// with Handle (or the test hook) the rest, with the same replies and the
// same closing rules as the goroutine engine (conn.go).
type loopHandler struct {
	s       *Server
	framing protocol.Framing
	max     int
	handle  func(*protocol.ClientMessage) *protocol.ServerMessage // nil: Handle, fast path first
	log     *slog.Logger
	debug   bool
}

func (h *loopHandler) OnData(c *eventloop.Conn, in, out []byte) (int, []byte, error) {
	consumed := 0
	for len(out) < flushThreshold {
		msg, n, err := h.framing.Split(in[consumed:], h.max)
		consumed += n
		if errors.Is(err, protocol.ErrIncomplete) {
			break
		}
		if err != nil {
			// Too large or unsplittable: the stream is out of sync (EA-MAL-5,
			// EA-LIM-2).
			if protocol.ErrorCode(err) == protocol.Code_CODE_UNSPECIFIED {
				h.log.Warn("connection failed", slog.Any("err", err), h.remote(c))
				return consumed, out, err
			}
			h.s.faults.stream.add(func() []slog.Attr { return append(h.remoteAttrs(c)(), slog.Any("err", err)) })
			return consumed, h.append(out, protocol.ErrorReplyFor(err)), err
		}
		if h.handle == nil {
			var ok bool
			if out, ok = eventloop.AppendReply(out, h.framing, msg); ok {
				continue
			}
		}
		req, err := protocol.DecodeRequest(msg)
		if err != nil {
			// The frame was delimited, so the stream is still in sync
			// (EA-MAL-2, EA-MAL-3, EA-MAL-4).
			if h.debug {
				h.log.Debug("malformed request", slog.Any("err", err), h.remote(c))
			}
			out = h.append(out, protocol.ErrorReplyFor(err))
			continue
		}
		if h.handle != nil {
			// A handler that may block (tests hold requests with it) runs
			// off the loop; the loop goes on serving the others.
			p := c.Hold()
			h.s.held.Go(func() {
				reply, _ := h.framing.AppendMessage(nil, h.handle(req))
				p.Resume(reply, false)
			})
			return consumed, out, nil
		}
		out = h.append(out, Handle(req))
	}
	return consumed, out, nil
}

func (h *loopHandler) append(out []byte, reply *protocol.ServerMessage) []byte {
	b, err := h.framing.AppendMessage(out, reply)
	if err != nil {
		h.log.Warn("cannot encode reply", slog.Any("err", err))
		return out
	}
	return b
}

func (h *loopHandler) OnReadTimeout(c *eventloop.Conn, out []byte) []byte {
	h.s.faults.readTimeout.add(h.remoteAttrs(c))
	return h.append(out, protocol.ErrorReply(protocol.Code_CODE_TIMEOUT, "")) // EA-LIM-3
}

// OnBuffersFull refuses a request that MaxBuffered leaves no room for, as
// the goroutine engine does when its Decoder reports
// protocol.ErrOverloaded.
func (h *loopHandler) OnBuffersFull(c *eventloop.Conn, out []byte) []byte {
	h.s.bufferRefusals.add(h.remoteAttrs(c))
	return h.append(out, protocol.ErrorReplyFor(protocol.ErrOverloaded))
}

func (h *loopHandler) OnOpen(c *eventloop.Conn) {
	if h.debug {
		h.log.Debug("connection opened", h.remote(c))
	}
}

func (h *loopHandler) OnClose(c *eventloop.Conn, err error) {
	if errors.Is(err, eventloop.ErrWriteTimeout) {
		h.s.faults.writeTimeout.add(h.remoteAttrs(c))
	}
	if !h.debug {
		return
	}
	// The goroutine engine's words for the same cases (conn.finish).
	var why string
	switch {
	case err == nil:
		why = "client closed"
	case errors.Is(err, io.ErrUnexpectedEOF):
		why = "client closed inside a request"
	case errors.Is(err, eventloop.ErrWriteTimeout):
		why = "write timeout"
	default:
		why = err.Error()
	}
	h.log.Debug("connection closed", h.remote(c), slog.String("why", why))
}

// refused logs, or counts, a connection refused at MaxConns (EA-LIM-5);
// see rateLimitedLog.
func (h *loopHandler) refused(c *eventloop.Conn) {
	h.s.refusals.add(h.remoteAttrs(c))
}

// remoteAttrs names c in a line of a rateLimitedLog, when it writes one.
func (h *loopHandler) remoteAttrs(c *eventloop.Conn) func() []slog.Attr {
	return func() []slog.Attr { return []slog.Attr{h.remote(c)} }
}

// remote is the peer's address as a log attribute: the one accept
// reported, or else getpeername's, or "?".
func (h *loopHandler) remote(c *eventloop.Conn) slog.Attr {
	if a := c.RemoteAddr(); a != nil {
		return slog.String("remote", a.String())
	}
	return slog.String("remote", "?")
}
