package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// stuckWriter blocks every Write until released, like a pipe nobody reads.
type stuckWriter struct {
	released chan struct{}
	mu       sync.Mutex
	buf      bytes.Buffer
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	<-w.released
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// A log writer that blocks must not block the server: lines beyond the
// queue are dropped, counted, and the count is logged once writing resumes.
func TestLogSinkNeverBlocks(t *testing.T) {
	w := &stuckWriter{released: make(chan struct{})}
	const queue, lines = 4, 100
	s := newLogSink(w, queue, func(w io.Writer, dropped int64) { fmt.Fprintf(w, "dropped=%d\n", dropped) })
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := range lines {
			fmt.Fprintf(s, "line %d\n", i)
		}
	}()
	select {
	case <-wrote:
	case <-time.After(eventually):
		close(w.released)
		t.Fatalf("%d log writes still blocked after %v, want each to return at once", lines, eventually)
	}
	close(w.released)
	for deadline := time.Now().Add(eventually); s.pending.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // until the queue is written out
	}
	fmt.Fprintf(s, "after\n")
	s.Close(eventually)
	out := w.buf.String()
	if !strings.HasPrefix(out, "line 0\n") || !strings.HasSuffix(out, "\nafter\n") || !strings.Contains(out, "\ndropped=") {
		t.Errorf("want the first line first, the last one last, and the count of dropped lines right before it; got:\n%s", out)
	}
	kept := strings.Count(out, "line ")
	dropped := 0 // the sum of the notices: one per gap
	for line := range strings.Lines(out) {
		var n int
		if _, err := fmt.Sscanf(line, "dropped=%d", &n); err == nil {
			dropped += n
		}
	}
	if kept+dropped != lines || kept > queue+1 {
		t.Errorf("%d lines written and %d counted as dropped, want %d in all, at most %d written (the queue, and one being written); got:\n%s", kept, dropped, lines, queue+1, out)
	}
}

// slowWriter takes a while over each write, like a slow log reader.
type slowWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// Flush makes room for a line that must not be dropped (the server's
// "stopped"), after a burst that filled the queue.
func TestLogSinkFlushKeepsTheLastLine(t *testing.T) {
	w := &slowWriter{}
	s := newLogSink(w, 4, func(w io.Writer, dropped int64) { fmt.Fprintf(w, "dropped=%d\n", dropped) })
	for i := range 100 {
		fmt.Fprintf(s, "line %d\n", i)
	}
	s.Flush(eventually)
	fmt.Fprintf(s, "stopped\n")
	s.Close(eventually)
	if out := w.buf.String(); !strings.HasSuffix(out, "stopped\n") {
		t.Errorf("the last line was dropped:\n%s", out)
	}
}
