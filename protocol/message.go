package protocol

import (
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// DecodeRequest decodes one delimited request. It fails with a
// *RequestError for undecodable bytes, invalid UTF-8, a request field of the
// wrong wire type (CODE_MALFORMED) and for a request with no oneof set
// (CODE_EMPTY_REQUEST), as PROTOCOL.md "Malformed input" requires.
func DecodeRequest(b []byte) (*ClientMessage, error) {
	req := new(ClientMessage)
	if err := proto.Unmarshal(b, req); err != nil {
		return nil, &RequestError{Code: Code_CODE_MALFORMED, Err: err}
	}
	// protobuf-go keeps a known field with the wrong wire type as an unknown
	// field instead of failing; the spec calls it malformed.
	if hasField(req.ProtoReflect().GetUnknown(), 1, 2) {
		return nil, &RequestError{Code: Code_CODE_MALFORMED, Err: errWrongWireType}
	}
	if req.GetMessage() == nil {
		return nil, &RequestError{Code: Code_CODE_EMPTY_REQUEST}
	}
	return req, nil
}

var errWrongWireType = wireTypeError{}

type wireTypeError struct{}

func (wireTypeError) Error() string { return "a request field has the wrong wire type" }

// hasField reports whether the encoded fields in b include any of nums.
func hasField(b []byte, nums ...protowire.Number) bool {
	for len(b) > 0 {
		num, _, n := protowire.ConsumeField(b)
		if n < 0 {
			return false
		}
		for _, want := range nums {
			if num == want {
				return true
			}
		}
		b = b[n:]
	}
	return false
}

// DecodeReply decodes a server's reply as a client must (EA-ERR-2): a reply
// carrying a top-level field 3, of any wire type and wherever it stands, is
// an error reply, so that a server that sends a plain string there is still
// understood. A well-formed reply is read by protobuf's rules; otherwise the
// last field 3 is used: if it holds a well-formed Error (fields 1 and 2
// only), its code and detail; otherwise CODE_UNSPECIFIED and, when it is a
// length-delimited field, its bytes as the detail. The detail returned is
// always valid UTF-8 (invalid bytes become U+FFFD).
func DecodeReply(b []byte) (*ServerMessage, error) {
	reply := new(ServerMessage)
	err := proto.Unmarshal(b, reply)
	payload, typ, field3 := lastField(b, 3)
	switch {
	case !field3 && err != nil:
		return nil, err
	case !field3:
		return reply, nil
	case err == nil && reply.GetError() != nil && !hasField(reply.ProtoReflect().GetUnknown(), 3) &&
		len(reply.GetError().ProtoReflect().GetUnknown()) == 0:
		// A well-formed Error, field 3 last: protobuf's own reading, which
		// merges repeated occurrences.
		return reply, nil
	default:
		return &ServerMessage{Message: &ServerMessage_Error{Error: parseErrorField(payload, typ)}}, nil
	}
}

// lastField returns the payload and wire type of the last top-level field
// num in b, stopping at the first bytes that are not a field (varints and
// fixed values come back encoded; a length-delimited payload without its
// length).
func lastField(b []byte, num protowire.Number) (payload []byte, typ protowire.Type, ok bool) {
	for len(b) > 0 {
		n, t, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 {
			break
		}
		valLen := protowire.ConsumeFieldValue(n, t, b[tagLen:])
		if valLen < 0 {
			break
		}
		if n == num {
			payload, typ, ok = b[tagLen:tagLen+valLen], t, true
			if t == protowire.BytesType {
				_, k := protowire.ConsumeVarint(payload)
				payload = payload[k:]
			}
		}
		b = b[tagLen+valLen:]
	}
	return payload, typ, ok
}

// parseErrorField reads field 3 of a reply as an Error if it is one, and as
// a plain text detail otherwise.
func parseErrorField(payload []byte, typ protowire.Type) *Error {
	if typ != protowire.BytesType {
		return &Error{}
	}
	if e, ok := parseError(payload); ok {
		return e
	}
	return &Error{Detail: strings.ToValidUTF8(string(payload), "\uFFFD")}
}

// parseError parses b as an Error holding only a varint field 1 and a
// length-delimited field 2, as a strict Error does.
func parseError(b []byte) (*Error, bool) {
	e := new(Error)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			e.Code = Code(int32(v))
			b = b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			e.Detail = strings.ToValidUTF8(string(v), "\uFFFD")
			b = b[n:]
		default:
			return nil, false
		}
	}
	return e, true
}

// EchoRequest builds the request for an echo of content.
func EchoRequest(content string) *ClientMessage {
	return &ClientMessage{Message: &ClientMessage_EchoMessage{EchoMessage: &EchoMessage{Content: content}}}
}

// AddRequestOf builds the request for a + b.
func AddRequestOf(a, b int32) *ClientMessage {
	return &ClientMessage{Message: &ClientMessage_AddRequest{AddRequest: &AddRequest{A: a, B: b}}}
}

// EchoReply builds the reply to an echo of content.
func EchoReply(content string) *ServerMessage {
	return &ServerMessage{Message: &ServerMessage_EchoMessage{EchoMessage: &EchoMessage{Content: content}}}
}

// AddReply builds the reply carrying result.
func AddReply(result int32) *ServerMessage {
	return &ServerMessage{Message: &ServerMessage_AddResponse{AddResponse: &AddResponse{Result: result}}}
}

// ErrorReply builds an Error reply (EA-ERR-1). An empty detail is filled in
// with the code's standard wording.
func ErrorReply(code Code, detail string) *ServerMessage {
	if detail == "" {
		detail = describeCode(code)
	}
	return &ServerMessage{Message: &ServerMessage_Error{Error: &Error{Code: code, Detail: detail}}}
}

// ErrorReplyFor builds the Error reply for an error from Split, Decoder.Next
// or DecodeRequest.
func ErrorReplyFor(err error) *ServerMessage {
	return ErrorReply(ErrorCode(err), err.Error())
}
