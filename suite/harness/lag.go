package harness

import (
	"context"
	"sync"
	"time"
)

// The suite measures each reply's latency at the client (EA-CONN-6): from
// the request sent whole to the reply read whole. On a loaded
// machine, or under the race detector, the harness itself may run late,
// and read a reply long after it came. WatchLag measures that: a goroutine
// sleeps in short steps and records how much later than asked it woke up,
// which is how late any goroutine of this process could run then. A reply
// later than its bound only by as much as the harness was held up
// meanwhile is not counted against the server.

// lagStep is the watch's sleep; lagNoted the least lateness it records
// (timers fire up to about a millisecond late on an idle machine).
const (
	lagStep  = 5 * time.Millisecond
	lagNoted = 2 * time.Millisecond
	lagKept  = 4096 // samples: at least 20 s of a machine that is always late
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

// HeldUp is the longest the harness was held up between from and to, as
// far as WatchLag saw: the largest lateness of a sample overlapping that
// interval. Without a watch it is 0: every reply is judged as read.
func HeldUp(from, to time.Time) time.Duration {
	lags.mu.Lock()
	defer lags.mu.Unlock()
	var most time.Duration
	for _, s := range lags.samples {
		if s.late > most && s.to.After(from) && s.from.Before(to) {
			most = s.late
		}
	}
	return most
}
