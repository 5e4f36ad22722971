package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"echoadd/bench/comparator"
	"echoadd/protocol"
)

// runComparator is `echoadd-bench comparator`: the comparator as a process
// of its own, so that its CPU and memory can be measured like any server's.
// SIGTERM or SIGINT stops it gracefully; it exits 0.
func runComparator(args []string, stdout, stderr io.Writer) int {
	var (
		listen  string
		framing = protocol.Raw
		maxSize int
		grace   time.Duration
	)
	fs := pflag.NewFlagSet("echoadd-bench comparator", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	fs.StringVar(&listen, "listen", "127.0.0.1:0", "address to listen on (port 0: a free port)")
	fs.Var(&framing, "framing", "framing: raw, len32 or varint")
	fs.IntVar(&maxSize, "max-message-size", protocol.DefaultMaxMessageSize, fmt.Sprintf("largest request in bytes, at least %d", protocol.MinMaxMessageSize))
	fs.DurationVar(&grace, "shutdown-grace", 5*time.Second, "on SIGTERM, how long connections get to finish")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage: echoadd-bench comparator [flags]\n\nThe minimal comparator server.\n\nFlags:\n%s", fs.FlagUsages())
			return exitOK
		}
		fmt.Fprintf(stderr, "echoadd-bench comparator: %v\n", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "echoadd-bench comparator: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		fmt.Fprintf(stderr, "echoadd-bench comparator: --listen %q: want HOST:PORT, e.g. 127.0.0.1:0 (%v)\n", listen, err)
		return exitUsage
	}
	if maxSize < protocol.MinMaxMessageSize {
		fmt.Fprintf(stderr, "echoadd-bench comparator: --max-message-size must be at least %d\n", protocol.MinMaxMessageSize)
		return exitUsage
	}
	// Catch the signals before listening: a client may send SIGTERM as
	// soon as the port accepts (EA-STOP-4).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sig)
	l, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(stderr, "echoadd-bench comparator: %v\n", err)
		return exitFailed
	}
	s := &comparator.Server{Framing: framing, MaxMessageSize: maxSize}
	fmt.Fprintf(stderr, "comparator: %s framing, listening on %s\n", framing, l.Addr())

	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	select {
	case err := <-served:
		fmt.Fprintf(stderr, "echoadd-bench comparator: %v\n", err)
		return exitFailed
	case <-sig:
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		fmt.Fprintf(stderr, "echoadd-bench comparator: shutdown: %v\n", err)
	}
	<-served
	return exitOK
}
