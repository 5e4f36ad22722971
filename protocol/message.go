package protocol

import (
	"unicode/utf8"

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
// carrying field 3 is an error reply whatever its shape, so a server that
// sends a plain string there is still understood. Such a reply comes back
// as an Error with CODE_UNSPECIFIED and the string, when it is text, as its
// detail.
func DecodeReply(b []byte) (*ServerMessage, error) {
	reply := new(ServerMessage)
	err := proto.Unmarshal(b, reply)
	if err == nil && !hasField(reply.ProtoReflect().GetUnknown(), 3) {
		return reply, nil
	}
	raw, ok := lastBytesField(b, 3)
	if !ok {
		return nil, err
	}
	var detail string
	if e := reply.GetError(); e != nil && e.GetDetail() != "" {
		detail = e.GetDetail()
	} else if utf8.Valid(raw) {
		detail = string(raw)
	}
	code := reply.GetError().GetCode()
	return &ServerMessage{Message: &ServerMessage_Error{Error: &Error{Code: code, Detail: detail}}}, nil
}

// lastBytesField returns the payload of the last top-level field num of any
// wire type in b (varints and fixed values come back encoded).
func lastBytesField(b []byte, num protowire.Number) ([]byte, bool) {
	var found []byte
	ok := false
	for len(b) > 0 {
		n, typ, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 {
			return found, ok
		}
		valLen := protowire.ConsumeFieldValue(n, typ, b[tagLen:])
		if valLen < 0 {
			return found, ok
		}
		if n == num {
			found, ok = b[tagLen:tagLen+valLen], true
			if typ == protowire.BytesType {
				_, k := protowire.ConsumeVarint(found)
				found = found[k:]
			}
		}
		b = b[tagLen+valLen:]
	}
	return found, ok
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
