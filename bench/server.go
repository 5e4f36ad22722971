package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"echoadd/suite/harness"
)

// Servers under test are started and stopped by the conformance suite's
// harness (suite/harness): the same process control, in its own process
// group, that the suite uses.

// DefaultStartTimeout bounds the wait for a started server to listen.
const DefaultStartTimeout = 10 * time.Second

// DefaultStopGrace is how long a server gets between SIGTERM and SIGKILL.
const DefaultStopGrace = 5 * time.Second

// Process is a server started from a shell command, in its own process
// group, listening on a loopback port picked for it.
type Process struct {
	*harness.Process
}

// Target is where to send load and whose CPU to read.
func (p *Process) Target() Target { return Target{Addr: p.Addr, Server: p} }

// StartServer runs command through sh -c, after replacing {framing} with
// framing and {port} with a free loopback port, and waits, for at most
// timeout (0: DefaultStartTimeout), until the port accepts connections. The
// server's output also goes to out (may be nil).
func StartServer(ctx context.Context, command, framing string, out io.Writer, timeout time.Duration) (*Process, error) {
	if !strings.Contains(command, "{port}") {
		return nil, fmt.Errorf("server command %q has no {port} placeholder", command)
	}
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	p, err := harness.Start(ctx, harness.StartOptions{
		Command:      strings.ReplaceAll(command, "{framing}", framing),
		Stdout:       out,
		Stderr:       out,
		StartTimeout: timeout,
	})
	if err != nil {
		return nil, err
	}
	return &Process{p}, nil
}

// Stop sends SIGTERM to the process group, SIGKILL after grace (0:
// DefaultStopGrace), and waits for the exit. It reports the need for
// SIGKILL and an exit status other than 0 or death by SIGTERM.
func (p *Process) Stop(grace time.Duration) error {
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	exited := !p.Running()
	exit := p.Process.Stop(grace)
	switch {
	case exited:
		return fmt.Errorf("server %q had already exited (%v)\n%s", p.Command, exit, p.OutputSection())
	case exit.Killed:
		return fmt.Errorf("server %q still running %v after SIGTERM: killed with SIGKILL", p.Command, grace)
	case exit.Code != 0 && exit.Signal != "terminated":
		return fmt.Errorf("server %q, stopped with SIGTERM, ended with a failure: %v\n%s", p.Command, exit, p.OutputSection())
	}
	return nil
}

// exitHint says how a server that exited during a run ended, with the
// last lines it wrote.
func (p *Process) exitHint() string {
	out := strings.Split(strings.TrimRight(p.Output(), "\n"), "\n")
	if len(out) > 5 {
		out = out[len(out)-5:]
	}
	last := "it wrote nothing"
	if len(out) > 0 && out[0] != "" {
		last = "its last lines:\n" + strings.Join(out, "\n")
	}
	return fmt.Sprintf("the server process exited during the run (%v); %s", p.ExitStatus(), last)
}

// ShellQuote quotes s as one word for sh.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
