package reference

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"echoadd/protocol"
)

// fakeListener fails Accept with the errors it is given, then with
// errFakeClosed, recording when each call came.
type fakeListener struct {
	mu    sync.Mutex
	errs  []error
	calls []time.Time
}

var errFakeClosed = errors.New("fake listener: permanently broken")

func (l *fakeListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, time.Now())
	if len(l.errs) == 0 {
		return nil, errFakeClosed
	}
	err := l.errs[0]
	l.errs = l.errs[1:]
	return nil, err
}

func (l *fakeListener) Close() error   { return nil }
func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func emfile() error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

// flakyListener fails its first Accept calls with EMFILE, then accepts.
type flakyListener struct {
	net.Listener
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, emfile()
	}
	return l.Listener.Accept()
}

// TestAcceptOutageEnds: once accepting works again after a run of
// failures, one line says so, with how many failed.
func TestAcceptOutageEnds(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	s := &Server{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	served := make(chan error, 1)
	go func() { served <- s.Serve(&flakyListener{Listener: inner, fails: 3}) }()
	c := dial(t, inner.Addr().String(), protocol.Raw) // waits in the backlog meanwhile
	c.roundTrip("after the outage")
	waitFor(t, "the line saying accepting works again", func() bool {
		return strings.Contains(logs.String(), `level=INFO msg="accepting again" failed_accepts=3`)
	})
	s.Close()
	<-served
}

func TestAcceptBackoff(t *testing.T) {
	defer goleak.VerifyNone(t)
	l := &fakeListener{errs: []error{emfile(), emfile(), emfile(), errFakeClosed}}
	var logs lockedBuffer
	s := &Server{Engine: testEngine, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := s.Serve(l); !errors.Is(err, errFakeClosed) {
		t.Fatalf("Serve = %v, want %v", err, errFakeClosed)
	}
	// The same line on both engines: one warning with advice, the retries
	// at debug level.
	if want := `level=WARN msg="accept failed: out of file descriptors; retrying until one is free, new clients wait meanwhile: raise the limit (ulimit -n) or set --max-conns well below it (each connection refused at the limit holds a descriptor for up to a second as it closes)" err="accept tcp: accept4: too many open files" delay=5ms`; !strings.Contains(logs.String(), want) || strings.Count(logs.String(), "level=WARN") != 1 {
		t.Errorf("logs lack %s, or have more than one warning:\n%s", want, logs.String())
	}
	if len(l.calls) != 4 {
		t.Fatalf("%d Accept calls, want 4", len(l.calls))
	}
	want := minAcceptBackoff
	for i := 1; i < len(l.calls); i++ {
		if gap := l.calls[i].Sub(l.calls[i-1]); gap < want {
			t.Errorf("Accept call %d came %v after the previous one, want at least %v", i+1, gap, want)
		}
		want *= 2
	}
}

// TestAcceptErrorsThatPass: a listener's deadline and a connection lost
// before accept are retried as a shortage is, on either engine, rather than
// ending Serve.
func TestAcceptErrorsThatPass(t *testing.T) {
	defer goleak.VerifyNone(t)
	l := &fakeListener{errs: []error{
		&net.OpError{Op: "accept", Net: "tcp", Err: os.ErrDeadlineExceeded},
		&net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)},
		errFakeClosed,
	}}
	s := &Server{Engine: testEngine}
	if err := s.Serve(l); !errors.Is(err, errFakeClosed) || len(l.calls) != 3 {
		t.Fatalf("Serve = %v after %d Accept calls, want %v after 3", err, len(l.calls), errFakeClosed)
	}
}

func TestShutdownDuringAcceptBackoff(t *testing.T) {
	defer goleak.VerifyNone(t)
	l := &fakeListener{errs: []error{emfile(), emfile(), emfile(), emfile(), emfile(), emfile(), emfile(), emfile(), emfile(), emfile()}} // about 5 s of back-off
	s := &Server{Engine: testEngine}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	waitFor(t, "backing off", func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.calls) >= 2 })
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.calls) >= 10 {
		t.Errorf("Serve went through all %d errors instead of stopping", len(l.calls))
	}
}
