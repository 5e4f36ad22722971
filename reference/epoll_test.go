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

// BenchmarkRoundTrip is one client's echo round trips of 16 bytes over
// loopback on each engine; with -benchmem it shows the allocations per
// request of client and server together (the client allocates nothing).
func BenchmarkRoundTrip(b *testing.B) {
	for _, engine := range []string{EngineGoroutine, EngineEpoll} {
		if engine == EngineEpoll && DefaultEngine != EngineEpoll {
			continue
		}
		b.Run(engine, func(b *testing.B) {
			s := &Server{Framing: protocol.Len32, Engine: engine}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- s.Serve(ln) }()
			defer func() { s.Close(); <-served }()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
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
}
