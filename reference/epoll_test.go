package reference

import (
	"bytes"
	"io"
	"net"
	"testing"

	"echoadd/protocol"
	"echoadd/reference/internal/eventloop"
)

// FuzzFastPathMatchesHandle holds the epoll engine's zero-allocation fast
// path to the reference semantics: whatever eventloop.AppendReply answers
// must be a request protocol.DecodeRequest accepts, answered byte for byte
// as Handle's reply encodes.
func FuzzFastPathMatchesHandle(f *testing.F) {
	for _, v := range wireVectors {
		f.Add(mustHex(f, v.request))
	}
	for _, m := range []*protocol.ClientMessage{protocol.EchoRequest(""), protocol.EchoRequest("héllo\x00"), protocol.AddRequestOf(2147483647, 1), protocol.AddRequestOf(0, -3)} {
		b, _ := protocol.Raw.AppendMessage(nil, m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, fr := range protocol.Framings {
			got, ok := eventloop.AppendReply(nil, fr, msg)
			if !ok {
				continue
			}
			req, err := protocol.DecodeRequest(msg)
			if err != nil {
				t.Fatalf("fast path answered %x, which DecodeRequest rejects: %v", msg, err)
			}
			want, err := fr.AppendMessage(nil, Handle(req))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("fast path reply to %x = %x, Handle's = %x", msg, got, want)
			}
		}
	})
}

// serveLen32 serves a len32 Server on engine and returns a client's
// connection to it; both are closed at cleanup.
func serveLen32(tb testing.TB, engine string) net.Conn {
	tb.Helper()
	s := &Server{Framing: protocol.Len32, Engine: engine, MaxBuffered: DefaultMaxBuffered} // as the command line runs it
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	tb.Cleanup(func() { s.Close(); <-served })
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	return nc
}

// BenchmarkRoundTrip is one client's echo round trips of 16 bytes over
// loopback; with -benchmem it shows the allocations per
// request of client and server together (the client allocates nothing).
// The benchmarks measure the engine of the pass TestMain is in, so that
// each engine is measured once, under its header.
func BenchmarkRoundTrip(b *testing.B) {
	b.Run(testEngine, func(b *testing.B) {
		nc := serveLen32(b, testEngine)
		req, _ := protocol.Len32.AppendMessage(nil, protocol.EchoRequest("0123456789abcdef"))
		want, _ := protocol.Len32.AppendMessage(nil, protocol.EchoReply("0123456789abcdef"))
		got := make([]byte, len(want))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := nc.Write(req); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(nc, got); err != nil {
				b.Fatal(err)
			}
		}
		if !bytes.Equal(got, want) {
			b.Fatalf("reply %x, want %x", got, want)
		}
	})
}

// pipelinedBatch is 4,096 echo requests of 16 bytes (about 98 KiB, more
// than the epoll loop's 64 KiB read buffer, so reads end inside a request).
const pipelinedBatch = 4096

// startPipelined starts a Server on engine and returns a function that
// writes one pipelined batch to it at once, then reads and checks every
// reply; it allocates nothing itself.
func startPipelined(tb testing.TB, engine string) (batch func()) {
	tb.Helper()
	nc := serveLen32(tb, engine)
	req, _ := protocol.Len32.AppendMessage(nil, protocol.EchoRequest("0123456789abcdef"))
	want, _ := protocol.Len32.AppendMessage(nil, protocol.EchoReply("0123456789abcdef"))
	reqs := bytes.Repeat(req, pipelinedBatch)
	wants := bytes.Repeat(want, pipelinedBatch)
	got := make([]byte, len(wants))
	return func() {
		if _, err := nc.Write(reqs); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(nc, got); err != nil {
			tb.Fatal(err)
		}
		if !bytes.Equal(got, wants) {
			tb.Fatal("a reply differs from the echo of its request")
		}
	}
}

// TestPipelinedRequestsDoNotAllocate: on the epoll engine, a stream of
// pipelined requests whose reads end inside a request costs no allocation:
// the partial request is moved to the front of the read buffer rather than
// each read appended to it in the connection's own array (which then grew,
// about 33 KiB per batch), and the array is kept for the loop's next
// partial request rather than dropped when a read ends on a boundary.
func TestPipelinedRequestsDoNotAllocate(t *testing.T) {
	if DefaultEngine != EngineEpoll {
		t.Skip("the epoll engine is not available here")
	}
	const batches = 40
	batch := startPipelined(t, EngineEpoll)
	// AllocsPerRun runs it once first: the loop's output buffer and its
	// spare arrays for partial requests are made then.
	n := testing.AllocsPerRun(1, func() {
		for range batches {
			batch()
		}
	})
	// A few are the runtime's own; the loop's used to be one or two per
	// batch, and half a one per batch when a batch's last read leaves no
	// partial request and its array was dropped.
	if n > batches/10 {
		t.Errorf("%v allocations in %d batches of %d pipelined requests; want none", n, batches, pipelinedBatch)
	}
}

// BenchmarkPipelined is one client's pipelined batches (see pipelinedBatch),
// each written at once and then its replies read; an op is one request.
// Allocations per op are the server's (the client allocates nothing).
func BenchmarkPipelined(b *testing.B) {
	b.Run(testEngine, func(b *testing.B) {
		batch := startPipelined(b, testEngine)
		req, _ := protocol.Len32.AppendMessage(nil, protocol.EchoRequest("0123456789abcdef"))
		b.SetBytes(int64(len(req)))
		b.ReportAllocs()
		for i := 0; i < b.N; i += pipelinedBatch {
			batch()
		}
	})
}
