package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Fuzz targets for every decoder. Seeds: the wire vectors, the Split table's
// inputs and, when present, the hex in testdata/malformed/*.case (another
// corpus; read loosely: every line whose value is hex is one seed).
// Run one with: go test ./protocol -run='^$' -fuzz=FuzzDecoder -fuzztime=20s

// seeds returns seed inputs: unframed message bodies and framed streams.
func seeds(tb testing.TB) [][]byte {
	var out [][]byte
	for _, v := range loadVectors(tb, vectorDir) {
		out = append(out, v.Wire)
		if msg, _, err := v.split(v.Wire, 0); err == nil {
			out = append(out, msg)
		}
	}
	for _, tc := range splitCases {
		out = append(out, unhex(tb, tc.in))
	}
	files, _ := filepath.Glob("../testdata/malformed/*.case")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if _, v, ok := strings.Cut(line, ":"); ok {
				line = v
			}
			h := strings.NewReplacer(" ", "", "|", "", "\t", "", "\n", "", "\r", "").Replace(line)
			if bin, err := hex.DecodeString(h); err == nil && len(bin) > 0 {
				out = append(out, bin)
			}
		}
	}
	return out
}

func FuzzSplitRaw(f *testing.F)    { fuzzSplit(f, Raw) }
func FuzzSplitLen32(f *testing.F)  { fuzzSplit(f, Len32) }
func FuzzSplitVarint(f *testing.F) { fuzzSplit(f, Varint) }

func fuzzSplit(f *testing.F, framing Framing) {
	for _, s := range seeds(f) {
		f.Add(s, uint16(0), false)
		f.Add(s, uint16(8), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, max16 uint16, reply bool) {
		checkSplit(t, framing, data, int(max16), reply)
	})
}

// checkSplit checks Split's promises on one input.
func checkSplit(t *testing.T, f Framing, data []byte, max int, reply bool) {
	split := f.Split
	if reply {
		split = f.SplitReply
	}
	limit := max
	if limit <= 0 {
		limit = DefaultMaxMessageSize
	}
	msg, n, err := split(data, max)
	if n < 0 || n > len(data) {
		t.Fatalf("n = %d outside [0, %d]", n, len(data))
	}
	if f != Raw && err != nil && n != 0 {
		t.Fatalf("%v: n = %d with error %v; framed modes consume nothing on error", f, n, err)
	}
	class := errClass(err)
	switch class {
	case "ok":
		if len(msg) > limit {
			t.Fatalf("message of %d bytes above max %d", len(msg), limit)
		}
		if !bytes.Equal(msg, data[n-len(msg):n]) {
			t.Fatalf("msg is not the %d bytes that end at n = %d", len(msg), n)
		}
		if f == Raw {
			// One whole field 1 or 2 (1 to 3 for replies), on its own.
			last := protowire.Number(requestFields)
			if reply {
				last = replyFields
			}
			if num, _, k := protowire.ConsumeTag(msg); k < 0 || num > last {
				t.Fatalf("raw message % x is field %d; want a field from 1 to %d", msg, num, last)
			}
			if m2, n2, err2 := split(msg, max); err2 != nil || n2 != len(msg) || !bytes.Equal(m2, msg) {
				t.Fatalf("raw message % x does not split to itself: % x, %d, %v", msg, m2, n2, err2)
			}
		} else if prefix := n - len(msg); prefix < 1 || prefix > MaxPrefixLen || (f == Len32 && prefix != 4) {
			t.Fatalf("%v: prefix of %d bytes", f, prefix)
		}
		// A whole frame needs no byte after it ...
		if m2, n2, err2 := split(data[:n], max); err2 != nil || n2 != n || !bytes.Equal(m2, msg) {
			t.Fatalf("Split(data[:n]) = % x, %d, %v; want the same message", m2, n2, err2)
		}
		// ... and no shorter buffer holds it.
		for _, k := range []int{0, n / 2, n - 1} {
			if _, nk, errk := split(data[:k], max); !errors.Is(errk, ErrIncomplete) || nk > k {
				t.Fatalf("Split(data[:%d]) = n %d, %v; want ErrIncomplete", k, nk, errk)
			}
		}
	case "incomplete":
		if msg != nil {
			t.Fatal("message with ErrIncomplete")
		}
	case "too-large", "framing":
		// More bytes change nothing about an error already seen.
		more := append(bytes.Clone(data), data...)
		if _, n2, err2 := split(more, max); errClass(err2) != class || n2 != n {
			t.Fatalf("with more bytes: n %d, %v; want n %d, %v", n2, err2, n, err)
		}
		var tooLarge *TooLargeError
		if errors.As(err, &tooLarge) && (tooLarge.Size <= uint64(limit) || tooLarge.Max != limit) {
			t.Fatalf("TooLargeError{%d, %d} with limit %d", tooLarge.Size, tooLarge.Max, limit)
		}
	default:
		t.Fatalf("unexpected error %v", err)
	}
}

// splitAll is the reference reading of a whole stream: Split in a loop.
// The final class is "eof" at a clean end, "unexpected-eof" when bytes of an
// incomplete frame are left, else the fatal error's class.
func splitAll(f Framing, data []byte, max int, reply bool) (msgs [][]byte, class string) {
	split := f.Split
	if reply {
		split = f.SplitReply
	}
	for range len(data) + 1 { // each message consumes at least one byte
		msg, n, err := split(data, max)
		data = data[n:]
		switch {
		case err == nil:
			msgs = append(msgs, msg)
		case errors.Is(err, ErrIncomplete) && len(data) == 0:
			return msgs, "eof"
		case errors.Is(err, ErrIncomplete):
			return msgs, "unexpected-eof"
		default:
			return msgs, errClass(err)
		}
	}
	panic("Split returned a message without consuming a byte")
}

// FuzzDecoder checks that a Decoder fed through fuzz-chosen read sizes
// returns exactly the messages, and the final error class, of Split over
// the whole input; and that each valid message round-trips.
func FuzzDecoder(f *testing.F) {
	for _, s := range seeds(f) {
		for sel := range byte(16) {
			f.Add(s, sel, uint16(0), []byte{1, 0, 3})
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, sel byte, max16 uint16, cuts []byte) {
		framing := Framings[int(sel%4)%len(Framings)]
		reply := sel&4 != 0
		max := int(max16)
		want, wantClass := splitAll(framing, data, max, reply)

		chunks := make([]int, 0, min(len(cuts), 64))
		for _, c := range cuts[:min(len(cuts), 64)] {
			chunks = append(chunks, int(c%32)) // 0 is a read of no bytes
		}
		var r io.Reader = &chunkReader{data: data, chunks: chunks}
		if sel&8 != 0 {
			r = iotest.DataErrReader(r)
		}
		d := NewDecoder(r, framing, max)
		if reply {
			d = NewReplyDecoder(r, framing, max)
		}
		for i := 0; i <= len(want); i++ {
			msg, err := d.Next()
			if d.Buffered() < 0 || d.Buffered() > len(data) {
				t.Fatalf("Buffered() = %d", d.Buffered())
			}
			if err != nil {
				if got := errClass(err); got != wantClass || i != len(want) {
					t.Fatalf("Decoder: %d messages then %v (%s); Split: %d messages then %s", i, err, got, len(want), wantClass)
				}
				break
			}
			if i == len(want) || !bytes.Equal(msg, want[i]) {
				t.Fatalf("Decoder message %d = % x; Split gave %d messages", i, msg, len(want))
			}
			if reply {
				checkReplyRoundTrip(t, msg)
			} else {
				checkRequestRoundTrip(t, msg)
			}
		}
	})
}

// checkRequestRoundTrip checks that a request that decodes, rebuilt without
// unknown fields, survives encoding and splitting in every framing.
func checkRequestRoundTrip(t *testing.T, msg []byte) {
	req, err := DecodeRequest(msg)
	if err != nil {
		return
	}
	var canon *ClientMessage
	switch m := req.GetMessage().(type) {
	case *ClientMessage_EchoMessage:
		canon = EchoRequest(m.EchoMessage.GetContent())
	case *ClientMessage_AddRequest:
		canon = AddRequestOf(m.AddRequest.GetA(), m.AddRequest.GetB())
	default:
		t.Fatalf("DecodeRequest(% x) succeeded with no oneof set", msg)
	}
	if !proto.Equal(withoutUnknown(req), canon) {
		t.Fatalf("DecodeRequest(% x) = %v; rebuilt as %v", msg, req, canon)
	}
	for _, f := range Framings {
		wire, err := f.AppendMessage(nil, canon)
		if err != nil {
			t.Fatalf("%v: encoding %v: %v", f, canon, err)
		}
		body, n, err := f.Split(wire, len(wire)+MaxPrefixLen)
		if err != nil || n != len(wire) {
			t.Fatalf("%v: Split(% x) = n %d, %v", f, wire, n, err)
		}
		back, err := DecodeRequest(body)
		if err != nil || !proto.Equal(back, canon) {
			t.Fatalf("%v: round trip of %v gave %v, %v", f, canon, back, err)
		}
	}
}

// checkReplyRoundTrip is checkRequestRoundTrip for replies.
func checkReplyRoundTrip(t *testing.T, msg []byte) {
	reply, err := DecodeReply(msg)
	if err != nil {
		return
	}
	var canon *ServerMessage
	switch m := reply.GetMessage().(type) {
	case *ServerMessage_EchoMessage:
		canon = EchoReply(m.EchoMessage.GetContent())
	case *ServerMessage_AddResponse:
		canon = AddReply(m.AddResponse.GetResult())
	case *ServerMessage_Error:
		if !utf8.ValidString(m.Error.GetDetail()) {
			t.Fatalf("DecodeReply(% x): detail %q is not valid UTF-8", msg, m.Error.GetDetail())
		}
		canon = &ServerMessage{Message: &ServerMessage_Error{Error: &Error{Code: m.Error.GetCode(), Detail: m.Error.GetDetail()}}}
	default:
		return // oneof unset: a reply only a framed connection can carry
	}
	if !proto.Equal(withoutUnknown(reply), canon) {
		t.Fatalf("DecodeReply(% x) = %v; rebuilt as %v", msg, reply, canon)
	}
	for _, f := range Framings {
		wire, err := f.AppendMessage(nil, canon)
		if err != nil {
			t.Fatalf("%v: encoding %v: %v", f, canon, err)
		}
		body, n, err := f.SplitReply(wire, len(wire)+MaxPrefixLen)
		if err != nil || n != len(wire) {
			t.Fatalf("%v: SplitReply(% x) = n %d, %v", f, wire, n, err)
		}
		back, err := DecodeReply(body)
		if err != nil || !proto.Equal(back, canon) {
			t.Fatalf("%v: round trip of %v gave %v, %v", f, canon, back, err)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(data)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || (re.Code != Code_CODE_MALFORMED && re.Code != Code_CODE_EMPTY_REQUEST) || Fatal(err) || req != nil {
				t.Fatalf("DecodeRequest(% x) = %v, %v; want a RequestError MALFORMED or EMPTY_REQUEST", data, req, err)
			}
			if re.Code == Code_CODE_EMPTY_REQUEST && proto.Unmarshal(data, new(ClientMessage)) != nil {
				t.Fatalf("EMPTY_REQUEST for bytes protobuf cannot decode: % x", data)
			}
			return
		}
		if proto.Unmarshal(data, new(ClientMessage)) != nil {
			t.Fatalf("DecodeRequest accepted bytes protobuf rejects: % x", data)
		}
		if !utf8.ValidString(req.GetEchoMessage().GetContent()) {
			t.Fatalf("content %q is not valid UTF-8", req.GetEchoMessage().GetContent())
		}
		checkRequestRoundTrip(t, data)
	})
}

func FuzzDecodeReply(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		reply, err := DecodeReply(data)
		std := new(ServerMessage)
		stdErr := proto.Unmarshal(data, std)
		if err != nil {
			if stdErr == nil {
				t.Fatalf("DecodeReply rejects % x, which protobuf decodes as %v", data, std)
			}
			if _, _, field3 := lastField(data, 3); field3 {
				t.Fatalf("DecodeReply rejects % x, which holds a field 3", data)
			}
			return
		}
		// A well-formed error reply reads as protobuf reads it.
		if e := std.GetError(); stdErr == nil && e != nil && len(e.ProtoReflect().GetUnknown()) == 0 && len(std.ProtoReflect().GetUnknown()) == 0 {
			if got := reply.GetError(); got.GetCode() != e.GetCode() || got.GetDetail() != e.GetDetail() {
				t.Fatalf("DecodeReply(% x) = %v; protobuf reads %v", data, reply, std)
			}
		}
		if _, _, field3 := lastField(data, 3); field3 && reply.GetError() == nil {
			t.Fatalf("DecodeReply(% x) = %v: a field 3 that is not an error reply", data, reply)
		}
		checkReplyRoundTrip(t, data)
	})
}

// withoutUnknown returns a copy of m with the unknown fields of m and of
// its direct sub-messages dropped (the schema nests no deeper).
func withoutUnknown(m proto.Message) proto.Message {
	c := proto.Clone(m)
	r := c.ProtoReflect()
	r.SetUnknown(nil)
	r.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() != nil {
			v.Message().SetUnknown(nil)
		}
		return true
	})
	return c
}
