package harness

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"echoadd/protocol"
)

// forgetLags empties the samples, which are the process's, after a test.
func forgetLags(t *testing.T) { t.Cleanup(forgetLagsNow) }

// TestLateReplyReadByAHeldUpHarness: a reply late by no more than the
// harness was held up meanwhile is noted, not failed; one later than that
// still fails EA-CONN-6.
func TestLateReplyReadByAHeldUpHarness(t *testing.T) {
	forgetLags(t)
	slow := replyWith(func(r *protocol.ClientMessage) []byte {
		time.Sleep(300 * time.Millisecond) // 100 ms beyond dial's 200 ms bound
		return encode(protocol.EchoReply(r.GetEchoMessage().GetContent()))
	})
	for _, tt := range []struct {
		heldUp time.Duration
		fails  bool
	}{{150 * time.Millisecond, false}, {20 * time.Millisecond, true}} {
		c := dial(t, fakeServer(t, slow))
		now := time.Now()
		noteLag(lagSample{from: now, to: now.Add(50 * time.Millisecond), late: tt.heldUp})
		err := c.Echo("late")
		switch {
		case tt.fails && (err == nil || failureOf(t, err).IDs[0] != "EA-CONN-6"):
			t.Errorf("held up %v: got %v, want EA-CONN-6", tt.heldUp, err)
		case !tt.fails && err != nil:
			t.Errorf("held up %v: got %v, want the reply excused", tt.heldUp, err)
		case !tt.fails && !strings.Contains(c.Transcript().String(), "not counted against EA-CONN-6"):
			t.Errorf("held up %v: the transcript lacks the note:\n%s", tt.heldUp, c.Transcript())
		}
		forgetLagsNow()
	}
}

func forgetLagsNow() {
	lags.mu.Lock()
	defer lags.mu.Unlock()
	lags.samples, lags.next = [lagKept]lagSample{}, 0
}

// TestWatchLag: with one P, a goroutine that keeps it busy holds the
// watch up until the scheduler preempts it, which the watch records; its
// goroutine returns when told to.
func TestWatchLag(t *testing.T) {
	forgetLags(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ctx, cancel := context.WithCancel(context.Background())
	wait := WatchLag(ctx)
	from := time.Now()
	for time.Since(from) < 200*time.Millisecond { // busy, for the one P
	}
	cancel()
	wait()
	if held := HeldUp(from, time.Now()); held < lagNoted {
		t.Errorf("HeldUp over 200 ms of a busy P = %v, want at least %v", held, lagNoted)
	}
	if held := HeldUp(time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)); held != 0 {
		t.Errorf("HeldUp of a time to come = %v, want 0", held)
	}
}
