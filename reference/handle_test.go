package reference

import (
	"encoding/hex"
	"math"
	"strings"
	"testing"

	"echoadd/protocol"

	"google.golang.org/protobuf/proto"
)

func TestHandle(t *testing.T) {
	tests := []struct {
		name string
		req  *protocol.ClientMessage
		want *protocol.ServerMessage
	}{
		{"echo", protocol.EchoRequest("Hello, World!"), protocol.EchoReply("Hello, World!")},
		{"echo empty", protocol.EchoRequest(""), protocol.EchoReply("")},
		{"echo multi-byte UTF-8 and NUL", protocol.EchoRequest("héllo, 世界\x00!"), protocol.EchoReply("héllo, 世界\x00!")},
		{"add", protocol.AddRequestOf(10, 20), protocol.AddReply(30)},
		{"add negative", protocol.AddRequestOf(-7, 3), protocol.AddReply(-4)},
		{"add wraps up", protocol.AddRequestOf(math.MaxInt32, 1), protocol.AddReply(math.MinInt32)},
		{"add wraps down", protocol.AddRequestOf(math.MinInt32, -1), protocol.AddReply(math.MaxInt32)},
		{"add omitted operands", &protocol.ClientMessage{Message: &protocol.ClientMessage_AddRequest{AddRequest: &protocol.AddRequest{}}}, protocol.AddReply(0)},
		{"add omitted b", &protocol.ClientMessage{Message: &protocol.ClientMessage_AddRequest{AddRequest: &protocol.AddRequest{A: 5}}}, protocol.AddReply(5)},
		{"echo with nil message", &protocol.ClientMessage{Message: &protocol.ClientMessage_EchoMessage{}}, protocol.EchoReply("")},
		{"no oneof", &protocol.ClientMessage{}, protocol.ErrorReply(protocol.Code_CODE_EMPTY_REQUEST, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Handle(tt.req); !proto.Equal(got, tt.want) {
				t.Errorf("Handle(%v) = %v, want %v", tt.req, got, tt.want)
			}
		})
	}
}

// wireVectors are requests and their replies as bytes on the wire, per
// framing; the raw ones are those of the original exercise.
var wireVectors = []struct {
	name           string
	framing        protocol.Framing
	request, reply string // hex
}{
	{"raw echo", protocol.Raw, "0a0f0a0d" + hex.EncodeToString([]byte("Hello, World!")), "0a0f0a0d" + hex.EncodeToString([]byte("Hello, World!"))},
	{"raw add", protocol.Raw, "1204080a1014", "1202081e"},
	{"len32 echo", protocol.Len32, "00000011" + "0a0f0a0d" + hex.EncodeToString([]byte("Hello, World!")), "00000011" + "0a0f0a0d" + hex.EncodeToString([]byte("Hello, World!"))},
	{"len32 add", protocol.Len32, "00000006" + "1204080a1014", "00000004" + "1202081e"},
	{"varint echo", protocol.Varint, "11" + "0a0f0a0d" + hex.EncodeToString([]byte("Hello, World!")), "11" + "0a0f0a0d" + hex.EncodeToString([]byte("Hello, World!"))},
	{"varint add", protocol.Varint, "06" + "1204080a1014", "04" + "1202081e"},
}

// TestWireVectors runs the vectors through the codec and Handle, no sockets;
// TestServerWireVectors sends them to a server.
func TestWireVectors(t *testing.T) {
	for _, v := range wireVectors {
		t.Run(v.name, func(t *testing.T) {
			in := mustHex(t, v.request)
			msg, n, err := v.framing.Split(in, 0)
			if err != nil || n != len(in) {
				t.Fatalf("Split(%s) = %d bytes, %v; want the whole %d bytes", v.request, n, err, len(in))
			}
			req, err := protocol.DecodeRequest(msg)
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			out, err := v.framing.AppendMessage(nil, Handle(req))
			if err != nil {
				t.Fatalf("AppendMessage: %v", err)
			}
			if got := hex.EncodeToString(out); got != v.reply {
				t.Errorf("reply = %s, want %s", got, v.reply)
			}
		})
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// BenchmarkHandle measures what a server does per request once the frame is
// delimited: decode, Handle, encode the framed reply into a reused buffer.
func BenchmarkHandle(b *testing.B) {
	for _, bc := range []struct {
		name string
		req  *protocol.ClientMessage
	}{
		{"echo13", protocol.EchoRequest("Hello, World!")},
		{"echo1k", protocol.EchoRequest(strings.Repeat("x", 1000))},
		{"add", protocol.AddRequestOf(10, 20)},
	} {
		msg, err := proto.Marshal(bc.req)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name+"/handle+encode", func(b *testing.B) {
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				out, err = protocol.Len32.AppendMessage(out[:0], Handle(bc.req))
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/decode+handle+encode", func(b *testing.B) {
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				req, err := protocol.DecodeRequest(msg)
				if err != nil {
					b.Fatal(err)
				}
				out, err = protocol.Len32.AppendMessage(out[:0], Handle(req))
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
