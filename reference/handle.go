package reference

import "echoadd/protocol"

// Handle returns the reply to one decoded request; it is the whole of the
// protocol's request semantics and does no I/O.
//
// An echo request gets its content back byte for byte (EA-ECHO-1); an add
// request gets a + b, wrapping in 32-bit two's complement as Go's int32
// addition does (EA-ADD-1, EA-ADD-2), with an omitted operand read as 0
// (EA-ADD-3). A request with no oneof set, which protocol.DecodeRequest never
// returns, gets an Error reply with CODE_EMPTY_REQUEST.
func Handle(req *protocol.ClientMessage) *protocol.ServerMessage {
	switch m := req.GetMessage().(type) {
	case *protocol.ClientMessage_EchoMessage:
		return protocol.EchoReply(m.EchoMessage.GetContent())
	case *protocol.ClientMessage_AddRequest:
		return protocol.AddReply(m.AddRequest.GetA() + m.AddRequest.GetB())
	default:
		return protocol.ErrorReply(protocol.Code_CODE_EMPTY_REQUEST, "")
	}
}
