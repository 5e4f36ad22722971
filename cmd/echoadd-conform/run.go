package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/formatter"
	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
	"github.com/spf13/pflag"

	"echoadd/internal/version"
	"echoadd/suite"
	"echoadd/suite/report"
)

const suiteDescription = "Echo/Add conformance"

// serverOutputLimit is how much of a started server's output the JSON
// report keeps (the end of it).
const serverOutputLimit = 64 << 10

func run(args []string, stdout, stderr io.Writer) int {
	o, fs, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "echoadd-conform: %v\nRun 'echoadd-conform --help' for usage.\n", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return report.ExitUsage
	}
	if o.help {
		if err := writeUsage(stdout, fs); err != nil {
			return report.ExitHarnessError
		}
		return 0
	}
	if o.version {
		fmt.Fprintf(stdout, "echoadd-conform %s (ginkgo %s, %s)\n", version.String(), types.VERSION, runtime.Version())
		return 0
	}
	if err := writeWarnings(stderr, o); err != nil {
		return report.ExitHarnessError
	}

	r := &runner{opts: o, flags: fs, stdout: stdout, stderr: stderr, color: useColor(o, stdout)}
	return r.run()
}

// runner is one run of the suite.
type runner struct {
	opts           *options
	flags          *pflag.FlagSet
	stdout, stderr io.Writer
	color          bool
	serverOut      tailBuffer
}

func (r *runner) run() int {
	cfg, err := r.suiteConfig()
	if err != nil {
		fmt.Fprintf(r.stderr, "echoadd-conform: %v\n", err)
		return report.ExitHarnessError
	}
	if err := suite.Configure(cfg); err != nil {
		fmt.Fprintf(r.stderr, "echoadd-conform: %v\nRun 'echoadd-conform --help' for usage.\n", err)
		return report.ExitUsage
	}
	gomega.RegisterFailHandler(ginkgo.Fail)
	// Ginkgo's console reporter writes to these; point them at our writers.
	formatter.ColorableStdOut = &stackFilter{w: r.stdout}
	formatter.ColorableStdErr = r.stderr
	sc, rc := r.ginkgoConfig()

	if r.opts.list {
		return r.list(sc, rc)
	}

	rep := report.New(report.Meta{
		Version: version.String(),
		Target:  r.targetDescription(),
		Framing: r.opts.framing.String(),
		Strict:  r.opts.strict,
		Flags:   flagValues(r.flags),
		Started: time.Now().UTC(),
	})
	if err := r.preflight(); err != nil {
		rep.AddHarnessError("%v", err)
	} else {
		// Ginkgo takes SIGINT and SIGTERM alike as an interrupt; this
		// notes which came, for the exit status.
		terminated := make(chan os.Signal, 1)
		signal.Notify(terminated, syscall.SIGTERM)
		defer signal.Stop(terminated)
		var g types.Report
		ginkgo.ReportAfterSuite("echoadd-conform report", func(gr ginkgo.Report) { g = gr })
		ginkgo.RunSpecs(failRecorder{}, suiteDescription, sc, rc)
		rep.Terminated = len(terminated) > 0
		rep.AddGinkgo(g)
		if r.opts.junitReport != "" {
			if err := reporters.GenerateJUnitReport(g, r.opts.junitReport); err != nil {
				rep.AddHarnessError("writing --junit-report: %v", err)
			}
		}
		if len(rep.Specs) == 0 && len(rep.HarnessErrors) == 0 && len(g.SpecialSuiteFailureReasons) == 0 {
			fmt.Fprintf(r.stderr, "echoadd-conform: no spec selected: check --label-filter and --focus (see --list)%s\n", r.unbuiltHint(rep))
			return report.ExitUsage
		}
	}
	rep.ServerOutput = r.serverOut.String()
	rep.Finish(time.Now().UTC(), report.Catalogue)
	if r.opts.jsonReport != "" {
		if err := writeJSON(r.opts.jsonReport, rep); err != nil {
			rep.AddHarnessError("writing --json-report: %v", err)
			rep.Finish(rep.Finished, report.Catalogue)
		}
	}
	fmt.Fprintln(r.stdout)
	if err := rep.WriteTable(r.stdout, r.color); err != nil {
		fmt.Fprintf(r.stderr, "echoadd-conform: writing the report to stdout: %v (the verdict was %s, exit %d)\n", err, rep.Verdict, rep.ExitCode)
		return report.ExitHarnessError
	}
	return rep.ExitCode
}

// unbuiltHint names the requirements --label-filter asks for that have no
// spec with this framing (EA-FRAME-6 in raw, for one), if any.
func (r *runner) unbuiltHint(rep *report.Report) string {
	var ids []string
	for _, id := range requirementID.FindAllString(r.opts.labelFilter, -1) {
		if _, known := report.Lookup(report.Catalogue, id); known && !rep.Built(id) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return fmt.Sprintf("; the suite has no spec for %s with %s framing (see PROTOCOL.md for the framings it applies to, and --framing)",
		strings.Join(ids, ", "), r.opts.framing)
}

var requirementID = regexp.MustCompile(`EA-[A-Z]+-[0-9]+`)

// suiteConfig translates the flags into the suite's configuration.
func (r *runner) suiteConfig() (suite.Config, error) {
	o := r.opts
	maxMessageSize := 0 // not declared: the suite assumes the guaranteed 1024 and skips the specs above the maximum
	if o.maxDeclared {
		maxMessageSize = o.maxMessageSize
	}
	cfg := suite.Config{
		Target:         o.target,
		ServerCmd:      o.serverCmd,
		Framing:        o.framing,
		MaxMessageSize: maxMessageSize,
		ReadTimeout:    o.readTimeout,
		IdleTimeout:    o.idleTimeout,
		MaxConns:       o.maxConns,
		TimeoutScale:   o.timeoutScale,
		Stdout:         &r.serverOut,
		Stderr:         &r.serverOut,
	}
	if o.verbose {
		cfg.Transcript = r.stdout
		cfg.Stdout = io.MultiWriter(&r.serverOut, r.stderr)
		cfg.Stderr = cfg.Stdout
	}
	if o.bundled {
		cmd, err := bundledServerCmd(o)
		if err != nil {
			return cfg, err
		}
		cfg.ServerCmd = cmd
	}
	return cfg, nil
}

// bundledServerCmd is the command that starts the bundled reference: this
// very binary, re-executed with the hidden first argument.
func bundledServerCmd(o *options) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find this program to start the bundled reference: %v", err)
	}
	cmd := fmt.Sprintf("exec %s %s --listen 127.0.0.1:{port} --framing %s --max-message-size %d --read-timeout %s",
		shellQuote(exe), referenceServerArg, o.framing, o.maxMessageSize, o.readTimeout)
	// Off unless declared: an idle timeout would close the connections
	// that other specs hold idle, and a limit would refuse their clients.
	if o.idleTimeout > 0 {
		cmd += fmt.Sprintf(" --idle-timeout %s", o.idleTimeout)
	}
	if o.maxConns > 0 {
		cmd += fmt.Sprintf(" --max-conns %d", o.maxConns)
	}
	return cmd, nil
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (r *runner) ginkgoConfig() (types.SuiteConfig, types.ReporterConfig) {
	sc := types.NewDefaultSuiteConfig()
	sc.RandomSeed = 1 // the same order on every run
	sc.LabelFilter = r.opts.labelFilter
	sc.FocusStrings = r.opts.focus
	rc := types.NewDefaultReporterConfig()
	rc.NoColor = !r.color
	rc.Verbose = r.opts.verbose
	return sc, rc
}

// list prints the specs the flags select, without running anything.
func (r *runner) list(sc types.SuiteConfig, rc types.ReporterConfig) int {
	g := ginkgo.PreviewSpecs(suiteDescription, sc, rc)
	var specs []report.ListedSpec
	for _, sr := range g.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt || sr.State == types.SpecStateSkipped {
			continue
		}
		ids, level := report.Classify(sr.Labels())
		specs = append(specs, report.ListedSpec{Framing: r.opts.framing.String(), IDs: ids, Level: level, Name: sr.FullText()})
	}
	if err := report.WriteListing(r.stdout, r.opts.framing.String(), specs); err != nil {
		return report.ExitHarnessError
	}
	return 0
}

// preflight checks that a --target listens at all, so that an unreachable
// target is reported as such (exit 2), not as a failure of every spec.
func (r *runner) preflight() error {
	if r.opts.target == "" {
		return nil
	}
	timeout := time.Duration(float64(5*time.Second) * r.opts.timeoutScale)
	conn, err := net.DialTimeout("tcp", r.opts.target, timeout)
	if err != nil {
		return fmt.Errorf("target %s unreachable: %v", r.opts.target, err)
	}
	return conn.Close()
}

func (r *runner) targetDescription() string {
	o := r.opts
	switch {
	case o.target != "":
		return o.target
	case o.serverCmd != "":
		return "server command: " + o.serverCmd
	default:
		return "bundled reference server"
	}
}

// flagValues records every flag's value for the JSON report.
func flagValues(fs *pflag.FlagSet) map[string]string {
	m := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || f.Name == "version" {
			return
		}
		m[f.Name] = f.Value.String()
	})
	return m
}

func writeJSON(path string, rep *report.Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func useColor(o *options, stdout io.Writer) bool {
	if o.noColor || os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := stdout.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// failRecorder is the GinkgoTestingT of a run outside `go test`: the verdict
// comes from the report, so a failure needs no recording here.
type failRecorder struct{}

func (failRecorder) Fail() {}

// stackFilter passes Ginkgo's console output through, but for the
// goroutine stacks in the progress report an interrupt prints: about 200
// lines that read like a crash, where the user only pressed Ctrl-C. From
// the first stack heading after "Interrupted by User" to the report's
// closing delimiter it writes one line in their place. Ginkgo's reporter
// writes a heading, and the delimiter, with one Write each, under its lock.
type stackFilter struct {
	w           io.Writer
	interrupted bool // "Interrupted by User" was written
	skipping    bool // within the stacks
}

// stackHeading starts the stacks; progressDelimiter ends the report.
const (
	stackHeading      = "Spec Goroutine"
	progressDelimiter = "------------------------------"
)

func (f *stackFilter) Write(p []byte) (int, error) {
	switch s := string(p); {
	case f.skipping && strings.Contains(s, progressDelimiter):
		f.skipping = false
	case f.skipping:
		return len(p), nil
	case f.interrupted && strings.Contains(s, stackHeading):
		f.skipping = true
		_, err := io.WriteString(f.w, "\n  (goroutine stacks left out)\n")
		return len(p), err
	case strings.Contains(s, "Interrupted by User"):
		f.interrupted = true
	}
	if _, err := f.w.Write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// tailBuffer keeps the last serverOutputLimit bytes written to it; servers
// write to it from their own goroutines.
type tailBuffer struct {
	mu        sync.Mutex
	buf       []byte
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - serverOutputLimit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.truncated {
		return "[... earlier output dropped]\n" + string(t.buf)
	}
	return string(t.buf)
}
