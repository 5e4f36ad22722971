package eventloop

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"echoadd/protocol"
)

// AppendReply is the zero-allocation fast path of request handling: given
// msg, one request as Framing.Split delimits it, it appends the f-framed
// reply to dst, byte for byte what encoding the reply to
// protocol.DecodeRequest(msg) gives.
//
// It answers only requests in the shape every client sends: one field 1
// (echo_message) or 2 (add_request) holding only content, or a and b,
// each with its one-byte tag and the right wire type, strings valid UTF-8.
// For anything else (malformed input, an unset oneof, unknown or repeated
// top-level fields) it returns dst unchanged and false; the caller then
// decodes with protocol.DecodeRequest, which also says what is wrong. So a
// request it accepts is valid by the schema's rules (EA-MAL-2), and the
// differential test and fuzz target hold it to that.
func AppendReply(dst []byte, f protocol.Framing, msg []byte) ([]byte, bool) {
	if len(msg) < 2 || (msg[0] != echoTag && msg[0] != addTag) {
		return dst, false
	}
	switch f {
	case protocol.Raw, protocol.Len32, protocol.Varint:
	default:
		return dst, false
	}
	size, k := protowire.ConsumeVarint(msg[1:])
	if k < 0 || size != uint64(len(msg)-1-k) {
		return dst, false // not exactly one field
	}
	body := msg[1+k:]
	if msg[0] == echoTag {
		content, ok := echoContent(body)
		if !ok {
			return dst, false
		}
		inner := 0
		if len(content) > 0 {
			inner = 1 + protowire.SizeVarint(uint64(len(content))) + len(content)
		}
		dst = f.AppendPrefix(dst, 1+protowire.SizeVarint(uint64(inner))+inner)
		dst = append(dst, echoTag)
		dst = protowire.AppendVarint(dst, uint64(inner))
		if len(content) > 0 {
			dst = append(dst, contentTag)
			dst = protowire.AppendVarint(dst, uint64(len(content)))
			dst = append(dst, content...)
		}
		return dst, true
	}
	a, b, ok := addOperands(body)
	if !ok {
		return dst, false
	}
	sum := uint64(int64(a + b)) // wraps in 32 bits (EA-ADD-2); negative sums sign-extend as int32 fields do
	inner := 0
	if sum != 0 {
		inner = 1 + protowire.SizeVarint(sum)
	}
	dst = f.AppendPrefix(dst, 1+protowire.SizeVarint(uint64(inner))+inner)
	dst = append(dst, addTag)
	dst = protowire.AppendVarint(dst, uint64(inner))
	if sum != 0 {
		dst = append(dst, resultTag)
		dst = protowire.AppendVarint(dst, sum)
	}
	return dst, true
}

// Tags, as one byte each: ClientMessage/ServerMessage fields 1 and 2 are
// length-delimited; EchoMessage.content is field 1, length-delimited;
// AddRequest.a and .b and AddResponse.result are fields 1 and 2, varints.
const (
	echoTag    = 1<<3 | byte(protowire.BytesType)
	addTag     = 2<<3 | byte(protowire.BytesType)
	contentTag = 1<<3 | byte(protowire.BytesType)
	aTag       = 1<<3 | byte(protowire.VarintType)
	bTag       = 2<<3 | byte(protowire.VarintType)
	resultTag  = 1<<3 | byte(protowire.VarintType)
)

// echoContent decodes an EchoMessage made only of content fields; the last
// one wins, as protobuf merging has it.
func echoContent(b []byte) (content []byte, ok bool) {
	for len(b) > 0 {
		if b[0] != contentTag {
			return nil, false
		}
		size, k := protowire.ConsumeVarint(b[1:])
		if k < 0 || size > uint64(len(b)-1-k) {
			return nil, false
		}
		v := b[1+k : 1+k+int(size)]
		if !utf8.Valid(v) {
			return nil, false // proto3 strings are UTF-8 (CODE_MALFORMED)
		}
		content, b = v, b[1+k+int(size):]
	}
	return content, true
}

// addOperands decodes an AddRequest made only of a and b fields; the last
// of each wins, an omitted one is 0 (EA-ADD-3), and a varint is cut to its
// low 32 bits, as protobuf does for int32.
func addOperands(b []byte) (x, y int32, ok bool) {
	for len(b) > 0 {
		tag := b[0]
		if tag != aTag && tag != bTag {
			return 0, 0, false
		}
		v, k := protowire.ConsumeVarint(b[1:])
		if k < 0 {
			return 0, 0, false
		}
		if tag == aTag {
			x = int32(v)
		} else {
			y = int32(v)
		}
		b = b[1+k:]
	}
	return x, y, true
}
