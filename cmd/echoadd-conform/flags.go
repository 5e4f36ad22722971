package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/onsi/ginkgo/v2/types"
	"github.com/spf13/pflag"

	"echoadd/internal/bytesize"
	"echoadd/internal/outfile"
	"echoadd/protocol"
	"echoadd/reference/cli"
	"echoadd/suite"
)

// Defaults the bundled reference is started with and declares to the suite.
const (
	bundledMaxMessageSize = protocol.DefaultMaxMessageSize
	bundledReadTimeout    = time.Second
)

// options are the runner's command line.
type options struct {
	target         string
	serverCmd      string
	framing        protocol.Framing
	strict         bool
	labelFilter    string
	focus          []string
	list           bool
	junitReport    string
	jsonReport     string
	timeoutScale   float64
	maxMessageSize int
	maxDeclared    bool // --max-message-size given, or the bundled reference's own
	readTimeout    time.Duration
	idleTimeout    time.Duration
	maxConns       int
	verbose        bool
	noColor        bool
	version        bool
	help           bool

	// Set by validate.
	bundled  bool     // neither --target nor --server-cmd: run the bundled reference
	warnings []string // about flags that are allowed but make the run fail
}

// newFlagSet builds the runner's flags, writing into o.
func newFlagSet(o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("echoadd-conform", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard) // run prints errors and help itself
	fs.StringVar(&o.target, "target", "", "test the server already listening on `HOST:PORT`")
	fs.StringVar(&o.serverCmd, "server-cmd", "", "start the server to test with this shell `COMMAND`, in which {port} is\nreplaced by a free port (once per spec that needs its own server)")
	fs.Var(&o.framing, "framing", "the target's `FRAMING`: raw, len32 or varint")
	fs.BoolVar(&o.strict, "strict", false, "a failed SHOULD or MAY requirement also fails the run")
	fs.StringVar(&o.labelFilter, "label-filter", "", "run only the specs whose labels match this Ginkgo label `QUERY`,\ne.g. 'must && !concurrency' or 'EA-ECHO-1 || EA-ECHO-2'")
	fs.StringArrayVar(&o.focus, "focus", nil, "run only the specs whose names match this `REGEXP` (repeatable)")
	fs.BoolVar(&o.list, "list", false, "print the selected specs with their requirement IDs and levels; run nothing")
	fs.StringVar(&o.junitReport, "junit-report", "", "also write a JUnit XML report to `FILE`")
	fs.StringVar(&o.jsonReport, "json-report", "", "also write the JSON report (schema: package echoadd/suite/report) to `FILE`")
	fs.Float64Var(&o.timeoutScale, "timeout-scale", 1, "multiply every deadline of the suite by `FACTOR`, up to 100 (slow machines, CI); EA-CONN-6's 1 s bound per reply too")
	o.maxMessageSize = protocol.MinMaxMessageSize
	fs.Var(bytesize.Var(&o.maxMessageSize, cli.MaxMessageSizeLimit), "max-message-size", "the largest request in `BYTES` the target declares it accepts, from 1024 to 1GiB,\ne.g. 1048576, 64KiB or 1MiB (the bundled reference is started with, and declares,\n1048576)")
	fs.DurationVar(&o.readTimeout, "read-timeout", 0, "the target's read timeout as a `DURATION` (e.g. 2s), for the read-timeout specs;\n0 skips them (the bundled reference is started with, and declares, 1s)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 0, "the target's idle timeout as a `DURATION`, for the idle-timeout specs (EA-LIM-4);\n0 skips them (the bundled reference is started with it, and declares none by default)")
	fs.IntVar(&o.maxConns, "max-conns", 0, "the target's connection limit, at most `N` connections served at once, for the\nconnection-limit spec (EA-LIM-5); 0 skips it (the bundled reference is started with it,\nand declares none by default)")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "print every spec and stream its wire transcript")
	fs.BoolVar(&o.noColor, "no-color", false, "no colours in the output (also: NO_COLOR set, or output not a terminal)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVarP(&o.help, "help", "h", false, "print this help and exit")
	return fs
}

// errUsage marks errors that exit 3.
var errUsage = errors.New("usage error")

// parseArgs parses and validates the command line.
func parseArgs(args []string) (*options, *pflag.FlagSet, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		return nil, fs, fmt.Errorf("%w: %v", errUsage, err)
	}
	if o.help || o.version {
		return o, fs, nil
	}
	if err := o.validate(fs); err != nil {
		return nil, fs, fmt.Errorf("%w: %v", errUsage, err)
	}
	return o, fs, nil
}

// validate checks the rules between flags and fills in the bundled
// reference's defaults.
func (o *options) validate(fs *pflag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	for _, name := range []string{"target", "server-cmd"} {
		if fs.Changed(name) && strings.TrimSpace(fs.Lookup(name).Value.String()) == "" {
			// An unset variable in CI ("--server-cmd $CMD"): running the
			// bundled reference instead would pass whatever was meant.
			return fmt.Errorf("--%s is empty (an unset variable?): give it a value, or leave the flag out to test the bundled reference", name)
		}
	}
	switch {
	case o.target != "" && o.serverCmd != "":
		return errors.New("--target and --server-cmd are mutually exclusive: test a running server or start one, not both")
	case o.target != "":
		if err := checkHostPort(o.target); err != nil {
			return fmt.Errorf("--target %q: %v", o.target, err)
		}
	case o.serverCmd != "":
		if !strings.Contains(o.serverCmd, "{port}") {
			return fmt.Errorf("--server-cmd %q does not contain {port}: the harness needs to choose the port", o.serverCmd)
		}
	default:
		o.bundled = true
		if !fs.Changed("max-message-size") {
			o.maxMessageSize = bundledMaxMessageSize
		}
		if !fs.Changed("read-timeout") {
			o.readTimeout = bundledReadTimeout
		}
	}
	o.maxDeclared = o.bundled || fs.Changed("max-message-size")
	if o.maxMessageSize < protocol.MinMaxMessageSize {
		return fmt.Errorf("--max-message-size %d is below %d, which every server must accept (EA-LIM-1)", o.maxMessageSize, protocol.MinMaxMessageSize)
	}
	if o.readTimeout < 0 {
		return fmt.Errorf("--read-timeout %v is negative", o.readTimeout)
	}
	if o.idleTimeout < 0 {
		return fmt.Errorf("--idle-timeout %v is negative", o.idleTimeout)
	}
	if o.maxConns < 0 {
		return fmt.Errorf("--max-conns %d is negative", o.maxConns)
	}
	if !(o.timeoutScale > 0) || o.timeoutScale > 100 {
		return fmt.Errorf("--timeout-scale %v is not in (0, 100]", o.timeoutScale)
	}
	var selects func([]string) bool
	if o.labelFilter != "" {
		f, err := types.ParseLabelFilter(o.labelFilter)
		if err != nil {
			return labelFilterError(o.labelFilter, err)
		}
		selects = f
	}
	for _, f := range o.focus {
		if _, err := regexp.Compile(f); err != nil {
			return fmt.Errorf("--focus %q: %v", f, err)
		}
	}
	if o.list && (o.junitReport != "" || o.jsonReport != "") {
		return errors.New("--list runs nothing, so it writes no --junit-report or --json-report")
	}
	for _, r := range []struct{ flag, path string }{{"junit-report", o.junitReport}, {"json-report", o.jsonReport}} {
		if r.path == "" {
			continue
		}
		if err := outfile.Check(r.path, true); err != nil { // the writers make missing directories
			return fmt.Errorf("--%s %q: %v", r.flag, r.path, err)
		}
	}
	if o.maxConns > 0 && o.maxConns < suite.ConcurrentClients && !o.list && (selects == nil || selects(suite.ConcurrentClientsLabels())) {
		o.warnings = append(o.warnings, fmt.Sprintf("--max-conns %d is below the %d clients EA-CONC-1 needs at once: the run will find the target NOT CONFORMANT on EA-CONC-1 (a MUST); to check only the connection limit (EA-LIM-5), add --label-filter EA-LIM-5", o.maxConns, suite.ConcurrentClients))
	}
	return nil
}

// labelFilterError explains a --label-filter Ginkgo cannot parse in plain
// text, showing where: Ginkgo's error has colour codes and shows the place
// only by colouring it.
func labelFilterError(filter string, err error) error {
	reason, column := ansiEscape.ReplaceAllString(firstLineOf(err.Error()), ""), -1
	var ge types.GinkgoError
	if errors.As(err, &ge) {
		// Message is the filter, with the offending character wrapped in
		// markup, then a line saying what is wrong.
		msg := ge.Message
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			reason = msg[i+1:]
			msg = msg[:i]
		}
		if i := strings.Index(msg, "{{"); i >= 0 && i <= len(filter) && strings.HasPrefix(filter, msg[:i]) {
			column = utf8.RuneCountInString(filter[:i])
		}
		reason = ginkgoMarkup.ReplaceAllString(reason, "")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--label-filter %q: %s", filter, strings.TrimSpace(reason))
	if column >= 0 && !strings.ContainsAny(filter, "\n\t") {
		fmt.Fprintf(&b, "\n  %s\n  %s^", filter, strings.Repeat(" ", column))
	}
	b.WriteString("\nwant a Ginkgo label query over requirement IDs, levels and sections,\ne.g. 'must && !concurrency' or 'EA-ECHO-1 || EA-ECHO-2' (--list shows each spec's IDs and level)")
	return errors.New(b.String())
}

var (
	ansiEscape   = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")
	ginkgoMarkup = regexp.MustCompile(`\{\{[a-z/-]*\}\}`)
)

// writeWarnings writes validate's warnings, one a line.
func writeWarnings(w io.Writer, o *options) error {
	for _, m := range o.warnings {
		if _, err := fmt.Fprintf(w, "echoadd-conform: warning: %s\n", m); err != nil {
			return err
		}
	}
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("missing host (use 127.0.0.1:PORT)")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

const usageHead = `echoadd-conform runs the Echo/Add conformance suite against a server.

Usage:
  echoadd-conform [flags]                        the bundled reference server
  echoadd-conform --target HOST:PORT [flags]     a server that is already running
  echoadd-conform --server-cmd 'CMD {port}' [flags]
                                                 a server the runner starts itself

Flags:
`

const usageTail = `
Each spec checks requirements of PROTOCOL.md, named by its labels (the IDs, such as
EA-ECHO-1, and the level: must, should, may). The run ends with a table giving each
requirement PASS, FAIL, NON-STRICT (a SHOULD or MAY failed), NOT JUDGED (a spec of it
stopped on another requirement's failure, or was interrupted), SKIPPED or NOT RUN, with
the reason.

Exit status:
  0    conformant: no MUST requirement failed (with --strict: no requirement failed)
  1    not conformant
  2    the target could not be tested: unreachable, server command failed, harness error
  3    usage error, or nothing judged: every selected spec skipped itself
  130  interrupted (SIGINT; 143 for SIGTERM): the report covers what ran; the stopped spec
       is no failure
`

// writeUsage writes the help text.
func writeUsage(w io.Writer, fs *pflag.FlagSet) error {
	_, err := io.WriteString(w, usageHead+flagUsages(fs)+usageTail)
	return err
}

// flagUsages lists the flags like pflag does, without its "[=true|false]"
// after boolean flags.
func flagUsages(fs *pflag.FlagSet) string {
	type row struct{ left, usage string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		varname, usage := pflag.UnquoteUsage(f)
		if f.Value.Type() != "bool" && varname != "" {
			left += " " + varname
		}
		switch f.DefValue {
		case "", "false", "0", "0s", "[]":
		default:
			usage += " (default " + f.DefValue + ")"
		}
		rows = append(rows, row{left, usage})
		width = max(width, len(left))
	})
	var b strings.Builder
	for _, r := range rows {
		pad := strings.Repeat(" ", width+3)
		fmt.Fprintf(&b, "%-*s   %s\n", width, r.left, strings.ReplaceAll(r.usage, "\n", "\n"+pad))
	}
	return b.String()
}
