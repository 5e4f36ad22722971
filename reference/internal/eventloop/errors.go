package eventloop

import "errors"

// ErrUnsupported is returned by New where there is no epoll (any system but
// Linux). Callers fall back to a portable engine.
var ErrUnsupported = errors.New("eventloop: the epoll engine needs Linux")

// ErrClosed is returned by Serve after Shutdown or Close.
var ErrClosed = errors.New("eventloop: engine closed")

// ErrWriteTimeout is given to Handler.OnClose for a connection closed by
// Config.WriteTimeout: its client took no reply for that long.
var ErrWriteTimeout = errors.New("eventloop: the client took no reply within the write timeout")
