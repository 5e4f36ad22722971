//go:build !linux

package bench

import (
	"errors"
	"sync/atomic"
	"time"
)

const epollSupported = false

type epollDriver struct{}

type epollConn struct{}

func newEpollDriver([]*worker) (*epollDriver, error) { return nil, errors.ErrUnsupported }

func (*epollDriver) run(*Load, *atomic.Bool, time.Time, int, bool) {}

func (*epollDriver) close() {}
