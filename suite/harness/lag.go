package harness

import (
	"context"
	"sync"
	"time"
)

// The suite measures each reply's latency at the client (EA-CONN-6): from
// the request sent whole to the reply read whole. On a loaded machine, or
// under the race detector, the harness itself may be held up, and read a
// reply long after it came. WatchLag measures that: a goroutine sleeps in
// short steps and records how much later than asked it woke up. A process
// held up (descheduled, stopped, in a pause of the collector) runs none of
// its goroutines, so the reader of a reply that came meanwhile reads it
// when the hold ends, as the watch wakes. A reply read within lagNear of
// the end of such a hold, and later than its bound by no more than the
// hold lasted, may have come in time: it is not counted against the
// server. A hold that ended well before the read delayed nothing.

// lagStep is the watch's sleep; lagNoted the least lateness it records
// (timers fire up to about a millisecond late on an idle machine).
const (
	lagStep  = 5 * time.Millisecond
	lagNoted = 2 * time.Millisecond
	lagNear  = 50 * time.Millisecond // a read this close to a hold's end may have waited for it
	lagKept  = 4096                  // samples: at least 20 s of a machine that is always late
)

type lagSample struct {
	from, to time.Time // the step's sleep
	late     time.Duration
}

var lags struct {
	mu      sync.Mutex
	samples [lagKept]lagSample
	next    int
}

// WatchLag samples the harness's lateness until ctx ends; the function it
// returns waits until the sampling goroutine has returned.
func WatchLag(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(lagStep)
		defer t.Stop()
		for {
			from := time.Now()
			t.Reset(lagStep)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				now := time.Now()
				if late := now.Sub(from) - lagStep; late >= lagNoted {
					noteLag(lagSample{from: from, to: now, late: late})
				}
			}
		}
	}()
	return func() { <-done }
}

func noteLag(s lagSample) {
	lags.mu.Lock()
	defer lags.mu.Unlock()
	lags.samples[lags.next] = s
	lags.next = (lags.next + 1) % lagKept
}

// HeldUpUntil is how long the harness had been held up when it read at
// t: the lateness of a hold that ended within lagNear of t, as far as
// WatchLag saw (the longest, if several did). Without a watch, or with no
// hold ending near t, it is 0.
func HeldUpUntil(t time.Time) time.Duration {
	lags.mu.Lock()
	defer lags.mu.Unlock()
	var most time.Duration
	for _, s := range lags.samples {
		if d := s.to.Sub(t); s.late > most && d <= lagNear && d >= -lagNear {
			most = s.late
		}
	}
	return most
}
