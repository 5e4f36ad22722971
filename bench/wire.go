package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"

	"echoadd/protocol"
)

// ReplyReader reads replies from a connection with one reused buffer.
type ReplyReader struct {
	r       io.Reader
	framing protocol.Framing
	max     int
	buf     []byte
	start   int
	end     int
}

// NewReplyReader returns a reader of f-framed replies of at most max bytes.
func NewReplyReader(r io.Reader, f protocol.Framing, max int) *ReplyReader {
	if max <= 0 {
		max = protocol.DefaultMaxMessageSize
	}
	return &ReplyReader{r: r, framing: f, max: max, buf: make([]byte, 4<<10)}
}

// Next returns the next reply's encoding, valid until the next call. It
// returns io.EOF at a clean boundary and io.ErrUnexpectedEOF inside a reply.
func (rr *ReplyReader) Next() ([]byte, error) {
	for {
		msg, n, err := rr.framing.SplitReply(rr.buf[rr.start:rr.end], rr.max)
		rr.start += n
		if err == nil {
			return msg, nil
		}
		if !errors.Is(err, protocol.ErrIncomplete) {
			return nil, err
		}
		if rr.start == rr.end {
			rr.start, rr.end = 0, 0
		} else if rr.end == len(rr.buf) {
			if rr.start > 0 {
				rr.end = copy(rr.buf, rr.buf[rr.start:rr.end])
				rr.start = 0
			} else {
				grown := make([]byte, min(2*len(rr.buf), rr.max+protocol.MaxPrefixLen+16))
				rr.end = copy(grown, rr.buf[rr.start:rr.end])
				rr.start = 0
				rr.buf = grown
			}
		}
		k, err := rr.r.Read(rr.buf[rr.end:])
		rr.end += k
		if err != nil {
			if errors.Is(err, io.EOF) && rr.start < rr.end {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// Buffered is what has been read past the last reply Next returned.
func (rr *ReplyReader) Buffered() []byte { return rr.buf[rr.start:rr.end] }

// appendEcho appends the framed request ClientMessage{echo_message{content}}.
func appendEcho(dst []byte, f protocol.Framing, content []byte) []byte {
	inner := 0
	if len(content) > 0 {
		inner = 1 + protowire.SizeBytes(len(content))
	}
	dst = f.AppendPrefix(dst, 1+protowire.SizeBytes(inner))
	dst = append(dst, 0x0a)
	dst = protowire.AppendVarint(dst, uint64(inner))
	if len(content) > 0 {
		dst = append(dst, 0x0a)
		dst = protowire.AppendVarint(dst, uint64(len(content)))
		dst = append(dst, content...)
	}
	return dst
}

// appendAdd appends the framed request ClientMessage{add_request{a, b}}.
func appendAdd(dst []byte, f protocol.Framing, a, b int32) []byte {
	inner := 0
	if a != 0 {
		inner += 1 + protowire.SizeVarint(uint64(int64(a)))
	}
	if b != 0 {
		inner += 1 + protowire.SizeVarint(uint64(int64(b)))
	}
	dst = f.AppendPrefix(dst, 1+protowire.SizeBytes(inner))
	dst = append(dst, 0x12)
	dst = protowire.AppendVarint(dst, uint64(inner))
	if a != 0 {
		dst = append(dst, 0x08)
		dst = protowire.AppendVarint(dst, uint64(int64(a)))
	}
	if b != 0 {
		dst = append(dst, 0x10)
		dst = protowire.AppendVarint(dst, uint64(int64(b)))
	}
	return dst
}

// expectation is what one request's reply must be.
type expectation struct {
	add     bool
	sum     int32
	content []byte // echo: aliases the request's content in the batch sent
	end     int    // echo: where that content ends in the batch, while it is built
}

// checkReply validates one reply's encoding against what was asked. The
// fast path parses by hand; a mismatch is described with protocol.DecodeReply
// so that the example reads well. nil means the reply is right.
func checkReply(body []byte, want expectation) error {
	if ok := matchReply(body, want); ok {
		return nil
	}
	var wantText string
	if want.add {
		wantText = fmt.Sprintf("add_response{result: %d}", want.sum)
	} else {
		wantText = fmt.Sprintf("echo_message{content: %s}", quoteShort(want.content))
	}
	m, err := protocol.DecodeReply(body)
	if err != nil {
		return fmt.Errorf("undecodable reply %s (%v); want %s", hexShort(body), err, wantText)
	}
	var got string
	switch {
	case m.GetError() != nil:
		got = fmt.Sprintf("error{code: %v, detail: %s}", m.GetError().GetCode(), strconv.QuoteToGraphic(m.GetError().GetDetail()))
	case m.GetAddResponse() != nil:
		got = fmt.Sprintf("add_response{result: %d}", m.GetAddResponse().GetResult())
	case m.GetEchoMessage() != nil && !want.add:
		g, w := quoteDifference([]byte(m.GetEchoMessage().GetContent()), want.content)
		got, wantText = "echo_message{content: "+g+"}", "echo_message{content: "+w+"}"
	case m.GetEchoMessage() != nil:
		got = fmt.Sprintf("echo_message{content: %s}", quoteShort([]byte(m.GetEchoMessage().GetContent())))
	default:
		got = "a reply with no oneof set"
	}
	return fmt.Errorf("got %s, want %s (reply bytes %s)", got, wantText, hexShort(body))
}

// matchReply parses a ServerMessage as proto.Unmarshal would (last oneof
// field wins, a repeated field of the same case merges) and compares.
func matchReply(b []byte, want expectation) bool {
	var (
		which   protowire.Number
		content []byte
		sum     int32
	)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num < 1 || num > 3 {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return false
			}
			b = b[n:]
			continue
		}
		if typ != protowire.BytesType {
			return false
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num != which {
			which, content, sum = num, nil, 0
		}
		for len(v) > 0 {
			inum, ityp, k := protowire.ConsumeTag(v)
			if k < 0 {
				return false
			}
			v = v[k:]
			switch {
			case num == 1 && inum == 1 && ityp == protowire.BytesType:
				c, k := protowire.ConsumeBytes(v)
				if k < 0 {
					return false
				}
				content, v = c, v[k:]
			case num == 2 && inum == 1 && ityp == protowire.VarintType:
				x, k := protowire.ConsumeVarint(v)
				if k < 0 {
					return false
				}
				sum, v = int32(x), v[k:]
			default:
				k = protowire.ConsumeFieldValue(inum, ityp, v)
				if k < 0 {
					return false
				}
				v = v[k:]
			}
		}
	}
	if want.add {
		return which == 2 && sum == want.sum
	}
	return which == 1 && bytes.Equal(content, want.content)
}

func quoteShort(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q... (%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// quoteDifference quotes two contents that differ so that the difference
// shows: whole when both are short, else from a little before the first
// byte that differs.
func quoteDifference(got, want []byte) (string, string) {
	if len(got) <= 40 && len(want) <= 40 {
		return quoteShort(got), quoteShort(want)
	}
	at := 0
	for at < len(got) && at < len(want) && got[at] == want[at] {
		at++
	}
	from := max(0, at-8)
	window := func(b []byte) string {
		part := b[min(from, len(b)):min(from+32, len(b))]
		more := ""
		if from+32 < len(b) {
			more = "..."
		}
		return fmt.Sprintf("(%d bytes) from byte %d: %q%s", len(b), from, part, more)
	}
	return window(got), window(want) + fmt.Sprintf(", first difference at byte %d", at)
}

func hexShort(b []byte) string {
	if len(b) > 32 {
		return fmt.Sprintf("%x... (%d bytes)", b[:32], len(b))
	}
	return fmt.Sprintf("%x", b)
}
