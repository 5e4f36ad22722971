package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"echoadd/protocol"
)

// Unanswering checks whether the server at addr has stopped answering
// altogether: it opens a fresh connection and sends one echo request
// (Framing f), and returns what it saw when the connect does not complete
// within w, or when nothing at all (no byte, no close) comes back within w
// of the request. It returns "" when anything happens (a reply of any kind,
// a refused connect, a close or reset) and when ctx ends first. It takes at
// most twice w. A server that is slow, or wrong, is answering; one that
// crashed refuses or resets, it does not stay silent.
func Unanswering(ctx context.Context, addr string, f protocol.Framing, w Window) string {
	start := time.Now()
	d := net.Dialer{Timeout: w.D}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if timedOut(err) && ctx.Err() == nil {
			return fmt.Sprintf("a fresh connection to %s not accepted within %v (%v)", addr, time.Since(start).Round(time.Millisecond), err)
		}
		return ""
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) }) //nolint:errcheck // best effort wake-up
	defer stop()
	req, err := f.AppendMessage(nil, protocol.EchoRequest("are you there?"))
	if err != nil {
		return ""
	}
	if err := conn.SetDeadline(time.Now().Add(w.D)); err != nil {
		return ""
	}
	if _, err := conn.Write(req); err != nil {
		if timedOut(err) && ctx.Err() == nil {
			return fmt.Sprintf("an echo request on a fresh connection to %s not taken within %v", addr, w.D)
		}
		return ""
	}
	sent := time.Now()
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil && timedOut(err) && ctx.Err() == nil {
		return fmt.Sprintf("%s on a fresh connection to %s within %v", NothingInReply, addr, time.Since(sent).Round(time.Millisecond))
	}
	return ""
}

// Refusing reports, for a server nobody will restart (a target given by
// its address), whether it has gone: a fresh connect to addr is refused,
// which means nothing listens there any more. It returns what it saw, or
// "" when the connect completes or fails otherwise (a full backlog times
// out: that server is there), or ctx ends first.
func Refusing(ctx context.Context, addr string, w Window) string {
	d := net.Dialer{Timeout: w.D}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		conn.Close()
		return ""
	}
	if errors.Is(err, syscall.ECONNREFUSED) && ctx.Err() == nil {
		return fmt.Sprintf("a fresh connection to %s refused: nothing listens there any more (did it crash?)", addr)
	}
	return ""
}

// NothingInReply starts what Unanswering returns when the connection was
// accepted and the request taken, but nothing came back.
const NothingInReply = "nothing in reply to an echo request"

func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
