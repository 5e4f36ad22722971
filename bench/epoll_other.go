//go:build !linux

package bench

import (
	"errors"
	"sync/atomic"
	"time"
)

const epollSupported = false

type epollDriver struct{}

// epollConn has the field the portable code reads (a closed connection
// has fd -1); the driver never runs here.
type epollConn struct{ fd int }

func newEpollDriver([]*worker) (*epollDriver, error) { return nil, errors.ErrUnsupported }

func (*epollDriver) run(*Load, *atomic.Bool, time.Time, int, bool) {}

func (*epollDriver) close() {}
