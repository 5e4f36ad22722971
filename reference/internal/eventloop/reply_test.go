package eventloop_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"echoadd/protocol"
	"echoadd/reference/internal/eventloop"
)

// slowReply is what the reference does for a delimited request: decode with
// protocol.DecodeRequest, answer, encode the reply framed.
func slowReply(t testing.TB, f protocol.Framing, msg []byte) (reply []byte, valid bool) {
	t.Helper()
	req, err := protocol.DecodeRequest(msg)
	var m *protocol.ServerMessage
	switch {
	case err != nil:
		m = protocol.ErrorReplyFor(err)
	case req.GetEchoMessage() != nil:
		m = protocol.EchoReply(req.GetEchoMessage().GetContent())
	default:
		m = protocol.AddReply(req.GetAddRequest().GetA() + req.GetAddRequest().GetB())
	}
	b, aerr := f.AppendMessage(nil, m)
	if aerr != nil {
		t.Fatalf("encoding the reply: %v", aerr)
	}
	return b, err == nil
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendReplyAnswersWhatClientsSend(t *testing.T) {
	cases := []struct {
		name string
		req  *protocol.ClientMessage
	}{
		{"empty echo", protocol.EchoRequest("")},
		{"echo", protocol.EchoRequest("hello")},
		{"multi-byte UTF-8", protocol.EchoRequest("héllo, 世界 🌍")},
		{"NUL bytes", protocol.EchoRequest("a\x00b\x00")},
		{"long echo", protocol.EchoRequest(strings.Repeat("x", 100_000))},
		{"add", protocol.AddRequestOf(2, 3)},
		{"add zero", protocol.AddRequestOf(0, 0)},
		{"add negative", protocol.AddRequestOf(-7, 2)},
		{"add wraps", protocol.AddRequestOf(2147483647, 1)},
		{"add wraps down", protocol.AddRequestOf(-2147483648, -1)},
		{"add omitted a", protocol.AddRequestOf(0, 9)},
	}
	for _, tc := range cases {
		for _, f := range protocol.Framings {
			t.Run(tc.name+"/"+f.String(), func(t *testing.T) {
				msg := mustMarshal(t, tc.req)
				want, _ := slowReply(t, f, msg)
				got, ok := eventloop.AppendReply([]byte("prefix"), f, msg)
				if !ok {
					t.Fatalf("AppendReply(%x) declined a request in the common shape", msg)
				}
				if !bytes.Equal(got, append([]byte("prefix"), want...)) {
					t.Fatalf("AppendReply(%x) = %x, want prefix + %x", msg, got, want)
				}
			})
		}
	}
}

func TestAppendReplyMatchesDecodeRequestOnOddShapes(t *testing.T) {
	cases := []struct {
		name     string
		hex      string
		accepted bool // by the fast path; otherwise it declines
	}{
		{"echo content repeated: last wins", "0a 08 0a 02 6869 0a 02 796f", true},
		{"add a repeated: last wins", "12 04 08 01 08 05", true},
		{"add b only", "12 02 10 07", true},
		{"add operand over 32 bits is cut", "12 06 08 80 80 80 80 10", true},
		{"non-minimal length", "0a 80 00", true},
		{"empty message: no oneof", "", false},
		{"unknown field only", "1a 00", false},
		{"echo then add: oneof replaced", "0a 00 12 02 08 01", false},
		{"invalid UTF-8", "0a 03 0a 01 ff", false},
		{"invalid UTF-8 overwritten later", "0a 06 0a 01 ff 0a 01 61", false},
		{"echo_message as varint", "08 01", false},
		{"content as varint", "0a 02 08 01", false},
		{"a as fixed32", "12 05 0d 01 00 00 00", false},
		{"unknown field inside echo", "0a 02 10 01", false},
		{"truncated echo body", "0a 05 0a 01", false},
		{"truncated content", "0a 03 0a 05 61", false},
		{"truncated varint in add", "12 02 08 80", false},
		{"overlong varint in add", "12 0c 08 ff ff ff ff ff ff ff ff ff 7f", false},
		{"trailing byte", "12 00 00", false},
	}
	for _, tc := range cases {
		for _, f := range protocol.Framings {
			t.Run(tc.name+"/"+f.String(), func(t *testing.T) {
				msg := mustHex(t, tc.hex)
				want, valid := slowReply(t, f, msg)
				got, ok := eventloop.AppendReply(nil, f, msg)
				if ok != tc.accepted {
					t.Fatalf("AppendReply(%x) ok = %v, want %v", msg, ok, tc.accepted)
				}
				if ok && (!valid || !bytes.Equal(got, want)) {
					t.Fatalf("AppendReply(%x) = %x; DecodeRequest gives valid=%v, reply %x", msg, got, valid, want)
				}
				if !ok && len(got) != 0 {
					t.Fatalf("AppendReply(%x) declined but appended %x", msg, got)
				}
			})
		}
	}
}

func TestAppendReplyDoesNotAllocate(t *testing.T) {
	echo := mustMarshal(t, protocol.EchoRequest("0123456789abcdef"))
	add := mustMarshal(t, protocol.AddRequestOf(-5, 12))
	dst := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(1000, func() {
		dst, _ = eventloop.AppendReply(dst[:0], protocol.Len32, echo)
		dst, _ = eventloop.AppendReply(dst[:0], protocol.Varint, add)
	})
	if allocs != 0 {
		t.Fatalf("AppendReply allocates %v times per call pair, want 0", allocs)
	}
}

func BenchmarkAppendReplyEcho16(b *testing.B) {
	msg := mustMarshal(b, protocol.EchoRequest("0123456789abcdef"))
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = eventloop.AppendReply(dst[:0], protocol.Raw, msg)
	}
}

// FuzzAppendReply holds the fast path to protocol.DecodeRequest: whatever it
// accepts must be a valid request, answered byte for byte as the slow path
// answers it.
func FuzzAppendReply(f *testing.F) {
	for _, m := range []*protocol.ClientMessage{
		protocol.EchoRequest(""), protocol.EchoRequest("hello"), protocol.EchoRequest("héllo\x00"),
		protocol.AddRequestOf(1, 2), protocol.AddRequestOf(-2147483648, -1), protocol.AddRequestOf(0, 7),
	} {
		f.Add(mustMarshal(f, m))
	}
	for _, h := range []string{"0a 08 0a 02 6869 0a 02 796f", "0a 03 0a 01 ff", "12 02 10 07", "0a 02 08 01", "08 01", "1a 00", ""} {
		f.Add(mustHex(f, h))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, fr := range protocol.Framings {
			got, ok := eventloop.AppendReply(nil, fr, msg)
			if !ok {
				continue
			}
			want, valid := slowReply(t, fr, msg)
			if !valid {
				t.Fatalf("AppendReply accepted %x, which DecodeRequest rejects", msg)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendReply(%x) = %x, want %x", msg, got, want)
			}
		}
	})
}
