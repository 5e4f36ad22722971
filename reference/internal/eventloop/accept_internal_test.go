//go:build linux

package eventloop

import (
	"net"
	"testing"
	"time"
)

// LeftAlready tells a client that connected and left (closed or reset)
// from one still there, which a connection beyond MaxConns is refused.
func TestLeftAlready(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, reset := range []bool{false, true} {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		f, err := server.(*net.TCPConn).File()
		server.Close()
		if err != nil {
			t.Fatal(err)
		}
		fd := int(f.Fd())
		if LeftAlready(fd) {
			t.Errorf("reset %v: a client still connected is taken for gone", reset)
		}
		if reset {
			client.(*net.TCPConn).SetLinger(0)
		}
		client.Close()
		deadline := time.Now().Add(5 * time.Second)
		for !LeftAlready(fd) {
			if time.Now().After(deadline) {
				t.Fatalf("reset %v: a client that closed is not seen gone after 5 s", reset)
			}
			time.Sleep(5 * time.Millisecond)
		}
		f.Close()
	}
}
