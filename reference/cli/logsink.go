package cli

import (
	"io"
	"sync/atomic"
	"time"
)

// logSink is the log's writer: it queues each line and returns at once,
// and one goroutine writes the queue out. A stderr that nobody reads (a
// paused terminal, "| less", a stuck log shipper) must not stop the server:
// the epoll engine logs from its event loop, and a write that blocks there
// blocks every connection. When the queue is full, lines are dropped and
// counted, and the next line queued is written after a notice of how many.
type logSink struct {
	w       io.Writer
	lines   chan logLine
	pending atomic.Int64 // lines queued or being written
	dropped atomic.Int64 // lines dropped since the last line queued
	notice  func(w io.Writer, dropped int64)
	stop    chan struct{}
	done    chan struct{}
}

// logQueue is how many lines wait at most: about 1 MB of log.
const logQueue = 4096

// newLogSink starts the goroutine writing to w; notice writes, to w, the
// line that says how many lines were dropped. Close stops it.
func newLogSink(w io.Writer, capacity int, notice func(w io.Writer, dropped int64)) *logSink {
	s := &logSink{w: w, lines: make(chan logLine, capacity), notice: notice, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// logLine is a queued line and how many were dropped just before it, or
// Flush's marker: reached is closed once the lines before it are written.
type logLine struct {
	text    []byte
	dropped int64
	reached chan struct{}
}

// Write queues a copy of p, or drops it if the queue is full; it never
// blocks and never fails.
func (s *logSink) Write(p []byte) (int, error) {
	s.pending.Add(1)
	l := logLine{text: append([]byte(nil), p...), dropped: s.dropped.Swap(0)}
	select {
	case s.lines <- l:
	default:
		s.pending.Add(-1)
		s.dropped.Add(1 + l.dropped)
	}
	return len(p), nil
}

func (s *logSink) run() {
	defer close(s.done)
	for {
		select {
		case l := <-s.lines:
			if l.reached != nil {
				close(l.reached)
				continue
			}
			if l.dropped > 0 {
				s.notice(s.w, l.dropped)
			}
			s.w.Write(l.text) //nolint:errcheck // nowhere to report a failing log
			s.pending.Add(-1)
		case <-s.stop:
			return
		}
	}
}

// Flush waits up to d for the lines queued before it to be written: it
// queues a marker behind them (waiting for room if the queue is full) and
// waits for the writer to reach it.
func (s *logSink) Flush(d time.Duration) {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	reached := make(chan struct{})
	select {
	case s.lines <- logLine{reached: reached}:
	case <-s.done:
		return
	case <-timeout.C:
		return
	}
	select {
	case <-reached:
	case <-s.done:
	case <-timeout.C:
	}
}

// Close waits up to d for the queued lines to be written, then stops the
// goroutine; lines written after it are dropped, and so are those still
// queued when d runs out (a stderr that is not read).
func (s *logSink) Close(d time.Duration) {
	s.Flush(d)
	close(s.stop)
	if s.pending.Load() == 0 {
		<-s.done
		if n := s.dropped.Swap(0); n > 0 {
			s.notice(s.w, n)
		}
	}
}
