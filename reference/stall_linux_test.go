package reference

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"echoadd/protocol"
)

// TestShutdownLosesNoReplyWritten: a client pipelines 20 MB of requests and
// is slow to read, so the server's writes stall and it stops reading; then
// Shutdown. Every reply the server writes must reach the client whole,
// then EOF: closing a socket with input unread resets it, and the reset
// destroys the replies still in flight (the drain used to close so).
func TestShutdownLosesNoReplyWritten(t *testing.T) {
	const n, size = 20000, 1000
	s := &Server{Framing: protocol.Len32}
	addr := start(t, s)
	c := dial(t, addr, protocol.Len32)
	if err := c.nc.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil { // the server's writes stall sooner
		t.Fatal(err)
	}
	// Megabytes in flight when the server closes: its linger must read them
	// all (a cap of 4 MiB closed under them, and so reset).
	if err := c.nc.(*net.TCPConn).SetWriteBuffer(16 << 20); err != nil {
		t.Fatal(err)
	}
	content := strings.Repeat("x", size)
	var batch []byte
	for range n {
		batch = append(batch, encode(t, protocol.Len32, protocol.EchoRequest(content))...)
	}
	wrote := make(chan error, 1)
	go func() {
		c.nc.SetWriteDeadline(time.Now().Add(ioDeadline))
		_, err := c.nc.Write(batch) // blocks once the server stops reading; may fail once it has closed
		wrote <- err
	}()
	// The client under test is slow to read: the server's writes stall once
	// the client's receive queue is full, which it then stays.
	waitFor(t, "the client's receive queue full", receiveQueueFull(t, c.nc))
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	waitFor(t, "refusing connections", listenerClosed(addr))
	c.nc.SetReadDeadline(time.Now().Add(ioDeadline))
	got := 0
	for {
		m, err := c.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d of the %d replies: %v, want the rest whole, then EOF", got, n, err)
		}
		if m.GetEchoMessage().GetContent() != content {
			t.Fatalf("reply %d = %v, want the echo", got+1, brief(m))
		}
		got++
	}
	t.Logf("%d of %d pipelined requests answered before the close", got, n)
	if got == 0 {
		t.Error("no request answered, want those already received")
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	<-wrote
}

// receiveQueueFull reports whether nc's unread bytes (SIOCINQ) have stayed
// the same, and above 0, over the last 5 calls: nobody reads them, so the
// sender is held up.
func receiveQueueFull(t *testing.T, nc net.Conn) func() bool {
	raw, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	last, same := -1, 0
	return func() bool {
		queued := -1
		raw.Control(func(fd uintptr) { queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		if queued > 0 && queued == last {
			same++
		} else {
			same = 0
		}
		last = queued
		return same >= 4
	}
}

// TestShutdownKeepsRepliesTheKernelHolds: the server has written every
// reply, but the kernel still holds them, unsent, for a client slow to
// read, which goes on sending after the stop. Closing at once, as for an
// idle connection, turned the client's next bytes into a reset that
// destroyed those replies (an operator's review: 14 of 14 runs); so did
// closing at the end of the linger while they were still unsent.
func TestShutdownKeepsRepliesTheKernelHolds(t *testing.T) {
	const n = 8
	s := &Server{Framing: protocol.Len32}
	addr := start(t, s)
	c := dial(t, addr, protocol.Len32)
	content := leaveRepliesUnread(t, c, n, 32<<10)
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	waitFor(t, "refusing connections", listenerClosed(addr))
	// A client that streams on: a small request every 20 ms for 1.5 s,
	// longer than the linger, before it reads.
	small := encode(t, protocol.Len32, protocol.EchoRequest("late"))
	for range 75 {
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.nc.Write(small) //nolint:errcheck // the server may have closed by now
		time.Sleep(20 * time.Millisecond)
	}
	c.nc.SetReadDeadline(time.Now().Add(ioDeadline))
	for i := range n {
		m, err := c.next()
		if err != nil {
			t.Fatalf("reply %d of %d: %v, want every reply to a request received before the stop", i+1, n, err)
		}
		if m.GetEchoMessage().GetContent() != content {
			t.Fatalf("reply %d = %v, want the echo", i+1, brief(m))
		}
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestLingerForUnsentRepliesIsBounded: a client that never reads, with
// replies waiting in the kernel, keeps its connection (and its MaxConns
// slot) lingering at most about the write timeout after the server closes
// it, here for idleness: the linger kept for a slow reader must not keep a
// client that never reads for good.
func TestLingerForUnsentRepliesIsBounded(t *testing.T) {
	s := &Server{Framing: protocol.Len32, IdleTimeout: 300 * time.Millisecond, WriteTimeout: time.Second, MaxConns: 1}
	addr := start(t, s)
	c := dial(t, addr, protocol.Len32)
	leaveRepliesUnread(t, c, 8, 16<<10) // and never read them
	// Idle timeout 0.3 s, then the linger: about the write timeout, checked
	// every linger period (up to 2 s). Well before 8 s a new client is served.
	deadline := time.Now().Add(8 * time.Second)
	for {
		other := dial(t, addr, protocol.Len32)
		other.send(protocol.EchoRequest("next"))
		m, err := other.next()
		other.nc.Close()
		if err == nil && m.GetEchoMessage().GetContent() == "next" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new client still refused (%v, %v) 8 s after a client stopped reading: its slot is held", brief(m), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leftAlready, the goroutine engine's: a client that connected and left is
// not refused (nor its refusal logged) at MaxConns.
func TestLeftAlready(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if leftAlready(server) {
		t.Fatal("a client still connected is taken for gone")
	}
	client.Close()
	waitFor(t, "the client seen gone", func() bool { return leftAlready(server) })
}

// leaveRepliesUnread shrinks c's receive buffer to rcvbuf, sends n len32
// echoes of 50 KB in one write and reads none of the replies: it returns
// once they fill c's receive queue, the rest waiting in the server's
// kernel. It returns the echoes' content.
func leaveRepliesUnread(t *testing.T, c *client, n, rcvbuf int) string {
	t.Helper()
	if err := c.nc.(*net.TCPConn).SetReadBuffer(rcvbuf); err != nil {
		t.Fatal(err)
	}
	content := strings.Repeat("y", 50_000)
	var batch []byte
	for range n {
		batch = append(batch, encode(t, protocol.Len32, protocol.EchoRequest(content))...)
	}
	c.write(batch)
	waitFor(t, "the client's receive queue full", receiveQueueFull(t, c.nc))
	return content
}
