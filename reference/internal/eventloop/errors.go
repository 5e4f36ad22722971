package eventloop

import "errors"

// ErrUnsupported is returned by New where there is no epoll (any system but
// Linux). Callers fall back to a portable engine.
var ErrUnsupported = errors.New("eventloop: the epoll engine needs Linux")

// ErrClosed is returned by Serve after Shutdown or Close.
var ErrClosed = errors.New("eventloop: engine closed")

// The reasons OnClose is given for the connections the server closes; their
// texts are the words the goroutine engine logs for the same cases.
var (
	ErrIdleTimeout  = errors.New("idle timeout")
	ErrReadTimeout  = errors.New("read timeout")
	ErrBuffersFull  = errors.New("buffers full")
	ErrShuttingDown = errors.New("server shutting down")
)

// ErrWriteTimeout is given to Handler.OnClose for a connection closed by
// Config.WriteTimeout: its client took no reply for that long.
var ErrWriteTimeout = errors.New("eventloop: the client took no reply within the write timeout")
