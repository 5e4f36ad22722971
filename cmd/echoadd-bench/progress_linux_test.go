package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"echoadd/protocol"
)

// openPTY returns the two ends of a new pseudo-terminal: what a program
// writes to tty, the test reads from pty.
func openPTY(t *testing.T) (pty, tty *os.File) {
	t.Helper()
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	t.Cleanup(func() { pty.Close() })
	if err := unix.IoctlSetPointerInt(int(pty.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(pty.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return pty, tty
}

// On a terminal, stderr gets a live status line while the load runs; with
// --json it does not.
func TestProgressOnATerminal(t *testing.T) {
	l := comparatorAt(t, protocol.Raw)
	for _, tc := range []struct {
		json bool
		want bool
	}{{json: false, want: true}, {json: true, want: false}} {
		pty, tty := openPTY(t)
		seen := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(pty) // until tty closes (EIO)
			seen <- string(b)
		}()
		args := []string{"--target", l.Addr().String(), "--conns", "2", "--duration", "1200ms", "--warmup", "0s"}
		if tc.json {
			args = append(args, "--json")
		}
		var stdout bytes.Buffer
		if code := run(args, &stdout, tty); code != exitOK {
			t.Fatalf("%v: exit %d", args, code)
		}
		tty.Close()
		out := <-seen
		if got := strings.Contains(out, "\r\033[K") && strings.Contains(out, "req/s"); got != tc.want {
			t.Errorf("%v: a status line on the terminal is %v, want %v; the terminal got:\n%q", args, got, tc.want, out)
		}
	}
}
