package harness

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"echoadd/protocol"
)

// A test binary run with HARNESS_HELPER set is a tiny server for the
// process tests: it listens on the port given and exits on SIGTERM, or
// not ("ignore-term").
func TestMain(m *testing.M) {
	if mode := os.Getenv("HARNESS_HELPER"); mode != "" {
		os.Exit(helper(mode, os.Args[len(os.Args)-1]))
	}
	goleak.VerifyTestMain(m)
}

func helper(mode, port string) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		return 1
	}
	os.Stderr.WriteString("listening on " + l.Addr().String() + "\n")
	<-sig
	if mode == "ignore-term" {
		select {}
	}
	return 0
}

func helperCommand(mode string) string {
	return "HARNESS_HELPER=" + mode + " exec " + os.Args[0] + " {port}"
}

func TestExecLast(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"./server --port 1", "exec ./server --port 1"},
		{"  cargo run -q -- --port 1 ", "exec cargo run -q -- --port 1"},
		{"exec ./server", "exec ./server"},
		{"cd x && ./server", "cd x && ./server"},
		{"./server; echo done", "./server; echo done"},
		{"PORT=1 ./server", "PORT=1 ./server"},
		{"./server | tee log", "./server | tee log"},
	} {
		if got := execLast(tc.in); got != tc.want {
			t.Errorf("execLast(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSplitReply(t *testing.T) {
	for _, tc := range []struct {
		name            string
		framing         protocol.Framing
		hex             []byte
		n, prefix, skip int
		err             string // "", "incomplete", or a substring of the errNotFrame
	}{
		{"raw echo", protocol.Raw, []byte{0x0a, 0x02, 0x0a, 0x00, 0x12}, 4, 0, 0, ""},
		{"raw add", protocol.Raw, []byte{0x12, 0x02, 0x08, 0x1e}, 4, 0, 0, ""},
		{"raw error", protocol.Raw, []byte{0x1a, 0x02, 0x08, 0x01}, 4, 0, 0, ""},
		{"raw skips field 5", protocol.Raw, []byte{0x28, 0x01, 0x12, 0x00}, 2, 0, 2, ""},
		{"raw incomplete", protocol.Raw, []byte{0x0a, 0x05, 0x0a}, 0, 0, 0, "incomplete"},
		{"raw field 0", protocol.Raw, []byte{0x00, 0x00, 0x00, 0x02}, 0, 0, 0, "not a valid field tag"},
		{"raw wire type 7", protocol.Raw, []byte{0x0f}, 0, 0, 0, "wire type 7"},
		{"raw field number above 2^29-1", protocol.Raw, []byte{0xa1, 0xa1, 0xa1, 0xa1, 0x30, 0x30}, 0, 0, 0, "field number 1619331604 is above 536870911"},
		{"len32", protocol.Len32, []byte{0, 0, 0, 2, 0x12, 0x00, 0xff}, 6, 4, 0, ""},
		{"len32 too large", protocol.Len32, []byte{0xff, 0xff, 0xff, 0xff}, 0, 0, 0, "larger than the maximum"},
		{"varint", protocol.Varint, []byte{0x02, 0x12, 0x00}, 3, 1, 0, ""},
		{"varint incomplete", protocol.Varint, []byte{0x80}, 0, 0, 0, "incomplete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, prefix, skip, err := splitReply(tc.framing, tc.hex, 1<<20)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.err == "incomplete" && !errors.Is(err, protocol.ErrIncomplete):
				t.Fatalf("got %v, want ErrIncomplete", err)
			case tc.err != "" && tc.err != "incomplete" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("got %v, want an error containing %q", err, tc.err)
			}
			if err == nil && (n != tc.n || prefix != tc.prefix || skip != tc.skip) {
				t.Fatalf("got n=%d prefix=%d skipped=%d, want %d %d %d", n, prefix, skip, tc.n, tc.prefix, tc.skip)
			}
		})
	}
}

func TestFramingHint(t *testing.T) {
	echo := []byte{0x0a, 0x03, 0x0a, 0x01, 'x'}
	for _, tc := range []struct {
		name    string
		current protocol.Framing
		bytes   []byte
		want    string
	}{
		{"len32 read as raw", protocol.Raw, protocol.Len32.AppendFrame(nil, echo), "--framing len32"},
		{"varint read as raw", protocol.Raw, protocol.Varint.AppendFrame(nil, echo), "--framing varint"},
		{"raw read as len32", protocol.Len32, echo, "--framing raw"},
		{"raw read as varint", protocol.Varint, echo, "--framing raw"},
		{"garbage", protocol.Raw, []byte{0xde, 0xad, 0xbe, 0xef}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := framingHint(tc.bytes, tc.current)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("got hint %q, want one naming %q", got, tc.want)
			}
		})
	}
}

// TestOtherFraming: bytes received count as another framing's only when,
// read in it, they are whole replies that decode strictly and set their
// oneof; a genuine empty or undecodable reply in the client's framing is not.
func TestOtherFraming(t *testing.T) {
	errReply := encode(protocol.ErrorReply(protocol.Code_CODE_TOO_LARGE, "too large"))
	for _, tc := range []struct {
		name    string
		current protocol.Framing
		bytes   []byte
		want    string // the framing found; "" for none
	}{
		{"len32 Error reply read as varint (an empty message first)", protocol.Varint, protocol.Len32.AppendFrame(nil, errReply), "len32"},
		{"raw Error reply read as varint (undecodable)", protocol.Varint, errReply, "raw"},
		{"len32 Error reply read as raw", protocol.Raw, protocol.Len32.AppendFrame(nil, errReply), "len32"},
		{"two len32 replies and the start of a third", protocol.Varint, append(protocol.Len32.AppendFrame(protocol.Len32.AppendFrame(nil, errReply), errReply), 0, 0), "len32"},
		{"a varint empty message alone", protocol.Varint, []byte{0x00}, ""},
		{"a varint empty message, then an echo reply", protocol.Varint, []byte{0x00, 0x05, 0x0a, 0x03, 0x0a, 0x01, 'x'}, ""},
		{"a len32 empty message", protocol.Len32, []byte{0x00, 0x00, 0x00, 0x00}, ""},
		{"a len32 reply, then garbage", protocol.Varint, append(protocol.Len32.AppendFrame(nil, errReply), 0xff, 0xff, 0xff, 0xff, 0xff), ""},
		{"garbage", protocol.Varint, []byte{0x00, 0xde, 0xad, 0xbe, 0xef}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, ok := otherFraming(tc.bytes, tc.current)
			got := ""
			if ok {
				got = g.String()
			}
			if got != tc.want {
				t.Fatalf("otherFraming(% x, %v) = %q, want %q", tc.bytes, tc.current, got, tc.want)
			}
		})
	}
}

// fakeServer accepts one connection and hands it to serve.
func fakeServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	return l.Addr().String()
}

// replyWith answers each raw request with reply(request).
func replyWith(reply func(*protocol.ClientMessage) []byte) func(net.Conn) {
	return func(c net.Conn) {
		d := protocol.NewDecoder(c, protocol.Raw, 0)
		for {
			req, err := d.DecodeRequest()
			if err != nil {
				return
			}
			c.Write(reply(req))
		}
	}
}

func encode(m *protocol.ServerMessage) []byte {
	b, _ := protocol.Raw.AppendMessage(nil, m)
	return b
}

func dial(t *testing.T, addr string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), addr, Options{Latency: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// checkBlame checks the requirements f counts against in a spec checking spec.
func checkBlame(t *testing.T, f *Failure, spec []string, want ...string) {
	t.Helper()
	if got := f.Blame(spec); !slices.Equal(got, want) {
		t.Errorf("in a spec checking %v, blamed %v, want %v: %v", spec, got, want, f)
	}
}

func failureOf(t *testing.T, err error) *Failure {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("got %v, want a *Failure", err)
	}
	return f
}

func TestClientChecks(t *testing.T) {
	quiet := Window{Name: "quiet", D: 30 * time.Millisecond}
	echo := replyWith(func(r *protocol.ClientMessage) []byte {
		if e := r.GetEchoMessage(); e != nil {
			return encode(protocol.EchoReply(e.GetContent()))
		}
		return encode(protocol.AddReply(r.GetAddRequest().GetA() + r.GetAddRequest().GetB()))
	})

	t.Run("a correct server passes", func(t *testing.T) {
		c := dial(t, fakeServer(t, echo))
		for _, err := range []error{c.Echo("Hello, World!"), c.Add(10, 20), c.ExpectSilence(quiet), c.Probe()} {
			if err != nil {
				t.Fatal(err)
			}
		}
		tr := c.Transcript().String()
		for _, want := range []string{"0a 0f 0a 0d 48 65", `request #1: echo_message "Hello, World!"`, "reply #2: add_response result=30", "nothing arrived within the quiet window"} {
			if !strings.Contains(tr, want) {
				t.Errorf("transcript lacks %q:\n%s", want, tr)
			}
		}
	})

	t.Run("a wrong sum is the spec's EA-ADD-n, else EA-ADD-1", func(t *testing.T) {
		c := dial(t, fakeServer(t, replyWith(func(r *protocol.ClientMessage) []byte {
			return encode(protocol.AddReply(r.GetAddRequest().GetA()))
		})))
		f := failureOf(t, c.Add(10, 20))
		if !strings.Contains(f.Reason(), "got add_response result=10, want add_response result=30") {
			t.Fatalf("got %v", f)
		}
		checkBlame(t, f, []string{"EA-ADD-2", "EA-CONN-3"}, "EA-ADD-2")
		checkBlame(t, f, []string{"EA-CONN-1", "EA-CONN-3", "EA-CONC-1"}, "EA-ADD-1")
	})

	t.Run("a wrong echo is the spec's EA-ECHO-n, else EA-ECHO-1", func(t *testing.T) {
		c := dial(t, fakeServer(t, replyWith(func(r *protocol.ClientMessage) []byte {
			content, _, _ := strings.Cut(r.GetEchoMessage().GetContent(), "\x00")
			return encode(protocol.EchoReply(content))
		})))
		f := failureOf(t, c.Echo("a\x00b"))
		checkBlame(t, f, []string{"EA-ECHO-2"}, "EA-ECHO-2")
		checkBlame(t, f, []string{"EA-ECHO-1", "EA-CONN-3", "EA-CONN-1"}, "EA-ECHO-1")
		checkBlame(t, f, []string{"EA-CONN-6"}, "EA-ECHO-1")
	})

	t.Run("the reply to a later request is EA-CONN-2", func(t *testing.T) {
		c := dial(t, fakeServer(t, func(conn net.Conn) {
			d := protocol.NewDecoder(conn, protocol.Raw, 0)
			first, _ := d.DecodeRequest()
			second, _ := d.DecodeRequest()
			conn.Write(encode(protocol.EchoReply(second.GetEchoMessage().GetContent())))
			conn.Write(encode(protocol.EchoReply(first.GetEchoMessage().GetContent())))
		}))
		if err := c.Send(protocol.EchoRequest("first"), protocol.EchoRequest("second")); err != nil {
			t.Fatal(err)
		}
		f := failureOf(t, c.ExpectEcho("first"))
		checkBlame(t, f, []string{"EA-ECHO-1", "EA-CONN-1"}, "EA-CONN-2")
		if !strings.Contains(f.Got, "sent in the same write (if the reply to this one never comes") {
			t.Errorf("got %q: want it to say the two went out together, and what a missing reply would mean", f.Got)
		}
	})

	t.Run("an empty frame after each reply is EA-CONN-1 (an extra reply), not EA-MSG-1", func(t *testing.T) {
		addr := fakeServer(t, func(conn net.Conn) {
			d := protocol.NewDecoder(conn, protocol.Len32, 0)
			for {
				req, err := d.DecodeRequest()
				if err != nil {
					return
				}
				b, _ := protocol.Len32.AppendMessage(nil, protocol.EchoReply(req.GetEchoMessage().GetContent()))
				conn.Write(protocol.Len32.AppendFrame(b, nil)) // one write: the reply, then an empty frame
			}
		})
		c, err := Dial(context.Background(), addr, Options{Framing: protocol.Len32, Latency: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Echo("one"); err != nil {
			t.Fatal(err)
		}
		if f := failureOf(t, c.Echo("two")); f.IDs[0] != "EA-CONN-1" {
			t.Fatalf("got %v", f)
		}
	})

	t.Run("a len32 reply to a varint client is EA-FRAME-5 with a hint, an empty varint reply EA-MSG-1", func(t *testing.T) {
		for _, tc := range []struct {
			reply    []byte
			id, hint string
		}{
			{protocol.Len32.AppendFrame(nil, encode(protocol.ErrorReply(protocol.Code_CODE_TOO_LARGE, "too large"))), "EA-FRAME-5", TryFraming + "len32"},
			{[]byte{0x00}, "EA-MSG-1", ""},
		} {
			addr := fakeServer(t, func(conn net.Conn) {
				io.ReadFull(conn, make([]byte, 1))
				conn.Write(tc.reply)
				io.Copy(io.Discard, conn)
			})
			c, err := Dial(context.Background(), addr, Options{Framing: protocol.Varint, Latency: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			f := failureOf(t, c.Echo("x"))
			if !slices.Equal(f.IDs, []string{tc.id}) || !strings.Contains(f.Hint, tc.hint) || (tc.hint == "") != (f.Hint == "") {
				t.Errorf("reply % x: got IDs %v, hint %q; want [%s], a hint naming %q", tc.reply, f.IDs, f.Hint, tc.id, tc.hint)
			}
		}
	})

	t.Run("a close before the first reply is EA-TRANS-1, or the spec's requirement that it be served", func(t *testing.T) {
		c := dial(t, fakeServer(t, func(conn net.Conn) { io.ReadFull(conn, make([]byte, 1)) }))
		f := failureOf(t, c.Echo("closed before its reply"))
		checkBlame(t, f, []string{"EA-ECHO-1", "EA-CONN-1"}, "EA-TRANS-1")
		checkBlame(t, f, []string{"EA-MAL-1"}, "EA-MAL-1")
	})

	t.Run("a close after a reply, with another due, is EA-CONN-3 whatever kind of request is due", func(t *testing.T) {
		c := dial(t, fakeServer(t, func(conn net.Conn) {
			req, _ := protocol.NewDecoder(conn, protocol.Raw, 0).DecodeRequest()
			conn.Write(encode(protocol.EchoReply(req.GetEchoMessage().GetContent())))
		}))
		if err := c.Echo("a\x00b"); err != nil {
			t.Fatal(err)
		}
		f := failureOf(t, c.Probe())
		checkBlame(t, f, []string{"EA-ECHO-2"}, "EA-CONN-3")
		// EOF, or a reset when the probe reached the server before its
		// close (a close with input unread).
		if !strings.Contains(f.Got, "the connection closed (") || !strings.HasSuffix(f.Got, ") after reply #1") {
			t.Errorf("got %q, want it to say after which reply", f.Got)
		}
	})

	t.Run("an Error reply to a valid request is EA-MSG-1, or EA-LIM-1 for CODE_TOO_LARGE at most 1024 bytes", func(t *testing.T) {
		c := dial(t, fakeServer(t, replyWith(func(r *protocol.ClientMessage) []byte {
			if len(r.GetEchoMessage().GetContent()) > 10 {
				return encode(protocol.ErrorReply(protocol.Code_CODE_TOO_LARGE, "too large"))
			}
			return encode(protocol.ErrorReply(protocol.Code_CODE_OVERLOADED, "busy"))
		})))
		checkBlame(t, failureOf(t, c.Echo("short")), []string{"EA-CONN-6"}, "EA-MSG-1")
		f := failureOf(t, c.Echo("longer than ten bytes"))
		checkBlame(t, f, []string{"EA-CONN-6"}, "EA-LIM-1")
		checkBlame(t, f, []string{"EA-ECHO-3"}, "EA-ECHO-3")
	})

	t.Run("a close where an Error reply is due is the spec's own", func(t *testing.T) {
		c := dial(t, fakeServer(t, func(conn net.Conn) {}))
		_, err := c.ExpectErrorReply()
		checkBlame(t, failureOf(t, err), []string{"EA-MAL-3"}, "EA-MAL-3")
	})

	t.Run("the wrong reply kind is EA-MSG-1", func(t *testing.T) {
		c := dial(t, fakeServer(t, replyWith(func(*protocol.ClientMessage) []byte { return encode(protocol.EchoReply("30")) })))
		if f := failureOf(t, c.Add(10, 20)); f.IDs[0] != "EA-MSG-1" {
			t.Fatalf("got %v", f)
		}
	})

	t.Run("a late reply is EA-CONN-6", func(t *testing.T) {
		slow := replyWith(func(r *protocol.ClientMessage) []byte {
			if r.GetEchoMessage().GetContent() == "late" {
				time.Sleep(300 * time.Millisecond) // the fault under test: a slow server
			}
			return encode(protocol.EchoReply(r.GetEchoMessage().GetContent()))
		})
		// A crowd's first reply comes with the hint about a full listen
		// backlog; a lone client's, and a later one, without.
		crowd, err := Dial(context.Background(), fakeServer(t, slow), Options{Latency: 200 * time.Millisecond, Crowd: true})
		if err != nil {
			t.Fatal(err)
		}
		defer crowd.Close()
		f := failureOf(t, crowd.Echo("late"))
		if f.IDs[0] != "EA-CONN-6" || !strings.Contains(f.Reason(), "listen backlog") {
			t.Fatalf("first reply of a crowd: got %v, want EA-CONN-6 with the backlog hint", f)
		}
		if f := failureOf(t, dial(t, fakeServer(t, slow)).Echo("late")); f.IDs[0] != "EA-CONN-6" || strings.Contains(f.Reason(), "listen backlog") {
			t.Fatalf("first reply of a lone client: got %v, want EA-CONN-6 without the backlog hint", f)
		}
		c := dial(t, fakeServer(t, slow))
		if err := c.Echo("on time"); err != nil {
			t.Fatal(err)
		}
		if f := failureOf(t, c.Echo("late")); f.IDs[0] != "EA-CONN-6" || strings.Contains(f.Reason(), "listen backlog") {
			t.Fatalf("second reply: got %v, want EA-CONN-6 without the backlog hint", f)
		}
	})

	t.Run("an extra reply is EA-CONN-1", func(t *testing.T) {
		c := dial(t, fakeServer(t, replyWith(func(r *protocol.ClientMessage) []byte {
			b := encode(protocol.EchoReply(r.GetEchoMessage().GetContent()))
			return append(b, b...)
		})))
		if err := c.Echo("twice"); err != nil {
			t.Fatal(err)
		}
		if f := failureOf(t, c.ExpectSilence(quiet)); f.IDs[0] != "EA-CONN-1" {
			t.Fatalf("got %v", f)
		}
	})

	t.Run("no success accepts an error, a close and silence, and rejects success", func(t *testing.T) {
		c := dial(t, fakeServer(t, func(conn net.Conn) {
			conn.Write(encode(protocol.ErrorReply(protocol.Code_CODE_MALFORMED, "")))
			io.ReadFull(conn, make([]byte, 1))
			conn.Write(encode(protocol.EchoReply("")))
		}))
		if o, err := c.ExpectNoSuccess(quiet); err != nil || o.Reply == nil {
			t.Fatalf("error reply: got %v, %v", o, err)
		}
		if o, err := c.ExpectNoSuccess(quiet); err != nil || !o.Silent {
			t.Fatalf("silence: got %v, %v", o, err)
		}
		c.SendRaw([]byte{0})
		_, err := c.ExpectNoSuccess(quiet)
		if f := failureOf(t, err); !slices.Equal(f.Blame([]string{"EA-MAL-1", "EA-MAL-2"}), []string{"EA-MAL-2"}) {
			t.Fatalf("a success reply to malformed input: got %v, want it counted against EA-MAL-2 alone", f.Blame([]string{"EA-MAL-1", "EA-MAL-2"}))
		}
		if o, err := c.ExpectNoSuccess(quiet); err != nil || o.Closed == nil {
			t.Fatalf("close: got %v, %v", o, err)
		}
		if err := c.ExpectClosed(quiet); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a len32 server read as raw gets a framing hint", func(t *testing.T) {
		c := dial(t, fakeServer(t, func(conn net.Conn) {
			conn.Write(protocol.Len32.AppendFrame(nil, encode(protocol.EchoReply("x"))))
		}))
		f := failureOf(t, c.ExpectEcho("x"))
		if f.IDs[0] != "EA-FRAME-1" || !strings.Contains(f.Hint, "--framing len32") {
			t.Fatalf("got %v", f)
		}
	})

	t.Run("a reply setting two oneof members is EA-MSG-1, one member written twice is fine", func(t *testing.T) {
		addr := fakeServer(t, func(conn net.Conn) {
			d := protocol.NewDecoder(conn, protocol.Len32, 0)
			for _, body := range [][]byte{
				{0x12, 0x02, 0x08, 0x1e, 0x12, 0x00}, // add_response twice: merged, result=30
				{0x0a, 0x00, 0x12, 0x02, 0x08, 0x1e}, // an empty echo_message, then add_response
			} {
				if _, err := d.DecodeRequest(); err != nil {
					return
				}
				conn.Write(protocol.Len32.AppendFrame(nil, body))
			}
		})
		c, err := Dial(context.Background(), addr, Options{Framing: protocol.Len32, Latency: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Add(10, 20); err != nil {
			t.Fatalf("one member written twice: %v", err)
		}
		f := failureOf(t, c.Add(10, 20))
		if f.IDs[0] != "EA-MSG-1" || !strings.Contains(f.Got, "echo_message then add_response") {
			t.Fatalf("got %v", f)
		}
	})

	t.Run("raw bytes that are no reply are EA-CONN-1, though a raw client skips them", func(t *testing.T) {
		c := dial(t, fakeServer(t, replyWith(func(r *protocol.ClientMessage) []byte {
			return append(encode(protocol.EchoReply(r.GetEchoMessage().GetContent())), 0x78, 0x00) // the reply, then field 15
		})))
		if err := c.Echo("before a keep-alive"); err != nil {
			t.Fatal(err)
		}
		f := failureOf(t, c.Echo("after a keep-alive"))
		if f.IDs[0] != "EA-CONN-1" || !strings.Contains(f.Got, "2 bytes of fields that are no reply (78 00)") {
			t.Fatalf("got %v", f)
		}
		if err := c.ExpectEcho("after a keep-alive"); err != nil {
			t.Fatalf("the reply after them: %v", err)
		}
	})

	t.Run("a raw greeting before the first reply is EA-CONN-1", func(t *testing.T) {
		c := dial(t, fakeServer(t, func(conn net.Conn) {
			conn.Write([]byte{0x78, 0x00}) // field 15, on accept
			replyWith(func(r *protocol.ClientMessage) []byte {
				return encode(protocol.EchoReply(r.GetEchoMessage().GetContent()))
			})(conn)
		}))
		f := failureOf(t, c.Echo("after a greeting"))
		if f.IDs[0] != "EA-CONN-1" || !strings.Contains(f.Got, "2 bytes before the first reply that are no reply (78 00)") {
			t.Fatalf("got %v", f)
		}
	})

	t.Run("a raw greeting is not the start of a reply", func(t *testing.T) {
		c := dial(t, fakeServer(t, func(conn net.Conn) {
			conn.Write([]byte{0x78, 0x00}) // field 15, on accept
			req, err := protocol.NewDecoder(conn, protocol.Raw, 0).DecodeRequest()
			if err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond) // the server under test answers late
			conn.Write(encode(protocol.EchoReply(req.GetEchoMessage().GetContent())))
		}))
		if err := c.Send(protocol.EchoRequest("x")); err != nil {
			t.Fatal(err)
		}
		if err := c.AwaitReplyStart(Window{Name: "reply", D: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
		if len(c.rbuf) <= 2 {
			t.Fatalf("AwaitReplyStart returned with % x buffered, the greeting alone", c.rbuf)
		}
	})

	t.Run("a field 3 that is not an Error is EA-ERR-2", func(t *testing.T) {
		c := dial(t, fakeServer(t, func(conn net.Conn) {
			conn.Write(append([]byte{0x1a, 0x02}, "no"...))
		}))
		_, err := c.ExpectErrorReply()
		if f := failureOf(t, err); f.IDs[0] != "EA-ERR-2" {
			t.Fatalf("got %v", f)
		}
	})
}

func TestDialLocalhostHint(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Dial(context.Background(), net.JoinHostPort("localhost", itoa(port)), Options{})
	if err == nil || !strings.Contains(err.Error(), "::1") {
		t.Fatalf("got %v, want the localhost hint", err)
	}
	f := failureOf(t, err)
	checkBlame(t, f, []string{"EA-ECHO-1"}, "EA-TRANS-1")
	checkBlame(t, f, []string{"EA-MAL-1", "EA-MAL-2"}, "EA-MAL-1")
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestStart(t *testing.T) {
	ctx := context.Background()
	t.Run("no {port}", func(t *testing.T) {
		if _, err := Start(ctx, StartOptions{Command: "true"}); !errors.Is(err, ErrNoPort) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("exits before listening", func(t *testing.T) {
		_, err := Start(ctx, StartOptions{Command: "echo cannot start >&2; exit 3 # {port}"})
		if err == nil || !strings.Contains(err.Error(), "cannot start") || !strings.Contains(err.Error(), "exit status 3") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("never listens", func(t *testing.T) {
		start := time.Now()
		_, err := Start(ctx, StartOptions{Command: "echo waiting; exec sleep 30 # {port}", StartTimeout: 200 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "did not accept") || !strings.Contains(err.Error(), "waiting") {
			t.Fatalf("got %v", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("took %v", time.Since(start))
		}
	})
	t.Run("listens, uses CPU time, stops with exit 0", func(t *testing.T) {
		p, err := Start(ctx, StartOptions{Command: helperCommand("serve")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.CPUTime(); err != nil && !errors.Is(err, ErrCPUTimeUnsupported) {
			t.Fatal(err)
		}
		e := p.Stop(5 * time.Second)
		if e.Code != 0 || e.Killed || e.Signal != "" {
			t.Fatalf("got %v", e)
		}
		if !strings.Contains(p.Output(), "listening on") {
			t.Fatalf("output %q", p.Output())
		}
	})
	t.Run("a simple command without exec: the server's own exit is judged", func(t *testing.T) {
		p, err := Start(ctx, StartOptions{Command: "env HARNESS_HELPER=serve " + os.Args[0] + " {port}"})
		if err != nil {
			t.Fatal(err)
		}
		if e := p.Stop(5 * time.Second); e.Code != 0 || e.Signal != "" {
			t.Fatalf("got %v, want exit status 0 (the shell, not the server, was judged?)", e)
		}
	})
	t.Run("ignores SIGTERM: killed after the grace period", func(t *testing.T) {
		p, err := Start(ctx, StartOptions{Command: helperCommand("ignore-term")})
		if err != nil {
			t.Fatal(err)
		}
		e := p.Stop(200 * time.Millisecond)
		if !e.Killed || e.After < 200*time.Millisecond {
			t.Fatalf("got %v", e)
		}
	})
}

// testListener listens on a random 127.0.0.1 port between 20000 and 29999.
func testListener(t *testing.T) net.Listener {
	t.Helper()
	for range 50 {
		port := 20000 + rand.IntN(10000)
		if l, err := net.Listen("tcp", "127.0.0.1:"+itoa(port)); err == nil {
			t.Cleanup(func() { l.Close() })
			return l
		}
	}
	t.Fatal("no free port in 20000-29999 after 50 tries")
	return nil
}

// serveOne is fakeServer on a testListener.
func serveOne(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l := testListener(t)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		handle(c)
	}()
	return l.Addr().String()
}

func TestUnanswering(t *testing.T) {
	w := Window{Name: "liveness", D: 200 * time.Millisecond}
	serve := serveOne
	echo := replyWith(func(r *protocol.ClientMessage) []byte {
		return encode(protocol.EchoReply(r.GetEchoMessage().GetContent()))
	})
	closed := testListener(t)
	refused := closed.Addr().String()
	closed.Close()
	for _, tc := range []struct {
		name   string
		addr   func(t *testing.T) string
		silent bool
	}{
		{"answers", func(t *testing.T) string { return serve(t, echo) }, false},
		{"answers wrongly", func(t *testing.T) string {
			return serve(t, replyWith(func(*protocol.ClientMessage) []byte { return encode(protocol.AddReply(1)) }))
		}, false},
		{"closes", func(t *testing.T) string { return serve(t, func(net.Conn) {}) }, false},
		{"refuses", func(t *testing.T) string { return refused }, false},
		{"reads, never replies", func(t *testing.T) string {
			return serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr(t)
			start := time.Now()
			got := Unanswering(context.Background(), addr, protocol.Raw, w)
			if (got != "") != tc.silent {
				t.Errorf("Unanswering = %q, want silent %v", got, tc.silent)
			}
			if took := time.Since(start); took > 2*w.D+time.Second {
				t.Errorf("took %v, want at most twice %v", took, w.D)
			}
		})
	}
}

// A target nobody restarts is gone when connects are refused; one that
// accepts, or whose backlog is full, is there.
func TestRefusing(t *testing.T) {
	w := Window{Name: "liveness", D: 200 * time.Millisecond}
	closed := testListener(t)
	gone := closed.Addr().String()
	closed.Close()
	if got := Refusing(context.Background(), gone, w); !strings.Contains(got, "refused") {
		t.Errorf("a closed port: Refusing = %q, want that it refused", got)
	}
	if got := Refusing(context.Background(), serveOne(t, func(net.Conn) {}), w); got != "" {
		t.Errorf("a listening port: Refusing = %q, want \"\"", got)
	}
}

func TestShellHint(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, command string
		hint          bool
	}{
		{"cd && server: the shell dies of SIGTERM", "cd / && HARNESS_HELPER=serve " + os.Args[0] + " {port}", true},
		{"cd && exec server", "cd / && HARNESS_HELPER=serve exec " + os.Args[0] + " {port}", false},
		{"a simple command, exec'd by the harness", "env HARNESS_HELPER=serve " + os.Args[0] + " {port}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Start(ctx, StartOptions{Command: tc.command})
			if err != nil {
				t.Fatal(err)
			}
			e := p.Stop(5 * time.Second)
			if hint := p.ShellHint(e); (hint != "") != tc.hint {
				t.Errorf("exit %v: ShellHint = %q, want a hint %v", e, hint, tc.hint)
			}
		})
	}
	for _, tc := range []struct {
		command string
		want    bool
	}{
		{"./server {port}", false},
		{"exec ./server {port}", false},
		{"cd x && ./server {port}", true},
		{"cd x && exec ./server {port}", false},
		{"cd x;exec ./server {port}", false},
		{"./server {port} | tee log", true},
		{"PORT={port} ./server", true},
	} {
		if got := underShell(tc.command); got != tc.want {
			t.Errorf("underShell(%q) = %v, want %v", tc.command, got, tc.want)
		}
	}
}

func TestRefusal(t *testing.T) {
	overloaded := replyWith(func(*protocol.ClientMessage) []byte {
		return encode(protocol.ErrorReply(protocol.Code_CODE_OVERLOADED, "at the limit"))
	})
	f := failureOf(t, dial(t, serveOne(t, overloaded)).Echo("refused"))
	if f.Refusal == nil || f.Refusal.Msg.GetError().GetCode() != protocol.Code_CODE_OVERLOADED {
		t.Errorf("Refusal = %v, want the Error CODE_OVERLOADED reply", f.Refusal)
	}
	checkBlame(t, f, []string{"EA-CONC-1"}, "EA-MSG-1") // the spec says better (suite.refusedAtLimit)

	wrong := replyWith(func(*protocol.ClientMessage) []byte { return encode(protocol.AddReply(1)) })
	if f := failureOf(t, dial(t, serveOne(t, wrong)).Echo("wrong kind")); f.Refusal != nil {
		t.Errorf("Refusal = %v for a success reply of the wrong kind, want nil", f.Refusal)
	}
}

// TestFramingHintIn: the hint is read back from the failure text, not
// from a details section or a transcript.
func TestFramingHintIn(t *testing.T) {
	const hint = "the bytes received look like len32 framing (each message behind a 4-byte big-endian length, e.g. 00 00 00 NN), not raw: try --framing len32"
	for _, tc := range []struct {
		name, msg, want string
	}{
		{"framing hint", "EA-FRAME-1: got bytes that are not a raw reply, want x\nhint: " + hint + " (read that way, they are error CODE_TOO_LARGE \"...\")\n\nconn 1 ...", hint},
		{"none", "EA-ECHO-2: got no reply within 2s of its request, want echo_message \"\"\n\nconn 1 ...", ""},
		{"a shell's hint", "EA-STOP-4: got exit status 143, want exit status 0\n\nhint: the command runs under sh -c: start it with exec", ""},
		{"in the transcript", "EA-ECHO-1: got x, want y\n\nhint: try --framing len32", ""},
	} {
		if got := FramingHintIn(tc.msg); got != tc.want {
			t.Errorf("%s: FramingHintIn = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A late reply's latency is never shown equal to the bound it broke.
func TestOver(t *testing.T) {
	for _, tc := range []struct{ l, want time.Duration }{
		{1500 * time.Millisecond, 1500 * time.Millisecond},
		{1000400 * time.Microsecond, 1000400 * time.Microsecond}, // 1s to the millisecond
		{1012345 * time.Microsecond, 1012 * time.Millisecond},
		{time.Second + 300, time.Second + 300}, // 1s to the microsecond too
	} {
		if got := over(tc.l, time.Second); got != tc.want {
			t.Errorf("over(%v, 1s) = %v, want %v", tc.l, got, tc.want)
		}
	}
}

// FuzzSplitReplyAgreesWithProtocol: the harness's reply splitter, which
// also reports the stray raw fields it skipped and says in words why bytes
// are no reply, finds the same replies as protocol.Framing.SplitReply, the
// one the load generator and the codec use: the same length and prefix
// whenever both find one, and "incomplete" from both or neither. Their
// bounds differ on purpose by a field's few tag and length bytes (the
// harness bounds the declared length, the protocol package the whole
// field), so the protocol's "too large" is not compared.
func FuzzSplitReplyAgreesWithProtocol(f *testing.F) {
	for _, seed := range [][]byte{
		{0x0a, 0x02, 0x0a, 0x00, 0x12}, {0x12, 0x02, 0x08, 0x1e}, {0x1a, 0x02, 0x08, 0x01}, {0x28, 0x01, 0x12, 0x00},
		{0x0a, 0x05, 0x0a}, {0x00, 0x00, 0x00, 0x02}, {0x0f}, {0, 0, 0, 2, 0x12, 0x00, 0xff}, {0x02, 0x12, 0x00}, {0x80},
		{0x78, 0x00, 0x0a, 0x00}, {0x1d, 0x01, 0x02, 0x03, 0x04},
	} {
		for framing := range 3 {
			f.Add(uint8(framing), seed)
		}
	}
	const max = 1 << 10
	f.Fuzz(func(t *testing.T, framing uint8, buf []byte) {
		fr := []protocol.Framing{protocol.Raw, protocol.Len32, protocol.Varint}[framing%3]
		n, prefix, skipped, err := splitReply(fr, buf, max)
		msg, pn, perr := fr.SplitReply(buf, max)
		var tooLarge *protocol.TooLargeError
		if errors.As(perr, &tooLarge) {
			return
		}
		if errors.Is(err, protocol.ErrIncomplete) != errors.Is(perr, protocol.ErrIncomplete) {
			t.Fatalf("%v % x: harness %v, protocol %v", fr, buf, err, perr)
		}
		if err != nil || perr != nil {
			return
		}
		if skipped+n != pn || n-prefix != len(msg) || !slices.Equal(buf[skipped+prefix:skipped+n], msg) {
			t.Fatalf("%v % x: harness skipped %d, reply of %d (prefix %d); protocol %d in all, reply % x", fr, buf, skipped, n, prefix, pn, msg)
		}
	})
}
