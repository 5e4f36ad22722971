// Command faulty-server is an Echo/Add server with one deliberate fault, for
// the conformance suite's self-test:
//
//	faulty-server --fault NAME --listen 127.0.0.1:PORT --framing raw|len32|varint
//
// It prints "listening on HOST:PORT" once it accepts connections and stops
// on SIGTERM or SIGINT (except with the stop faults).
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"echoadd/protocol"
	"echoadd/suite/selftest/faulty"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	var (
		fault   string
		listen  string
		framing protocol.Framing
		srv     faulty.Server
		grace   time.Duration
	)
	fs := pflag.NewFlagSet("faulty-server", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&fault, "fault", "", "the fault to inject: "+faultNames())
	fs.StringVar(&listen, "listen", "127.0.0.1:0", "address to listen on")
	fs.Var(&framing, "framing", "raw, len32 or varint")
	fs.IntVar(&srv.MaxMessageSize, "max-message-size", protocol.DefaultMaxMessageSize, "largest request in bytes")
	fs.DurationVar(&srv.ReadTimeout, "read-timeout", time.Second, "close a connection whose request stays partial this long (0: never)")
	fs.DurationVar(&srv.IdleTimeout, "idle-timeout", 0, "close a connection with no request in progress this long (0: never)")
	fs.IntVar(&srv.MaxConns, "max-conns", 0, "most connections served at once; one more gets Error CODE_OVERLOADED (0: no limit)")
	fs.DurationVar(&grace, "shutdown-grace", 5*time.Second, "how long a stop waits for connections")
	if err := fs.Parse(args); err != nil {
		return 3
	}
	srv.Fault, srv.Framing = faulty.Fault(fault), framing
	if !srv.Fault.Valid() {
		fmt.Fprintf(stderr, "faulty-server: unknown fault %q: use one of %s\n", fault, faultNames())
		return 3
	}
	srv.Exit = func(code int) {
		fmt.Fprintf(stderr, "faulty-server: exiting with %d (fault %s)\n", code, fault)
		os.Exit(code)
	}

	sigs := make(chan os.Signal, 1)
	if srv.Fault == faulty.IgnoreStop {
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	} else {
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(stderr, "faulty-server: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "faulty-server: fault %q, %s framing, listening on %s\n", fault, framing, l.Addr())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		fmt.Fprintf(stderr, "faulty-server: %v\n", err)
		return 1
	case <-sigs:
	}
	if srv.Fault == faulty.StopNoDrain {
		return 0 // "nothing to clean up": replies being written are cut off
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err = srv.Shutdown(ctx)
	if srv.Fault == faulty.StopExitOne {
		fmt.Fprintf(stderr, "faulty-server: %v\n", faulty.ErrServerClosed)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "faulty-server: shutdown: %v\n", err)
		return 1
	}
	return 0
}

func faultNames() string {
	names := make([]string, len(faulty.Faults))
	for i, f := range faulty.Faults {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}
