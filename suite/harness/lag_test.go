package harness

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"echoadd/protocol"
)

// forgetLags empties the samples, which are the process's, after a test.
func forgetLags(t *testing.T) { t.Cleanup(forgetLagsNow) }

func forgetLagsNow() {
	lags.mu.Lock()
	defer lags.mu.Unlock()
	lags.samples, lags.next = [lagKept]lagSample{}, 0
}

// TestLateReplyReadByAHeldUpHarness: a reply read 1.3 s after its request,
// against a bound of 1 s, is excused only by a hold of the harness that
// ended just before it was read and lasted as long as the excess; a hold
// that ended long before the read (a server late on its own, while the
// machine had a hiccup earlier) or a short one excuses nothing.
func TestLateReplyReadByAHeldUpHarness(t *testing.T) {
	forgetLags(t)
	silent := fakeServer(t, func(net.Conn) {})
	t0 := time.Now()
	read := t0.Add(1300 * time.Millisecond)
	hold700 := lagSample{from: read.Add(-710 * time.Millisecond), to: read.Add(-5 * time.Millisecond), late: 700 * time.Millisecond}
	for _, tt := range []struct {
		name    string
		hold    lagSample
		first   time.Time // the reply's first bytes; its last come at read
		excused bool
	}{
		{"a 700 ms hold that ended as it read", hold700, read, true},
		{"a 700 ms hold that ended 500 ms before", lagSample{from: t0.Add(100 * time.Millisecond), to: t0.Add(800 * time.Millisecond), late: 700 * time.Millisecond}, read, false},
		{"a 100 ms hold that ended as it read", lagSample{from: read.Add(-110 * time.Millisecond), to: read.Add(-5 * time.Millisecond), late: 100 * time.Millisecond}, read, false},
		{"no hold", lagSample{}, read, false},
		// Timed by the kernel: a large reply's first bytes came before the
		// hold, its last (held back by flow control) as it ended.
		{"a large reply's last bytes as a 700 ms hold ended", hold700, t0.Add(200 * time.Millisecond), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			forgetLagsNow()
			noteLag(tt.hold)
			c, err := Dial(context.Background(), silent, Options{Latency: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.stamped = nil // as where the kernel gives no receive times
			r := &Reply{Index: 1, Msg: protocol.EchoReply("x"), Sent: t0, First: tt.first, Last: read}
			err = c.late(r, r.Latency())
			switch {
			case tt.excused && err != nil:
				t.Errorf("got %v, want the reply excused", err)
			case tt.excused && !strings.Contains(c.Transcript().String(), "not counted against EA-CONN-6"):
				t.Errorf("the transcript lacks the note:\n%s", c.Transcript())
			case !tt.excused && (err == nil || failureOf(t, err).IDs[0] != "EA-CONN-6"):
				t.Errorf("got %v, want EA-CONN-6", err)
			}
			if again := c.late(r, r.Latency()); again != nil || strings.Count(c.Transcript().String(), "not counted") > 1 {
				t.Errorf("judged twice: %v\n%s", again, c.Transcript())
			}
		})
	}
}

// TestKernelTimeInsideAHold: a reply the kernel timed 1.3 s after its
// request, in the middle of a 1 s hold of the harness that ended 300 ms
// later, came late whatever the hold: it is not excused.
func TestKernelTimeInsideAHold(t *testing.T) {
	forgetLags(t)
	c := dial(t, fakeServer(t, func(net.Conn) {}))
	t0 := time.Now()
	arrived := t0.Add(1300 * time.Millisecond)
	noteLag(lagSample{from: t0.Add(600 * time.Millisecond), to: arrived.Add(300 * time.Millisecond), late: time.Second})
	r := &Reply{Index: 1, Msg: protocol.EchoReply("x"), Sent: t0, First: arrived, Last: arrived}
	if err := c.late(r, r.Latency()); err == nil || failureOf(t, err).IDs[0] != "EA-CONN-6" {
		t.Errorf("got %v, want EA-CONN-6", err)
	}
}

// TestWatchLag: with one P, a goroutine that keeps it busy holds the
// watch up until the scheduler preempts it, which the watch records as a
// hold ending about when the busy loop does; its goroutine returns when
// told to.
func TestWatchLag(t *testing.T) {
	forgetLags(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ctx, cancel := context.WithCancel(context.Background())
	wait := WatchLag(ctx)
	start := time.Now()
	for time.Since(start) < 200*time.Millisecond { // busy, for the one P
	}
	end := time.Now()
	cancel()
	wait()
	lags.mu.Lock()
	var most time.Duration
	for _, s := range lags.samples {
		if s.to.After(start) && s.late > most {
			most = s.late
		}
	}
	lags.mu.Unlock()
	if most < lagNoted {
		t.Errorf("the longest hold over 200 ms of a busy P = %v, want at least %v", most, lagNoted)
	}
	if held := HeldUpUntil(end.Add(time.Hour)); held != 0 {
		t.Errorf("HeldUpUntil an hour on = %v, want 0", held)
	}
}

// TestLatencyIsTheKernels: a reply that came at once but was read 300 ms
// later, the harness busy meanwhile, is on time by the kernel's receive
// time; timed by the read, it would fail a 200 ms bound.
func TestLatencyIsTheKernels(t *testing.T) {
	echo := replyWith(func(r *protocol.ClientMessage) []byte {
		return encode(protocol.EchoReply(r.GetEchoMessage().GetContent()))
	})
	for _, stamped := range []bool{true, false} {
		c := dial(t, fakeServer(t, echo))
		if c.stamped == nil {
			t.Skip("no receive timestamps on this system")
		}
		if !stamped {
			c.stamped = nil
		}
		if err := c.Send(protocol.EchoRequest("at once")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the harness held up: the reply waits in the socket
		err := c.ExpectEcho("at once")
		if stamped && err != nil {
			t.Errorf("kernel time: got %v, want the reply on time", err)
		}
		if !stamped && (err == nil || failureOf(t, err).IDs[0] != "EA-CONN-6") {
			t.Errorf("read time: got %v, want EA-CONN-6", err)
		}
	}
}
