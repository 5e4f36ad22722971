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
	"syscall"

	"echoadd/bench"
	"echoadd/internal/version"
	"echoadd/protocol"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // errors in the replies, or the run could not be made
	exitUsage  = 2
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := execute(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "echoadd-bench: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// errReplies is returned when the run went through but the server's replies
// had errors: the report is written, and the exit status says so.
var errReplies = errors.New("the server's replies had errors (see the report)")

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
	if !o.json && bench.IsTerminal(stderr) {
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
	if len(rep.Rows) > 0 {
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
	return nil
}

func writeReport(o *options, rep bench.Report, stdout io.Writer) error {
	if o.plot != "" {
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
	load := bench.IdleLoad{Framing: o.framing, Conns: o.idleConns, Hold: o.idleHold, Timeout: o.timeout}
	rep := idleReport{Machine: bench.ThisMachine(), Server: describeSpec(server)}
	one := func(spec bench.ServerSpec) (bench.IdleResult, error) {
		target := bench.Target{Addr: spec.Addr}
		if spec.Addr == "" {
			p, err := bench.StartServer(ctx, spec.Command, o.framing.String(), spec.Output, spec.StartTimeout)
			if err != nil {
				return bench.IdleResult{}, err
			}
			defer p.Stop(0)
			target = p.Target()
		}
		return bench.RunIdle(ctx, target, load)
	}
	if rep.Target, err = one(server); err != nil {
		return err
	}
	if baseline != nil {
		c, err := one(*baseline)
		if err != nil {
			return err
		}
		rep.Comparator = &c
	}
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
		}
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
		return bench.ServerSpec{Command: o.serverCmd, Output: out, StartTimeout: o.startTimeout}, nil
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
