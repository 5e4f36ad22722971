// Package cli is the echoadd-server command line: flags, logging, signals
// and exit codes around reference.Server. cmd/echoadd-server and the
// conformance runner's re-executed reference mode both call Main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"echoadd/internal/bytesize"
	"echoadd/internal/version"
	"echoadd/protocol"
	"echoadd/reference"

	"github.com/spf13/pflag"
)

const name = "echoadd-server"

// Exit statuses.
const (
	exitOK    = 0 // served until a signal, or --help, --version
	exitServe = 1 // could not listen or serve
	exitUsage = 2 // bad flags
)

// MaxMessageSizeLimit is the largest --max-message-size accepted: a limit
// on what one connection may make the server buffer. echoadd-conform's
// --max-message-size, which it starts the bundled reference with, has the
// same bound.
const MaxMessageSizeLimit = 1 << 30

// Main runs the echoadd-server command line with args (without the program
// name) and returns the exit status. It serves until one of the stop
// signals (SIGTERM, SIGINT or SIGHUP) comes, then shuts down gracefully
// within --shutdown-grace and returns 0; a second signal closes the
// remaining connections at once. Logs go to stderr; help and version to
// stdout. It never calls os.Exit.
func Main(args []string, stdout, stderr io.Writer) int {
	// A log pipe whose reader has gone (2>&1 | head) makes writes fail with
	// EPIPE rather than kill the server with SIGPIPE: a client can cause a
	// log line.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := notifyStop(context.Background())
	defer stop()
	return run(ctx, args, stdout, stderr)
}

// stopSignals each stop the server gracefully, and a second one at once.
// SIGHUP is one of them, not a reload: the server has no configuration to
// reload, and a closing terminal, which sends it, must lose no request.
var stopSignals = []os.Signal{syscall.SIGTERM, os.Interrupt, syscall.SIGHUP}

// stopSignal is the cause of run's context when a signal ends it.
type stopSignal struct{ sig os.Signal }

func (s stopSignal) Error() string { return s.name() + " received" }

// name is the signal's conventional name, "SIGTERM", as operators send it.
func (s stopSignal) name() string {
	switch s.sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.sig.String()
}

// notifyStop returns a context that the first of stopSignals cancels, with
// a stopSignal naming it as the cause, and a function that stops listening
// for them. Until that function is called, the signals no longer have their
// default effect (ending the process).
func notifyStop(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, stopSignals...)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			cancel(stopSignal{sig})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

// options are the parsed flags.
type options struct {
	listen         string
	framing        protocol.Framing
	maxMessageSize int
	idleTimeout    time.Duration
	readTimeout    time.Duration
	writeTimeout   time.Duration
	maxConns       int
	maxBuffered    int64
	maxBufferedSet bool // given on the command line, not the default
	engine         string
	shutdownGrace  time.Duration
	logLevel       string
	logFormat      string
	version        bool
	help           bool
}

// newFlagSet returns the command's flags, bound to o and set to their
// defaults.
func newFlagSet(o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // run reports errors itself
	fs.Usage = func() {}
	fs.SortFlags = false
	fs.StringVar(&o.listen, "listen", reference.DefaultListenAddr, "TCP address to listen on, HOST:PORT; port 0 picks a free port, which the log line \"listening on HOST:PORT\" reports")
	o.framing = protocol.Raw
	fs.Var(&o.framing, "framing", "how messages are delimited: raw, len32 or varint")
	o.maxMessageSize = protocol.DefaultMaxMessageSize
	fs.Var(bytesize.Var(&o.maxMessageSize, MaxMessageSizeLimit), "max-message-size", "largest request accepted, in bytes, e.g. 1048576, 64KiB or 1MiB; from 1024 to 1GiB")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 0, "close a connection with no request in progress after this long (0 = never)")
	fs.DurationVar(&o.readTimeout, "read-timeout", 10*time.Second, "send Error CODE_TIMEOUT and close a connection whose request takes longer than this to arrive (0 = never)")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 30*time.Second, "close a connection whose client leaves its replies untaken for longer than this (0 = never)")
	fs.IntVar(&o.maxConns, "max-conns", 0, "most connections served at once; one more gets Error CODE_OVERLOADED and is closed (0 = no limit)")
	o.maxBuffered = reference.DefaultMaxBuffered
	fs.Var(bytesize.Var(&o.maxBuffered, maxBufferSize), "max-buffered", "most bytes all connections together hold for requests still arriving and replies not yet taken, e.g. 64MiB or 4GiB; a request that would need more gets Error CODE_OVERLOADED and is closed (0 = no limit); at least twice --max-message-size, which the default rises to")
	fs.StringVar(&o.engine, "engine", "", "how connections are served: epoll (event loops, Linux only; the default there) or goroutine (one per connection; the default elsewhere)")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 5*time.Second, "on SIGTERM, SIGINT or SIGHUP, how long requests in progress may take before the connections are closed by force (0 = no limit)")
	fs.StringVar(&o.logLevel, "log-level", "info", "least severe log records written: debug, info, warn or error (the start-up and stop lines are written at every level)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log record format: text or json")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVarP(&o.help, "help", "h", false, "print this help and exit")
	return fs
}

// usage writes the help text to w.
func usage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, `Usage: %s [flags]

Serves the Echo/Add protocol (PROTOCOL.md) over TCP: the reference server of
the echoadd conformance suite. At start-up it logs "listening on HOST:PORT";
SIGTERM, SIGINT or SIGHUP stops it gracefully (it stops accepting, answers
the requests already received, closes the connections and exits 0), a second
signal at once. Logs go to standard error.

Flags:
%s
Exit status: 0 after a stop by signal, 1 when it cannot listen or serve (the
port is in use, say), 2 for bad flags.
`, name, fs.FlagUsages())
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// checkListenHost rejects hosts that cannot be listened on, before a name
// lookup or a bind fails on them less clearly: digits and dots that are no
// IPv4 address (999.1.1.1), and a link-local IPv6 address without a zone.
func checkListenHost(host string) error {
	ip := net.ParseIP(host)
	switch {
	case ip == nil && host != "" && strings.Trim(host, "0123456789.") == "":
		return fmt.Errorf("%s is not an IPv4 address; give one (127.0.0.1), an IPv6 address in brackets ([::1]), or a host name", host)
	case ip != nil && ip.To4() == nil && ip.IsLinkLocalUnicast():
		return fmt.Errorf("the link-local address %s needs its interface as a zone, e.g. [%s%%eth0]:0", host, host)
	}
	return nil
}

// validate checks what the flag types alone do not, each message naming the
// flag and what to give it instead.
func validate(o *options) error {
	var errs []error
	if host, port, err := net.SplitHostPort(o.listen); err != nil || port == "" {
		errs = append(errs, fmt.Errorf("--listen %q: want HOST:PORT, e.g. %s, or 127.0.0.1:0 for a free port", o.listen, reference.DefaultListenAddr))
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: the port must be a number from 0 to 65535, e.g. %s", o.listen, net.JoinHostPort(host, "0")))
	} else if err := checkListenHost(host); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: %v", o.listen, err))
	}
	if o.maxMessageSize < protocol.MinMaxMessageSize {
		errs = append(errs, fmt.Errorf("--max-message-size %d: must be at least %d bytes, since every server accepts requests of 1024 bytes (EA-LIM-1)", o.maxMessageSize, protocol.MinMaxMessageSize))
	} else if o.maxMessageSize > MaxMessageSizeLimit {
		errs = append(errs, fmt.Errorf("--max-message-size %d: must be at most %d bytes (1GiB)", o.maxMessageSize, MaxMessageSizeLimit))
	}
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"idle-timeout", o.idleTimeout}, {"read-timeout", o.readTimeout}, {"write-timeout", o.writeTimeout}, {"shutdown-grace", o.shutdownGrace}} {
		if d.value < 0 {
			errs = append(errs, fmt.Errorf("--%s %v: must not be negative; 0 means no limit", d.flag, d.value))
		}
	}
	if twice := 2 * int64(o.maxMessageSize); !o.maxBufferedSet {
		o.maxBuffered = max(o.maxBuffered, twice)
	} else if o.maxBuffered != 0 && o.maxBuffered < twice {
		errs = append(errs, fmt.Errorf("--max-buffered %s: must be at least twice --max-message-size, %s, so that a request of the maximum size can be buffered; or 0 for no limit", bytesize.Format(o.maxBuffered), bytesize.Format(twice)))
	}
	if o.maxConns < 0 {
		errs = append(errs, fmt.Errorf("--max-conns %d: must not be negative; 0 means no limit", o.maxConns))
	}
	switch o.engine {
	case "", reference.EngineGoroutine:
	case reference.EngineEpoll:
		if reference.DefaultEngine != reference.EngineEpoll {
			errs = append(errs, fmt.Errorf("--engine epoll: not available on %s; use --engine goroutine", runtime.GOOS))
		}
	default:
		errs = append(errs, fmt.Errorf("--engine %q: use epoll or goroutine", o.engine))
	}
	if _, ok := logLevels[o.logLevel]; !ok {
		errs = append(errs, fmt.Errorf("--log-level %q: use debug, info, warn or error", o.logLevel))
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: use text or json", o.logFormat))
	}
	return errors.Join(errs...)
}

func newLogger(w io.Writer, o *options) *slog.Logger {
	level := logLevels[o.logLevel]
	opts := &slog.HandlerOptions{Level: min(level, slog.LevelInfo), ReplaceAttr: durationString}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if o.logFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(lifecycleHandler{Handler: h, level: level})
}

// lifecycleHandler writes the records of level and above, and the
// start-up and stop lines whatever the level: at --log-level warn the
// "listening on" line is still the only place that reports the port that
// --listen HOST:0 picked.
type lifecycleHandler struct {
	slog.Handler
	level slog.Level
}

func (h lifecycleHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.level && !lifecycleLine(r.Message) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h lifecycleHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return lifecycleHandler{Handler: h.Handler.WithAttrs(attrs), level: h.level}
}

func (h lifecycleHandler) WithGroup(name string) slog.Handler {
	return lifecycleHandler{Handler: h.Handler.WithGroup(name), level: h.level}
}

// lifecycleLine reports whether msg is the server's start-up line
// (reference.Server.Serve's) or one of run's stop lines.
func lifecycleLine(msg string) bool {
	return strings.HasPrefix(msg, "listening on ") || strings.HasPrefix(msg, "stopping: ") || msg == "stopped"
}

// durationString writes durations as the flags take them ("10s"), where
// the JSON handler would write nanoseconds; the text handler already does.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// versionLine is what --version prints.
func versionLine() string {
	return fmt.Sprintf("%s %s %s", name, version.String(), runtime.Version())
}

// run is Main with the stop signal as ctx; a stopSignal cause names it in
// the log.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := newFlagSet(&o)
	usageError := func(err error) int {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "%s: %s\n", name, line)
		}
		fmt.Fprintf(stderr, "Run '%s --help' for the flags.\n", name)
		return exitUsage
	}
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if o.help {
		usage(stdout, fs)
		return exitOK
	}
	if o.version {
		fmt.Fprintln(stdout, versionLine())
		return exitOK
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Errorf("unexpected argument %q: %s takes flags only", fs.Arg(0), name))
	}
	o.maxBufferedSet = fs.Changed("max-buffered")
	if err := validate(&o); err != nil {
		return usageError(err)
	}

	sink := newLogSink(stderr, logQueue, func(w io.Writer, dropped int64) {
		newLogger(w, &o).Warn("log lines dropped: stderr was not read fast enough", slog.Int64("dropped", dropped))
	})
	defer sink.Close(time.Second)
	log := newLogger(sink, &o)
	ln, err := net.Listen(listenNetwork(o.listen), o.listen)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", name, listenAdvice(o.listen, err))
		return exitServe
	}
	srv := &reference.Server{
		Framing:        o.framing,
		MaxMessageSize: o.maxMessageSize,
		IdleTimeout:    o.idleTimeout,
		ReadTimeout:    o.readTimeout,
		WriteTimeout:   o.writeTimeout,
		MaxConns:       o.maxConns,
		MaxBuffered:    o.maxBuffered,
		Engine:         o.engine,
		ShutdownGrace:  o.shutdownGrace,
		Logger:         log,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		log.Error("serving failed, stopping: the error says why (if the epoll engine could not start, --engine goroutine serves without it)", slog.Any("err", err))
		srv.Close()
		return exitServe
	case <-ctx.Done():
	}

	var why slog.Attr // none when ctx was cancelled otherwise (tests)
	if sig := (stopSignal{}); errors.As(context.Cause(ctx), &sig) {
		why = slog.String("signal", sig.name())
	}
	log.Info("stopping: answering the requests already received", why, slog.Duration("shutdown_grace", o.shutdownGrace))
	force, stopForce := signal.NotifyContext(context.Background(), stopSignals...)
	defer stopForce()
	var forced *reference.ForcedCloseError
	switch err := srv.Shutdown(force); {
	case errors.As(err, &forced) && errors.Is(err, context.DeadlineExceeded):
		log.Warn("closed the remaining connections by force, with any replies still owed on them: the shutdown grace period ran out (raise --shutdown-grace to wait longer)",
			slog.Int("conns", forced.Conns), slog.Duration("shutdown_grace", o.shutdownGrace))
	case errors.As(err, &forced):
		log.Warn("closed the remaining connections by force, with any replies still owed on them: second signal", slog.Int("conns", forced.Conns))
	case err != nil:
		log.Warn("closing the listener failed", slog.Any("err", err))
	}
	if err := <-served; !errors.Is(err, reference.ErrServerClosed) {
		log.Warn("serving ended with an error", slog.Any("err", err))
	}
	sink.Flush(time.Second) // room in the queue for the last line, unless stderr is not read
	log.Info("stopped")
	return exitOK
}

// listenNetwork is "tcp4" for an IPv4 address and "tcp6" for an IPv6 one:
// Go listens on "tcp" 0.0.0.0 with a dual-stack socket, [::], which takes
// IPv6 clients too, where the operator asked for IPv4 only. A name stays
// "tcp".
func listenNetwork(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	switch ip := net.ParseIP(host); {
	case ip == nil:
		return "tcp"
	case ip.To4() != nil:
		return "tcp4"
	}
	return "tcp6"
}

// listenAdvice says why listening on addr failed with err, and what to do.
func listenAdvice(addr string, err error) string {
	host, _, _ := net.SplitHostPort(addr)
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Sprintf("%s is already in use; pick another with --listen, or --listen %s for a free port", addr, net.JoinHostPort(host, "0"))
	case errors.Is(err, syscall.EACCES):
		return fmt.Sprintf("cannot listen on %s: %v (ports below 1024 need privileges: pick a port from 1024 up)", addr, err)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Sprintf("cannot listen on %s: %v (%s is not an address of this machine: use 127.0.0.1, ::1 or one that `ip addr` lists)", addr, err, host)
	case errors.As(err, &dns):
		return fmt.Sprintf("cannot listen on %s: %v (give an IP address, such as 127.0.0.1, or a name this machine resolves)", addr, err)
	}
	return fmt.Sprintf("cannot listen on %s: %v", addr, err)
}

// maxBufferSize is the largest --max-buffered accepted.
const maxBufferSize = 1 << 40
