//go:build !linux

package eventloop

import (
	"context"
	"net"
)

// Engine is the epoll engine; on this system it cannot be created.
type Engine struct{}

// New returns ErrUnsupported: the engine needs epoll.
func New(Config) (*Engine, error) { return nil, ErrUnsupported }

// Serve returns ErrUnsupported.
func (*Engine) Serve(net.Listener) error { return ErrUnsupported }

// Shutdown returns nil: there is nothing to stop.
func (*Engine) Shutdown(context.Context) error { return nil }

// Close returns nil: there is nothing to stop.
func (*Engine) Close() error { return nil }

// Conns returns 0.
func (*Engine) Conns() int { return 0 }

type loop struct{}

// Pending is a reply prepared outside the loop; see the Linux engine.
type Pending struct{}

// Hold returns nil: there is no engine here.
func (*Conn) Hold() *Pending { return nil }

// Resume does nothing.
func (*Pending) Resume([]byte, bool) {}

// RemoteAddr returns nil.
func (*Conn) RemoteAddr() net.Addr { return nil }
