package suite

import (
	"math/rand/v2"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"echoadd/protocol"
)

// pattern is n bytes of ASCII that differ from position to position, so
// that a reply with bytes lost, repeated or reordered differs from it.
func pattern(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	var b strings.Builder
	b.Grow(n)
	for i := range n {
		b.WriteByte(alphabet[(i*7+i/len(alphabet))%len(alphabet)])
	}
	return b.String()
}

// echoSize is the encoded size of the echo request for content of n bytes.
func echoSize(n int) int {
	return proto.Size(protocol.EchoRequest(strings.Repeat("x", n)))
}

// contentForSize is the longest content whose echo request encodes to at
// most size bytes, and that request's size (size itself, unless varint
// lengths make it unreachable).
func contentForSize(size int) (n, encoded int) {
	n = max(0, size-6)
	for n > 0 && echoSize(n) > size {
		n--
	}
	return n, echoSize(n)
}

// runesForRandom are what random content is made of: ASCII, NUL, two-,
// three- and four-byte UTF-8.
var runesForRandom = []rune("abcXYZ019 \x00\n\té߷世界€😀🌍")

// randomText is n random runes of runesForRandom: valid UTF-8, as proto3
// strings must be.
func randomText(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteRune(runesForRandom[rng.IntN(len(runesForRandom))])
	}
	return b.String()
}

// addBody encodes an add request by hand: each operand that is not nil is
// written, even when it is 0 (which an encoder would leave out).
func addBody(a, b *int32) []byte {
	var inner []byte
	if a != nil {
		inner = protowire.AppendTag(inner, 1, protowire.VarintType)
		inner = protowire.AppendVarint(inner, uint64(int64(*a)))
	}
	if b != nil {
		inner = protowire.AppendTag(inner, 2, protowire.VarintType)
		inner = protowire.AppendVarint(inner, uint64(int64(*b)))
	}
	out := protowire.AppendTag(nil, 2, protowire.BytesType)
	return protowire.AppendBytes(out, inner)
}

func ptr(v int32) *int32 { return &v }

// marshal encodes a request; the suite's own messages always encode.
func marshal(m *protocol.ClientMessage) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}
