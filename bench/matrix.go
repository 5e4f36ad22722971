package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"echoadd/internal/version"
	"echoadd/protocol"
)

// ServerSpec says how to reach a server: a fixed address, or a command that
// StartServer runs (with {port} and, optionally, {framing}).
type ServerSpec struct {
	Name    string // for reports, e.g. "reference", "comparator"
	Addr    string // HOST:PORT of a running server; its framing is fixed
	Command string
	Output  io.Writer // where a started server's output also goes; may be nil
	// StartTimeout bounds the wait for a started server to listen; 0 means
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// Started, if not nil, is called with each process started from
	// Command, before any load is put on it: e.g. to kill it when the
	// caller must stop at once.
	Started func(*Process)
}

// CanChangeFraming reports whether the server can be run in any framing:
// a command with a {framing} placeholder.
func (s ServerSpec) CanChangeFraming() bool {
	return s.Addr == "" && strings.Contains(s.Command, "{framing}")
}

// Case is one named load of a matrix.
type Case struct {
	Name string
	Load Load
}

// Row is one case's result, on the server and, with a baseline, on the
// comparator too.
type Row struct {
	Name       string  `json:"name"`
	Target     Result  `json:"target"`
	Comparator *Result `json:"comparator,omitempty"`
	Ratio      *Ratio  `json:"ratio,omitempty"`
}

// Ratio is every figure of the target divided by the comparator's: above 1
// is more throughput, but also more CPU and more latency. A field is absent
// when the comparator's figure is 0 or unknown.
type Ratio struct {
	Throughput    *float64 `json:"throughput,omitempty"`
	CPUPerRequest *float64 `json:"cpu_per_request,omitempty"`
	P50           *float64 `json:"p50,omitempty"`
	P90           *float64 `json:"p90,omitempty"`
	P99           *float64 `json:"p99,omitempty"`
	P999          *float64 `json:"p99_9,omitempty"`
	Max           *float64 `json:"max,omitempty"`
}

func ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	r := a / b
	return &r
}

// NewRatio compares t with c.
func NewRatio(t, c Result) *Ratio {
	r := &Ratio{Throughput: ratio(t.Throughput, c.Throughput)}
	if tl, cl := t.Latency, c.Latency; tl != nil && cl != nil {
		r.P50, r.P90, r.P99 = ratio(tl.P50, cl.P50), ratio(tl.P90, cl.P90), ratio(tl.P99, cl.P99)
		r.P999, r.Max = ratio(tl.P999, cl.P999), ratio(tl.Max, cl.Max)
	}
	if t.ServerCPU != nil && c.ServerCPU != nil {
		r.CPUPerRequest = ratio(t.ServerCPU.PerRequestUs, c.ServerCPU.PerRequestUs)
	}
	return r
}

// Report is the outcome of one invocation: one row per case.
type Report struct {
	Machine    Machine  `json:"machine"`
	Server     string   `json:"server"`
	Comparator string   `json:"comparator,omitempty"`
	Rows       []Row    `json:"rows"`
	Notes      []string `json:"notes,omitempty"`
	// StopFailures are the servers started here that had exited before
	// they were stopped, would not stop on SIGTERM, or ended with a failure
	// status: faults of the server, which fail the run.
	StopFailures []string `json:"stop_failures,omitempty"`
	// Interrupted marks partial results: the run was stopped (SIGINT)
	// before its end. The caller sets it.
	Interrupted bool `json:"interrupted"`
}

// Machine names where the figures were taken.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	Go       string `json:"go"`
	Shared   string `json:"shared"`
	// Bench is the version of the load generator (see internal/version).
	Bench string `json:"bench"`
}

// ThisMachine describes the machine this process runs on.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(),
		Shared: "the load generator runs on the same cores as the server", Bench: version.String()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// RunCases runs every case against server and, when baseline is not nil,
// the same load right after against baseline. Servers given as commands are
// started once per framing and stopped when the framing changes or at the
// end. A case whose framing a fixed-address server cannot speak is an error:
// the caller builds the cases it can run.
func RunCases(ctx context.Context, cases []Case, server ServerSpec, baseline *ServerSpec) (rep Report, err error) {
	rep = Report{Machine: ThisMachine(), Server: describe(server), Rows: []Row{}}
	if baseline != nil {
		rep.Comparator = describe(*baseline)
	}
	var servers []*runningServer
	// A server that will not stop, or had stopped by itself, is a fault to
	// report beside the figures, not a run that could not be made.
	stopAll := func() {
		for _, r := range servers {
			if err := r.stop(); err != nil {
				rep.StopFailures = append(rep.StopFailures, err.Error())
			}
		}
		servers = nil
	}
	defer stopAll() // on rep, the named result: its notes reach the caller

	current := protocol.Framing(-1)
	var tgt, base *runningServer
	for _, c := range cases {
		if c.Load.Framing != current {
			stopAll()
			current = c.Load.Framing
			if tgt, err = start(ctx, server, current); err != nil {
				return rep, err
			}
			servers = append(servers, tgt)
			if baseline != nil {
				if base, err = start(ctx, *baseline, current); err != nil {
					return rep, err
				}
				servers = append(servers, base)
			}
		}
		row := Row{Name: c.Name}
		if row.Target, err = Run(ctx, tgt.target, c.Load); err != nil {
			return rep, fmt.Errorf("%s on %s: %w", c.Name, rep.Server, err)
		}
		if ctx.Err() != nil {
			// Interrupted during the server's half: keep what it measured;
			// the comparator's half is not run (a cancelled run would only
			// report that it could not connect).
			rep.Rows = append(rep.Rows, row)
			return rep, ctx.Err()
		}
		if baseline != nil {
			res, err := Run(ctx, base.target, c.Load)
			if err != nil {
				return rep, fmt.Errorf("%s on %s: %w", c.Name, rep.Comparator, err)
			}
			row.Comparator = &res
			row.Ratio = NewRatio(row.Target, res)
		}
		rep.Rows = append(rep.Rows, row)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	stopAll()
	return rep, nil
}

func describe(s ServerSpec) string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Addr != "":
		return s.Addr
	default:
		return s.Command
	}
}

type runningServer struct {
	target Target
	proc   *Process
}

func (r *runningServer) stop() error {
	if r.proc == nil {
		return nil
	}
	return r.proc.Stop(0)
}

func start(ctx context.Context, s ServerSpec, f protocol.Framing) (*runningServer, error) {
	if s.Addr != "" {
		return &runningServer{target: Target{Addr: s.Addr}}, nil
	}
	p, err := StartServer(ctx, s.Command, f.String(), s.Output, s.StartTimeout)
	if err != nil {
		return nil, err
	}
	if s.Started != nil {
		s.Started(p)
	}
	return &runningServer{target: p.Target(), proc: p}, nil
}

// Sweep returns the standard matrix: 1, 8, 64 and 256 connections, each
// with echo of 16 B, echo of 1 KiB, add, and echo of 16 B pipelined 16 deep.
// Unpipelined cases use framing f; the pipelined ones use f when it is
// framed, else pipelined (or are left out when pipelined is Raw). base
// gives the duration, request count, warm-up and timeout of every case.
func Sweep(f, pipelined protocol.Framing, base Load) []Case {
	if f != protocol.Raw {
		pipelined = f
	}
	conns := []int{1, 8, 64, 256}
	var cases []Case
	add := func(name string, fr protocol.Framing, mix Mix, payload, pipeline int) {
		for _, n := range conns {
			l := base
			l.Framing, l.Conns, l.Mix, l.Payload, l.Pipeline = fr, n, mix, payload, pipeline
			cases = append(cases, Case{Name: fmt.Sprintf("%s c%d", name, n), Load: l})
		}
	}
	add("echo16", f, Mix{Echo: 1}, 16, 1)
	add("echo1k", f, Mix{Echo: 1}, 1024, 1)
	add("add", f, Mix{Add: 1}, 16, 1)
	if pipelined != protocol.Raw {
		add("echo16 p16", pipelined, Mix{Echo: 1}, 16, 16)
	}
	return cases
}
