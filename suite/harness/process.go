//go:build unix

package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
)

// StartOptions describe a server process for Start.
type StartOptions struct {
	// Command is run with `sh -c`; every {port} in it is replaced by Port.
	Command string
	// Port is the port to substitute; 0 picks a free 127.0.0.1 port.
	Port int
	// Stdout and Stderr, if not nil, also receive the process's output.
	Stdout, Stderr io.Writer
	// StartTimeout bounds the wait for the port to accept connections;
	// 0 means 10 s.
	StartTimeout time.Duration
}

// Process is a server process the harness started, in its own process
// group.
type Process struct {
	Command string // as run, {port} replaced
	Port    int
	Addr    string // 127.0.0.1:Port

	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed once the process has exited and exit is set

	exitMu   sync.Mutex // guards exit, stopping, sent
	exit     Exit
	stopping time.Time      // when Stop sent SIGTERM; zero before
	sent     syscall.Signal // the stop signal StopWith sent first; 0 before
	killed   bool
}

// Exit is how a process ended.
type Exit struct {
	Code   int           // exit status; -1 when a signal ended it
	Signal string        // the signal that ended it, if one did
	After  time.Duration // from the stop signal (or the start, if it exited by itself) to the exit
	Killed bool          // the harness had to send SIGKILL
}

func (e Exit) String() string {
	s := fmt.Sprintf("exit status %d", e.Code)
	if e.Signal != "" {
		s = "killed by signal " + e.Signal
	}
	if e.Killed {
		s += " (SIGKILL from the harness after the grace period)"
	}
	return fmt.Sprintf("%s after %v", s, e.After.Round(time.Millisecond))
}

// ErrCPUTimeUnsupported is returned by CPUTime where /proc does not exist.
var ErrCPUTimeUnsupported = errors.New("reading a process's CPU time needs Linux's /proc")

// ErrNoPort is returned for a server command without {port}.
var ErrNoPort = errors.New("the server command has no {port}: the harness picks a free port and needs to tell the server")

// execLast makes a simple command replace the shell (`exec CMD`), so that the
// stop signal reaches the server itself and its exit status, not the shell's,
// is what the lifecycle specs judge: dash, Debian's sh, forks even for the
// last command of `sh -c`. Commands with shell syntax (lists, pipes, leading
// assignments) are left alone; their authors can write `exec` themselves.
func execLast(command string) string {
	trimmed := strings.TrimSpace(command)
	first, _, _ := strings.Cut(trimmed, " ")
	if strings.ContainsAny(trimmed, ";&|()<>`\n") || strings.Contains(first, "=") || first == "exec" {
		return command
	}
	return "exec " + trimmed
}

// ShellHint explains e, how the process ended after Stop or StopWith, when
// the stop signal itself ended it and the command keeps sh between the
// harness and the server (shell syntax, no exec; execLast leaves it alone):
// then the process that died of the signal is most likely the shell, and
// its exit, not the server's, is what e says. It returns "" otherwise.
func (p *Process) ShellHint(e Exit) string {
	p.exitMu.Lock()
	sent := p.sent
	p.exitMu.Unlock()
	if sent == 0 || e.Signal != sent.String() || !underShell(p.Command) {
		return ""
	}
	return "the command runs under sh -c and is not a simple command, so the signal ended the shell, not the server, " +
		"and the exit above is the shell's: write exec yourself, e.g. `cd dir && exec ./server {port}`"
}

// underShell reports whether sh -c command keeps running as the shell, the
// server its child: command has shell syntax, which execLast leaves alone,
// and no exec anywhere.
func underShell(command string) bool {
	if execLast(command) != command {
		return false
	}
	words := strings.FieldsFunc(command, func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune(";&|()`", r) })
	return !slices.Contains(words, "exec")
}

// FreePort returns a 127.0.0.1 TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start runs o.Command and waits until its port accepts connections. A
// command that exits first, or never listens, is an error that shows its
// output; the process is then killed.
func Start(ctx context.Context, o StartOptions) (*Process, error) {
	if !strings.Contains(o.Command, "{port}") {
		return nil, ErrNoPort
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	port := o.Port
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
	}
	p := &Process{
		Command: strings.ReplaceAll(o.Command, "{port}", strconv.Itoa(port)),
		Port:    port,
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		out:     &tailBuffer{max: 64 << 10},
		done:    make(chan struct{}),
	}
	p.cmd = exec.Command("sh", "-c", execLast(p.Command))
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stdout = echoWriter{p.out, o.Stdout}
	p.cmd.Stderr = echoWriter{p.out, o.Stderr}
	p.cmd.WaitDelay = 2 * time.Second // a child holding the output pipe cannot block Wait
	started := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %q: %w", p.Command, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.exitMu.Lock()
		from := started
		if !p.stopping.IsZero() {
			from = p.stopping
		}
		p.exit = exitOf(p.cmd.ProcessState, err, time.Since(from), p.killed)
		p.exitMu.Unlock()
		close(p.done)
	}()
	if err := p.awaitListening(ctx, o.StartTimeout); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// awaitListening polls the port, bounded, until it accepts a connection.
func (p *Process) awaitListening(ctx context.Context, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := d.DialContext(ctx, "tcp", p.Addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("server command %q exited before listening on %s: %v\n%s", p.Command, p.Addr, p.ExitStatus(), p.OutputSection())
		case <-deadline.C:
			return fmt.Errorf("server command %q did not accept connections on %s within %v\n%s", p.Command, p.Addr, timeout, p.OutputSection())
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// ExitStatus is how the process ended; the zero Exit while it runs.
func (p *Process) ExitStatus() Exit {
	select {
	case <-p.done:
		p.exitMu.Lock()
		defer p.exitMu.Unlock()
		return p.exit
	default:
		return Exit{}
	}
}

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// PID is the process group's leader: the shell, or the server it became.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Signal sends sig to the whole process group.
func (p *Process) Signal(sig syscall.Signal) error {
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil // already gone
	}
	return err
}

// Stop sends SIGTERM to the process group, waits up to grace for the
// process to exit, then sends SIGKILL. It returns how the process ended.
// Calling it again returns the same Exit.
func (p *Process) Stop(grace time.Duration) Exit { return p.StopWith(syscall.SIGTERM, grace) }

// StopWith is Stop with another signal than SIGTERM, e.g. SIGINT.
func (p *Process) StopWith(sig syscall.Signal, grace time.Duration) Exit {
	p.exitMu.Lock()
	if p.stopping.IsZero() && p.Running() {
		p.stopping, p.sent = time.Now(), sig
	}
	p.exitMu.Unlock()
	p.Signal(sig) //nolint:errcheck // ESRCH only: already gone
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.Kill()
	}
	p.Signal(syscall.SIGKILL) //nolint:errcheck // leftovers of the group, if any
	return p.ExitStatus()
}

// Kill sends SIGKILL to the process group and waits, bounded, for the exit.
func (p *Process) Kill() {
	p.exitMu.Lock()
	if p.Running() {
		p.killed = true
	}
	p.exitMu.Unlock()
	p.Signal(syscall.SIGKILL) //nolint:errcheck // ESRCH only
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// Output is the tail of what the process wrote to stdout and stderr.
func (p *Process) Output() string { return p.out.String() }

// OutputSection is Output framed for a failure message.
func (p *Process) OutputSection() string {
	out := p.Output()
	if out == "" {
		return "(the server wrote no output)"
	}
	return "server output:\n" + strings.TrimRight(out, "\n")
}

func exitOf(st *os.ProcessState, err error, after time.Duration, killed bool) Exit {
	e := Exit{Code: -1, After: after, Killed: killed}
	if st == nil {
		e.Signal = fmt.Sprint(err)
		return e
	}
	e.Code = st.ExitCode()
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal().String()
	}
	return e
}

// echoWriter writes to the kept tail and, best effort, to an echo.
type echoWriter struct {
	tail *tailBuffer
	echo io.Writer
}

func (w echoWriter) Write(b []byte) (int, error) {
	w.tail.Write(b) //nolint:errcheck // never fails
	if w.echo != nil {
		w.echo.Write(b) //nolint:errcheck // an echo for people; the tail is kept regardless
	}
	return len(b), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	b       []byte
	dropped int
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, b...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = t.b[:copy(t.b, t.b[over:])]
		t.dropped += over
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dropped > 0 {
		return fmt.Sprintf("(%d earlier bytes dropped)\n%s", t.dropped, t.b)
	}
	return string(t.b)
}
