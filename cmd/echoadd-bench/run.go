package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"

	"echoadd/bench"
	"echoadd/internal/version"
	"echoadd/protocol"
)

// Exit statuses, as --help documents them (usageTail); the first four are
// echoadd-conform's.
const (
	exitOK          = 0
	exitFailed      = 1 // the server's replies had errors
	exitNotRun      = 2 // the run could not be made: no server, no connection
	exitUsage       = 3
	exitInterrupted = 130 // 128 + SIGINT; SIGTERM gives 143
)

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "comparator" {
		return runComparator(args[1:], stdout, stderr)
	}
	o, err := parse(args, stdout)
	if errors.Is(err, errHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "echoadd-bench: %v\nRun 'echoadd-bench --help' for usage.\n", err)
		return exitUsage
	}
	if o.version {
		fmt.Fprintf(stdout, "echoadd-bench %s %s\n", version.String(), runtime.Version())
		return exitOK
	}
	o.progress = !o.json && bench.IsTerminal(stderr) // before the wrapping below hides the terminal
	stderr = &lockedWriter{w: stderr}                // the interrupt watcher writes too
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := watchInterrupts(cancel, stderr)
	defer in.stop()
	o.started = in.started
	err = execute(ctx, o, stdout, stderr)
	if sig := in.signal(); sig != 0 {
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, errReplies) && !errors.Is(err, errStop) {
			fmt.Fprintf(stderr, "echoadd-bench: %v\n", err)
		}
		return 128 + int(sig)
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errReplies), errors.Is(err, errStop):
		fmt.Fprintf(stderr, "echoadd-bench: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "echoadd-bench: %v\n", err)
	return exitNotRun
}

// interrupts turns the first SIGINT or SIGTERM into a cancelled context
// (the run stops after the requests in flight and reports what it has) and
// a second into an exit at once, after killing the servers started here.
type interrupts struct {
	sigs chan os.Signal
	done chan struct{}

	mu      sync.Mutex
	got     syscall.Signal   // the first signal; 0 while none came
	servers []*bench.Process // started here, to kill on a second signal
}

func watchInterrupts(cancel func(), stderr io.Writer) *interrupts {
	in := &interrupts{sigs: make(chan os.Signal, 2), done: make(chan struct{})}
	signal.Notify(in.sigs, os.Interrupt, syscall.SIGTERM)
	go in.watch(cancel, stderr)
	return in
}

func (in *interrupts) watch(cancel func(), stderr io.Writer) {
	var sig os.Signal
	select {
	case sig = <-in.sigs:
	case <-in.done:
		return
	}
	in.mu.Lock()
	in.got = sig.(syscall.Signal)
	in.mu.Unlock()
	fmt.Fprintf(stderr, "echoadd-bench: %v: stopping after the requests in flight (at most --timeout), then the partial results; interrupt again to stop at once\n", sig)
	cancel()
	select {
	case <-in.sigs:
	case <-in.done:
		return
	}
	in.mu.Lock()
	servers := in.servers
	in.mu.Unlock()
	for _, p := range servers {
		if p.Running() {
			p.Kill()
		}
	}
	fmt.Fprintf(stderr, "echoadd-bench: interrupted again: stopped at once\n")
	os.Exit(128 + int(in.got))
}

// started records a server started here.
func (in *interrupts) started(p *bench.Process) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.servers = append(in.servers, p)
}

// signal is the first signal received, or 0.
func (in *interrupts) signal() syscall.Signal {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.got
}

func (in *interrupts) stop() {
	signal.Stop(in.sigs)
	close(in.done)
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// errReplies is returned when the run went through but the server's replies
// had errors: the report is written, and the exit status says so.
var errReplies = errors.New("the server's replies had errors (see the report)")

// errStop is returned when a server started here failed at its stop (see
// bench.Report.StopFailures): the report is written, and the exit status
// says so.
var errStop = errors.New("the server failed at its stop (see the report)")

func execute(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	server, err := serverSpec(o, stderr)
	if err != nil {
		return err
	}
	var baseline *bench.ServerSpec
	if o.baseline {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("--baseline: finding this program to run the comparator: %w", err)
		}
		baseline = &bench.ServerSpec{
			Name:    "comparator",
			Command: bench.ShellQuote(self) + " comparator --listen 127.0.0.1:{port} --framing {framing}",
			Started: o.started,
		}
		if o.serverOutput {
			baseline.Output = stderr
		}
		baseline.StartTimeout = o.startTimeout
	}
	if o.idleConns > 0 {
		return executeIdle(ctx, o, server, baseline, stdout, stderr)
	}

	load := bench.Load{
		Framing: o.framing, Conns: o.conns, Duration: o.duration, Requests: o.requests,
		Warmup: o.warmup, Mix: o.mix, Payload: o.payload, Pipeline: o.pipeline, Timeout: o.timeout,
		Driver: o.driver,
	}
	if o.progress {
		load.Progress = stderr
	}
	cases := []bench.Case{{Name: fmt.Sprintf("%s c%d", workloadName(load), load.Conns), Load: load}}
	var notes []string
	if o.sweep {
		pipelined := protocol.Len32
		if !server.CanChangeFraming() {
			pipelined = protocol.Raw
		}
		cases = bench.Sweep(o.framing, pipelined, load)
		if o.framing == protocol.Raw && pipelined == protocol.Raw {
			notes = append(notes, "pipelined rows left out: the server speaks raw only (give --framing len32, or a --server-cmd with {framing})")
		}
	}
	rep, err := bench.RunCases(ctx, cases, server, baseline)
	rep.Notes = append(rep.Notes, notes...)
	rep.Interrupted = ctx.Err() != nil // only a signal cancels ctx
	if len(rep.Rows) > 0 || rep.Interrupted {
		if werr := writeReport(o, rep, stdout); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	for _, row := range rep.Rows {
		if row.Target.Errors.Total() > 0 || (row.Comparator != nil && row.Comparator.Errors.Total() > 0) {
			return errReplies
		}
	}
	if len(rep.StopFailures) > 0 {
		return errStop
	}
	return nil
}

func writeReport(o *options, rep bench.Report, stdout io.Writer) error {
	if o.plot != "" {
		if err := os.MkdirAll(filepath.Dir(o.plot), 0o755); err != nil { // as echoadd-conform's reports
			return fmt.Errorf("--plot: %w", err)
		}
		f, err := os.Create(o.plot)
		if err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
		if err := rep.WriteSVG(f); err != nil {
			f.Close()
			return fmt.Errorf("--plot: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
	}
	if o.json {
		return bench.WriteJSON(stdout, rep)
	}
	return rep.WriteText(stdout)
}

func workloadName(l bench.Load) string {
	name := fmt.Sprintf("mix %s", l.Mix)
	switch {
	case l.Mix.Add == 0:
		name = fmt.Sprintf("echo%d", l.Payload)
	case l.Mix.Echo == 0:
		name = "add"
	}
	if l.Pipeline > 1 {
		name += fmt.Sprintf(" p%d", l.Pipeline)
	}
	return name
}

// idleReport is --idle-conns --json's output.
type idleReport struct {
	Machine    bench.Machine     `json:"machine"`
	Server     string            `json:"server"`
	Target     bench.IdleResult  `json:"target"`
	Comparator *bench.IdleResult `json:"comparator,omitempty"`
	Ratio      *bench.IdleRatio  `json:"ratio,omitempty"` // server/comparator, with --baseline
	// Interrupted marks partial results: the run was stopped (SIGINT).
	Interrupted bool `json:"interrupted"`
}

func executeIdle(ctx context.Context, o *options, server bench.ServerSpec, baseline *bench.ServerSpec, stdout, stderr io.Writer) error {
	limit, err := bench.RaiseOpenFileLimit()
	if err != nil {
		return fmt.Errorf("--idle-conns: raising the open file limit: %w", err)
	}
	// This process holds each connection once; a child server inherits the
	// limit and holds each once more. 64 spare for everything else.
	if need := uint64(o.idleConns) + 64; limit < need {
		return fmt.Errorf("--idle-conns %d needs %d open files, but the hard limit (RLIMIT_NOFILE) is %d: raise it (ulimit -Hn, as root) or ask for fewer", o.idleConns, need, limit)
	}
	load := bench.IdleLoad{Framing: o.framing, Conns: o.idleConns, Hold: o.idleHold, Timeout: o.timeout, Partial: o.idlePartial, PartialOf: o.idlePartOf}
	rep := idleReport{Machine: bench.ThisMachine(), Server: describeSpec(server)}
	one := func(spec bench.ServerSpec) (bench.IdleResult, error) {
		target := bench.Target{Addr: spec.Addr}
		if spec.Addr == "" {
			p, err := bench.StartServer(ctx, spec.Command, o.framing.String(), spec.Output, spec.StartTimeout)
			if err != nil {
				return bench.IdleResult{}, err
			}
			o.started(p)
			defer p.Stop(0)
			target = p.Target()
		}
		return bench.RunIdle(ctx, target, load)
	}
	if rep.Target, err = one(server); err != nil {
		return err
	}
	if baseline != nil && ctx.Err() == nil {
		c, err := one(*baseline)
		if err != nil {
			return err
		}
		rep.Comparator = &c
		rep.Ratio = bench.NewIdleRatio(rep.Target, c)
	}
	rep.Interrupted = ctx.Err() != nil // only a signal cancels ctx
	if o.json {
		if err := bench.WriteJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "server: %s\n", rep.Server)
		if err := rep.Target.WriteText(stdout); err != nil {
			return err
		}
		if rep.Comparator != nil {
			fmt.Fprintf(stdout, "\ncomparator:\n")
			if err := rep.Comparator.WriteText(stdout); err != nil {
				return err
			}
			fmt.Fprintln(stdout)
			if err := rep.Ratio.WriteText(stdout); err != nil {
				return err
			}
		}
		if rep.Interrupted {
			fmt.Fprintf(stdout, "INTERRUPTED: partial results\n")
		}
	}
	if rep.Interrupted {
		return nil // the exit status says so
	}
	for _, r := range []*bench.IdleResult{&rep.Target, rep.Comparator} {
		if r != nil && (r.Errors.Total() > 0 || !r.NewClientServed) {
			return errReplies
		}
	}
	return nil
}

func describeSpec(s bench.ServerSpec) string {
	if s.Name != "" {
		return s.Name
	}
	if s.Addr != "" {
		return s.Addr
	}
	return s.Command
}

// serverSpec turns --target, --server-cmd or --server-bin into a ServerSpec.
func serverSpec(o *options, stderr io.Writer) (bench.ServerSpec, error) {
	var out io.Writer
	if o.serverOutput {
		out = stderr
	}
	switch {
	case o.target != "":
		return bench.ServerSpec{Addr: o.target}, nil
	case o.serverCmd != "":
		return bench.ServerSpec{Command: o.serverCmd, Output: out, StartTimeout: o.startTimeout, Started: o.started}, nil
	}
	bin, err := findServerBinary(o.serverBin)
	if err != nil {
		return bench.ServerSpec{}, err
	}
	return bench.ServerSpec{
		Name:         "reference (" + bin + ")",
		Command:      bench.ShellQuote(bin) + " --listen 127.0.0.1:{port} --framing {framing}",
		Output:       out,
		StartTimeout: o.startTimeout,
		Started:      o.started,
	}, nil
}

// findServerBinary finds the bundled reference: --server-bin if given, else
// echoadd-server next to this program, on PATH, or at ./bin/echoadd-server
// (where `make build` puts it).
func findServerBinary(flagValue string) (string, error) {
	if flagValue != "" {
		if _, err := os.Stat(flagValue); err != nil {
			return "", fmt.Errorf("--server-bin: %w", err)
		}
		return filepath.Abs(flagValue)
	}
	var tried []string
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "echoadd-server")
		if isExecutable(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath("echoadd-server"); err == nil {
		return filepath.Abs(p)
	}
	tried = append(tried, "echoadd-server on PATH")
	if p := filepath.Join("bin", "echoadd-server"); isExecutable(p) {
		return filepath.Abs(p)
	}
	tried = append(tried, "./bin/echoadd-server")
	return "", fmt.Errorf("no server to measure: give --target HOST:PORT or --server-cmd 'CMD {port}', or build the reference (make build) for --server-bin; looked for echoadd-server at %q", tried)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
