package eventloop

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// TemporaryAcceptError reports whether an accept error is a shortage that
// may pass (EMFILE, ENFILE, ENOBUFS, ENOMEM), a connection lost before it
// was accepted, or a listener's deadline, rather than a dead listener: the
// accepting goroutine waits (AcceptOutage) and tries again. Both engines
// use it, so that one listener is served alike by either.
func TemporaryAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// AcceptOutage logs a run of failed accepts (out of file descriptors or
// memory): a warning with advice at the first failure, each retry at debug
// level, and one line when accepting works again, with how many failed and
// for how long. Waiting clients sit in the listen backlog meanwhile. Both
// engines use it; it belongs to one accepting goroutine.
type AcceptOutage struct {
	Log    *slog.Logger
	since  time.Time
	failed int
}

// Failed logs a failed accept and the delay before the next try.
func (o *AcceptOutage) Failed(err error, delay time.Duration) {
	o.failed++
	if o.failed > 1 {
		o.Log.Debug("accept failed; retrying", "err", err, "delay", delay)
		return
	}
	o.since = time.Now()
	msg := "accept failed; retrying until it works, new clients wait meanwhile"
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		msg = "accept failed: out of file descriptors; retrying until one is free, new clients wait meanwhile: raise the limit (ulimit -n) or set --max-conns well below it (each connection refused at the limit holds a descriptor for up to a second as it closes)"
	}
	o.Log.Warn(msg, "err", err, "delay", delay)
}

// Accepted ends the run of failures, if any.
func (o *AcceptOutage) Accepted() {
	if o.failed == 0 {
		return
	}
	o.Log.Info("accepting again", "failed_accepts", o.failed, "for", time.Since(o.since).Round(time.Millisecond))
	o.failed = 0
}
