package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"echoadd/bench"
	"echoadd/internal/bytesize"
	"echoadd/internal/outfile"
	"echoadd/protocol"
)

var errHelp = errors.New("help requested")

// options are the parsed command line.
type options struct {
	target       string
	serverCmd    string
	serverBin    string
	framing      protocol.Framing
	conns        int
	duration     time.Duration
	requests     int
	mixText      string
	mix          bench.Mix
	payload      int
	pipeline     int
	warmup       time.Duration
	timeout      time.Duration
	driverText   string
	driver       bench.Driver
	json         bool
	sweep        bool
	plot         string
	baseline     bool
	idleConns    int
	idleHold     time.Duration
	idlePartial  int // bytes sent of a partial request, with --idle-conns
	idlePartOf   int // that request's encoded size
	startTimeout time.Duration
	serverOutput bool
	version      bool

	changed  func(name string) bool
	started  func(*bench.Process) // told of every server started here (run sets it)
	progress bool                 // a live status line on stderr: a terminal, and no --json (run sets it)
}

// maxSizeFlag is the most a size flag takes (1GiB); each flag's own check
// narrows it, with a message that says why.
const maxSizeFlag = 1 << 30

const usageHead = `Usage: echoadd-bench [flags]
       echoadd-bench comparator --listen HOST:PORT --framing raw|len32|varint

Closed-loop load on an Echo/Add server over loopback. Every reply is checked
(echo content equal, add sum right); errors are counted and shown. The server
is --target, or --server-cmd started here, or else the bundled reference
(--server-bin). Server CPU per request and memory are measured when the
server is started here.

Flags:
`

const usageTail = `
Exit status:
  0    the run went through and every reply was right
  1    the server's replies had errors (invalid replies, connection errors, a new
       client not served), or a server started here failed at its stop (had
       exited, needed SIGKILL, ended with a failure status); the report shows them
  2    the run could not be made: no server found, a server that did not start,
       no connection, a report that could not be written at the end
  3    usage error, including a --plot path that cannot be written
  130  interrupted by SIGINT (143: SIGTERM): the partial results are written, marked
       "INTERRUPTED" (JSON: "interrupted": true); a second signal stops at once,
       without results
`

func newFlagSet(o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("echoadd-bench", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVar(&o.target, "target", "", "HOST:PORT of a running server (loopback only)")
	fs.StringVar(&o.serverCmd, "server-cmd", "", "shell command starting the server; {port} is replaced by a free port, {framing} by the framing")
	fs.StringVar(&o.serverBin, "server-bin", "", "the reference server binary (default: echoadd-server next to this program, on PATH, or ./bin/echoadd-server)")
	o.framing = protocol.Raw
	fs.Var(&o.framing, "framing", "framing: raw, len32 or varint")
	fs.IntVar(&o.conns, "conns", 8, fmt.Sprintf("connections, 1..%d", bench.MaxConns))
	fs.DurationVar(&o.duration, "duration", 5*time.Second, fmt.Sprintf("measured time, at most %v; 0 with --requests: until the requests are done", bench.MaxDuration))
	fs.IntVar(&o.requests, "requests", 0, fmt.Sprintf("requests per connection, at most %d; 0: no count (bounded by --duration); with --duration 0, the run still stops after %v", bench.MaxRequests, bench.MaxDuration))
	fs.StringVar(&o.mixText, "mix", "1:0", "echo:add proportion of requests, e.g. 1:0, 3:1, 0:1")
	o.payload = 16
	fs.Var(bytesize.Var(&o.payload, maxSizeFlag), "payload", fmt.Sprintf("echo content size in `BYTES` (as 1000, 64KiB or 1MiB), 0..%d", bench.MaxPayload))
	fs.IntVar(&o.pipeline, "pipeline", 1, fmt.Sprintf("requests sent before reading the replies, 1..%d (len32 and varint only); latency is per request, from its batch's write to its reply", bench.MaxPipeline))
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, fmt.Sprintf("unmeasured load before measuring, 0..%v", bench.MaxWarmup))
	fs.DurationVar(&o.timeout, "timeout", bench.DefaultTimeout, "bound of each round trip, up to 1m; a late reply is a connection error")
	fs.StringVar(&o.driverText, "driver", string(bench.DefaultDriver()), "how the load generator drives its connections: epoll (one goroutine for all, the cheapest client; Linux) or goroutine (one per connection)")
	fs.BoolVar(&o.json, "json", false, "write the result as JSON")
	fs.BoolVar(&o.sweep, "sweep", false, "run the standard matrix: 1, 8, 64, 256 connections x echo 16 B, echo 1 KiB, add, echo 16 B pipelined 16 (len32)")
	fs.StringVar(&o.plot, "plot", "", "also write the throughput table as an SVG chart to this file (a name ending in .svg)")
	fs.BoolVar(&o.baseline, "baseline", false, "run the same load against the in-tree comparator too and report ratios server/comparator")
	fs.IntVar(&o.idleConns, "idle-conns", 0, fmt.Sprintf("instead of load: open this many connections (1..%d), one request each, hold them idle, and report the server's RSS per connection", bench.MaxIdleConns))
	fs.DurationVar(&o.idleHold, "idle-hold", 2*time.Second, "with --idle-conns: how long to hold them before reading the server's memory")
	fs.Var(bytesize.Var(&o.idlePartial, maxSizeFlag), "idle-partial", "with --idle-conns: each connection then sends this many `BYTES` of a request of --idle-partial-of bytes and stops there for the hold (slow uploads); after it, the rest, and the echo must come back unless the server refused the request")
	o.idlePartOf = protocol.DefaultMaxMessageSize
	fs.Var(bytesize.Var(&o.idlePartOf, maxSizeFlag), "idle-partial-of", "with --idle-partial: the encoded size of the request it sends part of, in `BYTES`")
	fs.DurationVar(&o.startTimeout, "start-timeout", bench.DefaultStartTimeout, "bound of the wait for a started server to listen, up to 5m")
	fs.BoolVar(&o.serverOutput, "server-output", false, "copy started servers' output to stderr")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	return fs
}

// parse parses args; --help writes the usage to w and returns errHelp.
func parse(args []string, w io.Writer) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			writeUsage(w, fs)
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.changed = fs.Changed
	if o.version {
		return o, nil
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	// Before any load: a run of minutes must not end in "cannot write".
	// Missing directories are fine: writeReport makes them.
	if o.plot != "" {
		if ext := filepath.Ext(o.plot); !strings.EqualFold(ext, ".svg") {
			return nil, fmt.Errorf("--plot %s: the chart is written as SVG; give a file name ending in .svg (a browser opens it; rsvg-convert or inkscape turn it into PNG)", o.plot)
		}
		if err := outfile.Check(o.plot, true); err != nil {
			return nil, fmt.Errorf("--plot: %w", err)
		}
	}
	o.started = func(*bench.Process) {}
	return o, nil
}

func writeUsage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprint(w, usageHead)
	fmt.Fprint(w, fs.FlagUsagesWrapped(100))
	fmt.Fprint(w, usageTail)
}

// validate holds every cross-flag rule.
func (o *options) validate() error {
	sources := 0
	for _, f := range []struct{ name, value string }{{"target", o.target}, {"server-cmd", o.serverCmd}, {"server-bin", o.serverBin}} {
		if !o.changed(f.name) {
			continue
		}
		sources++
		if strings.TrimSpace(f.value) == "" {
			// An unset variable ("--target $ADDR"): measuring the bundled
			// reference instead would report figures for the wrong server.
			return fmt.Errorf("--%s is empty (an unset variable?): give it a value, or leave the flag out to measure the bundled reference", f.name)
		}
	}
	if sources > 1 {
		return errors.New("--target, --server-cmd and --server-bin are alternatives: give at most one")
	}
	if o.target != "" {
		if err := checkLoopback(o.target); err != nil {
			return fmt.Errorf("--target: %w", err)
		}
	}
	if o.changed("server-cmd") && !strings.Contains(o.serverCmd, "{port}") {
		return fmt.Errorf("--server-cmd %q has no {port} placeholder: the server must listen on the port given to it", o.serverCmd)
	}
	if o.conns < 1 || o.conns > bench.MaxConns {
		return fmt.Errorf("--conns must be 1..%d, not %d", bench.MaxConns, o.conns)
	}
	if o.changed("requests") && !o.changed("duration") {
		o.duration = 0 // bounded by the count (and bench.MaxDuration)
	}
	if o.duration < 0 || o.duration > bench.MaxDuration {
		return fmt.Errorf("--duration must be 0..%v, not %v", bench.MaxDuration, o.duration)
	}
	if o.requests < 0 || o.requests > bench.MaxRequests {
		return fmt.Errorf("--requests must be 0..%d, not %d", bench.MaxRequests, o.requests)
	}
	if o.duration == 0 && o.requests == 0 {
		return errors.New("--duration 0 needs --requests: a run must be bounded by one or the other")
	}
	mix, err := bench.ParseMix(o.mixText)
	if err != nil {
		return fmt.Errorf("--mix: %w", err)
	}
	o.mix = mix
	if o.driver, err = bench.ParseDriver(o.driverText); err != nil {
		return fmt.Errorf("--driver: %w", err)
	}
	if o.payload < 0 || o.payload > bench.MaxPayload {
		return fmt.Errorf("--payload must be 0..%d bytes, not %d", bench.MaxPayload, o.payload)
	}
	if o.pipeline < 1 || o.pipeline > bench.MaxPipeline {
		return fmt.Errorf("--pipeline must be 1..%d, not %d", bench.MaxPipeline, o.pipeline)
	}
	if o.pipeline > 1 && o.framing == protocol.Raw {
		return errors.New("--pipeline needs --framing len32 or varint: raw framing has no pipelining (EA-CONN-4)")
	}
	if o.warmup < 0 || o.warmup > bench.MaxWarmup {
		return fmt.Errorf("--warmup must be 0..%v, not %v", bench.MaxWarmup, o.warmup)
	}
	if o.timeout <= 0 || o.timeout > time.Minute {
		return fmt.Errorf("--timeout must be above 0 and at most 1m, not %v", o.timeout)
	}
	if o.startTimeout <= 0 || o.startTimeout > 5*time.Minute {
		return fmt.Errorf("--start-timeout must be above 0 and at most 5m, not %v", o.startTimeout)
	}
	if o.sweep {
		for _, name := range []string{"conns", "mix", "payload", "pipeline"} {
			if o.changed(name) {
				return fmt.Errorf("--sweep sets --%s itself for each case: leave --%s out", name, name)
			}
		}
	}
	if o.changed("idle-conns") {
		if o.idleConns < 1 || o.idleConns > bench.MaxIdleConns {
			return fmt.Errorf("--idle-conns must be 1..%d, not %d", bench.MaxIdleConns, o.idleConns)
		}
		for _, name := range []string{"sweep", "plot", "conns", "mix", "payload", "pipeline", "requests", "duration", "warmup", "driver"} {
			if o.changed(name) {
				return fmt.Errorf("--%s does not apply to --idle-conns", name)
			}
		}
		if o.idlePartial >= o.idlePartOf {
			return fmt.Errorf("--idle-partial %d: must be less than --idle-partial-of, %d, the whole request's size", o.idlePartial, o.idlePartOf)
		}
		if o.idlePartOf < 16 {
			return fmt.Errorf("--idle-partial-of %d: must be at least 16 bytes", o.idlePartOf)
		}
		if o.changed("idle-partial-of") && !o.changed("idle-partial") {
			return errors.New("--idle-partial-of applies only with --idle-partial")
		}
	} else {
		for _, name := range []string{"idle-hold", "idle-partial", "idle-partial-of"} {
			if o.changed(name) {
				return fmt.Errorf("--%s applies only to --idle-conns", name)
			}
		}
	}
	if o.idleHold < 0 || o.idleHold > bench.MaxDuration {
		return fmt.Errorf("--idle-hold must be 0..%v, not %v", bench.MaxDuration, o.idleHold)
	}
	return nil
}

// checkLoopback accepts only loopback addresses: this tool loads a server
// on this machine, never one elsewhere.
func checkLoopback(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT: %v", hostport, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", hostport, port) // as echoadd-conform says it
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (127.0.0.0/8, ::1 or localhost): this tool loads local servers only", host)
	}
	return nil
}
