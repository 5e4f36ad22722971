package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process control for servers under test. suite/harness is meant to hold the
// same for the conformance suite; it did not exist when this was written.

// DefaultStartTimeout bounds the wait for a started server to listen.
const DefaultStartTimeout = 10 * time.Second

// DefaultStopGrace is how long a server gets between SIGTERM and SIGKILL.
const DefaultStopGrace = 5 * time.Second

// Process is a server started from a shell command, in its own process
// group, listening on a loopback port this package picked.
type Process struct {
	Addr    string // 127.0.0.1:PORT
	Pgid    int
	Command string // the command as run

	cmd     *exec.Cmd
	exited  chan struct{} // closed when the shell has exited
	waitErr error         // set before exited is closed
	output  *tailBuffer
	stopMu  sync.Mutex
	stopped bool
}

// Target is where to send load and where to read the server's CPU.
func (p *Process) Target() Target { return Target{Addr: p.Addr, Pgid: p.Pgid} }

// StartServer runs command through sh -c, after replacing {port} with a free
// loopback port and {framing} with framing, and waits, for at most timeout
// (0: DefaultStartTimeout), until the port accepts connections. The server's
// output goes to out (may be nil); its last lines are kept for errors.
func StartServer(ctx context.Context, command, framing string, out io.Writer, timeout time.Duration) (*Process, error) {
	if !strings.Contains(command, "{port}") {
		return nil, fmt.Errorf("server command %q has no {port} placeholder", command)
	}
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	expanded := strings.ReplaceAll(command, "{port}", strconv.Itoa(port))
	expanded = strings.ReplaceAll(expanded, "{framing}", framing)
	p := &Process{
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Command: expanded,
		exited:  make(chan struct{}),
		output:  &tailBuffer{max: 4 << 10},
	}
	var w io.Writer = p.output
	if out != nil {
		w = io.MultiWriter(p.output, out)
	}
	p.cmd = exec.Command("sh", "-c", expanded)
	p.cmd.Stdout = w
	p.cmd.Stderr = w
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %q: %w", expanded, err)
	}
	p.Pgid = p.cmd.Process.Pid
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitListening(ctx, timeout); err != nil {
		p.Stop(time.Second)
		return nil, err
	}
	return p, nil
}

// waitListening dials until the port accepts, the server exits, or the time
// is up; the wait between attempts grows from 2 ms to 100 ms.
func (p *Process) waitListening(ctx context.Context, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	pause := 2 * time.Millisecond
	for {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "tcp", p.Addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("server %q exited before listening on %s (%v); its output ends:\n%s", p.Command, p.Addr, p.waitErr, p.output.String())
		case <-deadline.C:
			return fmt.Errorf("server %q did not listen on %s within %v; its output ends:\n%s", p.Command, p.Addr, timeout, p.output.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
			pause = min(2*pause, 100*time.Millisecond)
		}
	}
}

// Stop sends SIGTERM to the process group, SIGKILL after grace (0:
// DefaultStopGrace), and waits for the shell to exit. It reports an exit
// that was not clean, or the need for SIGKILL. Calling it again does
// nothing.
func (p *Process) Stop(grace time.Duration) error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if p.stopped {
		return nil
	}
	p.stopped = true
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	select {
	case <-p.exited:
		return fmt.Errorf("server %q had already exited (%v); its output ends:\n%s", p.Command, p.waitErr, p.output.String())
	default:
	}
	_ = syscall.Kill(-p.Pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	var err error
	select {
	case <-p.exited:
		var ee *exec.ExitError
		if errors.As(p.waitErr, &ee) && !ee.Exited() {
			// Killed by SIGTERM itself: not a clean exit, but expected
			// from servers that do not handle it.
			err = nil
		} else if p.waitErr != nil {
			err = fmt.Errorf("server %q exited with %v after SIGTERM", p.Command, p.waitErr)
		}
	case <-t.C:
		err = fmt.Errorf("server %q still running %v after SIGTERM: killed", p.Command, grace)
		_ = syscall.Kill(-p.Pgid, syscall.SIGKILL)
		<-p.exited
	}
	// Whatever the shell left behind in its group goes too.
	_ = syscall.Kill(-p.Pgid, syscall.SIGKILL)
	return err
}

// Output returns the last few KiB the server wrote.
func (p *Process) Output() string { return p.output.String() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ShellQuote quotes s as one word for sh.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
