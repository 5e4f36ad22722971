package comparator

import (
	"io"
	"strings"
	"testing"

	"echoadd/protocol"
)

// benchRequests are the request shapes the load generator sends.
func benchRequests() []struct {
	name string
	req  *protocol.ClientMessage
} {
	return []struct {
		name string
		req  *protocol.ClientMessage
	}{
		{"echo16", protocol.EchoRequest(strings.Repeat("x", 16))},
		{"echo1k", protocol.EchoRequest(strings.Repeat("x", 1024))},
		{"add", protocol.AddRequestOf(123456, -7)},
	}
}

// BenchmarkAppendReply measures decoding one request and encoding its reply:
// the whole per-request work apart from the system calls.
func BenchmarkAppendReply(b *testing.B) {
	for _, f := range protocol.Framings {
		for _, rc := range benchRequests() {
			b.Run(f.String()+"/"+rc.name, func(b *testing.B) {
				frame, err := f.AppendMessage(nil, rc.req)
				if err != nil {
					b.Fatal(err)
				}
				msg, _, err := f.Split(frame, 0)
				if err != nil {
					b.Fatal(err)
				}
				h := NewHandler(f, 0)
				var out []byte
				b.SetBytes(int64(len(frame)))
				b.ReportAllocs()
				for b.Loop() {
					out = h.AppendReply(out[:0], msg)
				}
			})
		}
	}
}

// loopConn reads as in repeated count times, and discards writes: a
// connection without a kernel.
type loopConn struct {
	in    []byte
	count int // repetitions of in not yet read in full
	off   int // read offset into in
}

func (c *loopConn) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && c.count > 0 {
		k := copy(p[n:], c.in[c.off:])
		n += k
		c.off += k
		if c.off == len(c.in) {
			c.off = 0
			c.count--
			break // one batch per read, as a pipelining client sends it
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (c *loopConn) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkServe drives Handler.Serve with one request per read (the
// closed-loop case) and with 16 pipelined requests per read, so that
// allocations per request include buffer handling; ns/op is per request.
func BenchmarkServe(b *testing.B) {
	for _, f := range protocol.Framings {
		for _, rc := range benchRequests() {
			for _, depth := range []int{1, 16} {
				if depth > 1 && f == protocol.Raw {
					continue
				}
				name := f.String() + "/" + rc.name
				if depth > 1 {
					name += "/pipelined16"
				}
				b.Run(name, func(b *testing.B) {
					var in []byte
					for range depth {
						var err error
						in, err = f.AppendMessage(in, rc.req)
						if err != nil {
							b.Fatal(err)
						}
					}
					h := NewHandler(f, 0)
					b.ReportAllocs()
					b.ResetTimer()
					c := &loopConn{in: in, count: (b.N + depth - 1) / depth}
					h.Serve(c)
					if want := c.count; want != 0 {
						b.Fatalf("%d reads left", want)
					}
				})
			}
		}
	}
}
