//go:build unix

package selftest

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"echoadd/suite/harness"
	"echoadd/suite/report"
)

// A run against a target that never answers must end in bounded, short
// time: the first failure is reported on the requirement it breaks, and the
// specs after it skip, naming it, instead of each waiting out its own
// timeouts (about 10 minutes for the whole suite). The run ends with advice
// (harness.NoReplyHint).
const (
	unansweringWall  = 45 * time.Second  // what the run may take
	unansweringBound = 100 * time.Second // when the runner is killed
)

// testPorts are the ports the test listeners pick from, at random.
const testPortMin, testPortMax = 20000, 29999

func TestUnansweringTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite against two targets that never answer")
	}
	for _, tc := range []struct {
		name   string
		listen func(t *testing.T) string
	}{
		// Connections complete in the kernel until the backlog is full,
		// then connects time out.
		{"never accepts, backlog 4", func(t *testing.T) string { return listenNoAccept(t, 4) }},
		// Every connection is accepted and read from, none is answered.
		{"accepts and reads, never replies", listenMute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tc.listen(t)
			res := runRunnerWithin(unansweringBound, t.TempDir(), "unanswering", "--target", addr)
			if res.err != nil {
				t.Fatalf("%v\nstdout tail:\n%s", res.err, tail(res.stdout, 40))
			}
			t.Logf("run took %v", res.wall.Round(time.Millisecond))
			if res.wall > unansweringWall {
				t.Errorf("the run took %v, want at most %v", res.wall.Round(time.Millisecond), unansweringWall)
			}
			if res.exit != report.ExitNotConformant || res.report.ExitCode != res.exit {
				t.Errorf("exit code %d (report says %d), want %d\n%s", res.exit, res.report.ExitCode, report.ExitNotConformant, res.explain())
			}
			if len(res.failed(report.Fail)) == 0 {
				t.Errorf("no MUST requirement failed\n%s", res.explain())
			}
			const notJudged = "not judged: the target stopped answering: "
			skipped := 0
			for _, sp := range res.report.Specs {
				if sp.State == "skipped" && strings.HasPrefix(sp.Reason, notJudged) {
					skipped++
				}
			}
			if skipped == 0 {
				t.Errorf("no spec skipped with %q\n%s", notJudged, res.explain())
			}
			if last := tail(res.stdout, 1); !strings.HasPrefix(last, "hint: "+harness.NoReplyAdvice) {
				t.Errorf("the output ends with %q, want the hint %q...", last, harness.NoReplyAdvice)
			}
		})
	}
}

// listenNoAccept listens on a 127.0.0.1 port with the backlog given and
// never accepts.
func listenNoAccept(t *testing.T, backlog int) string {
	t.Helper()
	for range 50 {
		port := testPortMin + rand.IntN(testPortMax-testPortMin+1)
		syscall.ForkLock.RLock() // SOCK_CLOEXEC is Linux's: no exec between these two
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err == nil {
			syscall.CloseOnExec(fd)
		}
		syscall.ForkLock.RUnlock()
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			syscall.Close(fd)
			continue // taken
		}
		if err := syscall.Listen(fd, backlog); err != nil {
			syscall.Close(fd)
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(fd) })
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	t.Fatalf("no free port in %d-%d after 50 tries", testPortMin, testPortMax)
	return ""
}

// listenMute accepts every connection on a 127.0.0.1 port and reads what
// comes, never writing a byte.
func listenMute(t *testing.T) string {
	t.Helper()
	var l net.Listener
	for range 50 {
		var err error
		port := testPortMin + rand.IntN(testPortMax-testPortMin+1)
		if l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			break
		}
	}
	if l == nil {
		t.Fatalf("no free port in %d-%d after 50 tries", testPortMin, testPortMax)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for { // until the listener is closed
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { io.Copy(io.Discard, c) }) //nolint:errcheck // until the connection is closed
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
