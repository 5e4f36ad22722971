package protocol

import (
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

func TestDecodeRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string // prototext of the request, or the error class
	}{
		{"echo hello", hello, `echo_message:{content:"Hello, World!"}`},
		{"add", "12 04 08 0a 10 14", `add_request:{a:10 b:20}`},
		{"echo empty", "0a 00", `echo_message:{}`},
		{"add with operands omitted", "12 00", `add_request:{}`},
		{"unknown top-level field ignored", "28 01 | 12 04 08 0a 10 14", `add_request:{a:10 b:20}`},
		{"unknown nested field ignored", "0a 04 0a 00 28 01", `echo_message:{}`},
		{"nested field of the wrong wire type is unknown", "0a 02 08 01", `echo_message:{}`},
		{"both set: the last wins", "0a 00 | 12 00", `add_request:{}`},
		{"both set: the last wins, reversed", "12 00 | 0a 00", `echo_message:{}`},
		{"empty", "", "request:CODE_EMPTY_REQUEST"},
		{"only an unknown field", "28 01", "request:CODE_EMPTY_REQUEST"},
		{"only field 3", "1a 00", "request:CODE_EMPTY_REQUEST"},
		{"invalid UTF-8", "0a 03 0a 01 ff", "request:CODE_MALFORMED"},
		{"invalid UTF-8 after valid", "0a 05 0a 03 61 c3 28", "request:CODE_MALFORMED"},
		{"field 1 as varint", "08 01", "request:CODE_MALFORMED"},
		{"field 2 as fixed32", "15 01 02 03 04", "request:CODE_MALFORMED"},
		{"field 1 as fixed64", "09 01 02 03 04 05 06 07 08", "request:CODE_MALFORMED"},
		{"field 1 as varint beside a valid field 2", "08 01 | 12 00", "request:CODE_MALFORMED"},
		{"truncated body", "0a 05 0a", "request:CODE_MALFORMED"},
		{"truncated nested", "0a 02 0a 05", "request:CODE_MALFORMED"},
		{"field 0", "00 00", "request:CODE_MALFORMED"},
		{"wire type 7", "0f", "request:CODE_MALFORMED"},
		{"field number above 2^29-1", "80 80 80 80 10 | 00", "request:CODE_MALFORMED"},
		{"operand varint over 10 bytes", "12 0c 08 ff ff ff ff ff ff ff ff ff ff 01", "request:CODE_MALFORMED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := unhex(t, tc.in)
			got, err := DecodeRequest(in)
			if err != nil {
				if errClass(err) != tc.want {
					t.Fatalf("DecodeRequest(% x): %v (%s); want %s", in, err, errClass(err), tc.want)
				}
				if got != nil {
					t.Errorf("DecodeRequest(% x) returned %v with its error", in, got)
				}
				if Fatal(err) {
					t.Errorf("Fatal(%v) = true; a RequestError leaves the stream in sync", err)
				}
				return
			}
			want := new(ClientMessage)
			if err := prototext.Unmarshal([]byte(tc.want), want); err != nil {
				t.Fatalf("DecodeRequest(% x) = %v; want %s", in, got, tc.want)
			}
			// Unknown fields are kept by the decoder but are no part of the meaning.
			got.ProtoReflect().SetUnknown(nil)
			if m := got.GetEchoMessage(); m != nil {
				m.ProtoReflect().SetUnknown(nil)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("DecodeRequest(% x) = %v; want %s", in, prototext.Format(got), tc.want)
			}
		})
	}
}

func TestDecodeReply(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string // prototext of the reply, or "error"
	}{
		{"echo", hello, `echo_message:{content:"Hello, World!"}`},
		{"add", "12 02 08 1e", `add_response:{result:30}`},
		{"empty: oneof unset", "", ``},
		{"error", "1a 07 08 01 12 03 62 61 64", `error:{code:CODE_MALFORMED detail:"bad"}`},
		{"empty error", "1a 00", `error:{}`},
		{"error with code only", "1a 02 08 05", `error:{code:CODE_OVERLOADED}`},
		{"error with unknown code", "1a 02 08 63", `error:{code:99}`},
		{"plain string", "1a 05 68 65 6c 6c 6f", `error:{detail:"hello"}`},
		{"plain string that parses as protobuf", "1a 02 48 69", `error:{detail:"Hi"}`},
		{"plain string with invalid UTF-8", "1a 03 61 ff 62", `error:{detail:"a\uFFFDb"}`},
		{"Error with invalid UTF-8 detail", "1a 05 08 01 12 01 ff", `error:{code:CODE_MALFORMED detail:"\uFFFD"}`},
		{"field 3 as varint", "18 05", `error:{}`},
		{"field 3 as fixed32", "1d 01 02 03 04", `error:{}`},
		{"field 3 as fixed64", "19 01 02 03 04 05 06 07 08", `error:{}`},
		{"field 3 as group", "1b 08 01 1c", `error:{}`},
		{"field 3 before an echo", "1a 00 | 0a 00", `error:{}`},
		{"field 3 after an echo", "0a 00 | 18 01", `error:{}`},
		{"the last field 3 is used", "1a 01 61 | 1a 01 62", `error:{detail:"b"}`},
		{"well-formed Errors merge", "1a 02 08 01 | 1a 00", `error:{code:CODE_MALFORMED}`},
		{"field 3 before garbage", "1a 01 61 | 0f", `error:{detail:"a"}`},
		{"field 1 of the wrong wire type", "08 01", ``},
		{"garbage", "0f", "error"},
		{"truncated", "0a 05 0a", "error"},
		{"invalid UTF-8 in an echo", "0a 03 0a 01 ff", "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := unhex(t, tc.in)
			got, err := DecodeReply(in)
			if tc.want == "error" {
				if err == nil {
					t.Fatalf("DecodeReply(% x) = %v; want an error", in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeReply(% x): %v", in, err)
			}
			want := new(ServerMessage)
			if err := prototext.Unmarshal([]byte(tc.want), want); err != nil {
				t.Fatal(err)
			}
			got.ProtoReflect().SetUnknown(nil)
			if !proto.Equal(got, want) {
				t.Fatalf("DecodeReply(% x) = {%v}; want {%s}", in, prototext.Format(got), tc.want)
			}
			if e := got.GetError(); e != nil {
				if !utf8.ValidString(e.GetDetail()) {
					t.Errorf("detail %q is not valid UTF-8", e.GetDetail())
				}
				if _, err := proto.Marshal(got); err != nil {
					t.Errorf("the decoded error reply does not encode: %v", err)
				}
			}
		})
	}
}

func TestBuilders(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    proto.Message
		want string
	}{
		{"EchoRequest", EchoRequest("Hello, World!"), hello},
		{"AddRequestOf", AddRequestOf(10, 20), "12 04 08 0a 10 14"},
		{"EchoReply", EchoReply("Hello, World!"), hello},
		{"AddReply", AddReply(30), "12 02 08 1e"},
		{"AddReply(0)", AddReply(0), "12 00"},
		{"ErrorReply", ErrorReply(Code_CODE_MALFORMED, "bad"), "1a 07 08 01 12 03 62 61 64"},
	} {
		got, err := proto.Marshal(tc.m)
		if want := unhex(t, tc.want); err != nil || string(got) != string(want) {
			t.Errorf("%s: % x, %v; want % x", tc.name, got, err, want)
		}
	}
	for c := range Code_name {
		e := ErrorReply(Code(c), "").GetError()
		if e.GetCode() != Code(c) || e.GetDetail() == "" {
			t.Errorf("ErrorReply(%v, \"\") = %v; want the code and a standard detail", Code(c), e)
		}
	}
	e := ErrorReplyFor(&TooLargeError{Size: 2000, Max: 1024}).GetError()
	if e.GetCode() != Code_CODE_TOO_LARGE || e.GetDetail() != "protocol: message of 2000 bytes is larger than the maximum of 1024 bytes" {
		t.Errorf("ErrorReplyFor(TooLargeError) = %v", e)
	}
}
