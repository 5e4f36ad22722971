package harness

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"echoadd/protocol"
)

// Reply is one reply as the client received it.
type Reply struct {
	Index int                     // 1 for the first reply on the connection
	Msg   *protocol.ServerMessage // as protocol.DecodeReply reads it: field 3 of any shape is an error reply
	// Strict is nil when the reply is a ServerMessage exactly as the schema
	// defines it, and says what is wrong otherwise (EA-MSG-1, EA-ERR-2): a
	// field of the wrong wire type, a field 3 that is not an Error, or more
	// than one oneof member on the wire (SeveralMembers).
	Strict error
	Frame  []byte    // the reply's bytes as received, prefix included
	Prefix int       // how many of them are the framing's length prefix
	First  time.Time // when its first byte arrived
	Last   time.Time // when its last byte arrived
	Sent   time.Time // when the request it answers was sent whole; zero if not known

	repeats int      // the index of an earlier reply with the same bytes, or 0
	request *request // the request it answers, if the client knows

	latencyJudged bool // held to EA-CONN-6 already (Client.late)
	unasked       bool // it arrived whole when the replies outnumbered the frames sent
}

// SeveralMembers reports whether the reply sets more than one oneof member
// on the wire (EA-MSG-1), rather than a field of the wrong shape.
func (r *Reply) SeveralMembers() bool {
	var e *severalMembersError
	return errors.As(r.Strict, &e)
}

// Body is the reply's message encoding, without the prefix.
func (r *Reply) Body() []byte { return r.Frame[r.Prefix:] }

// Kind names the reply's oneof: "echo_message", "add_response", "error", or
// "no field set".
func (r *Reply) Kind() string {
	switch {
	case r.Msg.GetEchoMessage() != nil:
		return "echo_message"
	case r.Msg.GetAddResponse() != nil:
		return "add_response"
	case r.Msg.GetError() != nil:
		return "error"
	default:
		return "no field set"
	}
}

// extra reports whether r is a success reply, or one with no field set,
// that answers nothing: by the time it arrived, more replies had come than
// frames were sent (EA-CONN-1). Error replies may rightly come unasked (a
// read timeout, an overload).
func (r *Reply) extra() bool {
	return r.unasked && (r.IsSuccess() || r.Msg.GetMessage() == nil)
}

// IsSuccess reports whether the reply is an echo or add reply.
func (r *Reply) IsSuccess() bool {
	return r.Msg.GetEchoMessage() != nil || r.Msg.GetAddResponse() != nil
}

// Latency is how long after its request was sent whole the reply arrived
// whole; 0 if the request's time is not known.
func (r *Reply) Latency() time.Duration {
	if r.Sent.IsZero() {
		return 0
	}
	return r.Last.Sub(r.Sent)
}

func (r *Reply) String() string { return fmt.Sprintf("reply #%d: %s", r.Index, describeReply(r.Msg)) }

// replySlack is how much larger than the declared maximum request a reply
// may be: an error reply's detail, or an echo reply's extra length bytes.
const replySlack = 64 << 10

// errNotFrame reports bytes that cannot be split into replies in the
// connection's framing.
type errNotFrame struct{ reason string }

func (e *errNotFrame) Error() string { return e.reason }

// splitReply finds the first whole reply at the start of buf in framing f:
// the frame's length n, prefix included, and the prefix's length. In raw
// framing each whole top-level field 1, 2 or 3 is one reply, delimited the
// way a server delimits requests (EA-FRAME-1); other fields are skipped and
// counted in skipped, which the caller drops first. err is
// protocol.ErrIncomplete when buf holds no whole reply yet, or an
// *errNotFrame.
func splitReply(f protocol.Framing, buf []byte, max int) (n, prefix, skipped int, err error) {
	if f != protocol.Raw {
		msg, n, err := f.Split(buf, max)
		switch {
		case err == nil:
			return n, n - len(msg), 0, nil
		case errors.Is(err, protocol.ErrIncomplete):
			return 0, 0, 0, err
		default:
			return 0, 0, 0, &errNotFrame{reason: err.Error()}
		}
	}
	for skipped < len(buf) {
		rest := buf[skipped:]
		num, typ, tagLen := protowire.ConsumeTag(rest)
		if tagLen < 0 {
			if perr := protowire.ParseError(tagLen); errors.Is(perr, io.ErrUnexpectedEOF) {
				return 0, 0, skipped, protocol.ErrIncomplete
			} else {
				return 0, 0, skipped, &errNotFrame{reason: fmt.Sprintf("byte %#02x is not a valid field tag (%v)", rest[0], perr)}
			}
		}
		if num > protowire.MaxValidNumber { // ConsumeTag takes up to 2^31-1, MessageSet's bound
			return 0, 0, skipped, &errNotFrame{reason: fmt.Sprintf("bytes % x are no valid field tag (field number %d is above %d)", rest[:tagLen], num, protowire.MaxValidNumber)}
		}
		var valLen int
		switch typ {
		case protowire.VarintType, protowire.Fixed32Type, protowire.Fixed64Type:
			valLen = protowire.ConsumeFieldValue(num, typ, rest[tagLen:])
		case protowire.BytesType:
			length, k := protowire.ConsumeVarint(rest[tagLen:])
			if k >= 0 && length > uint64(max) {
				return 0, 0, skipped, &errNotFrame{reason: fmt.Sprintf("field %d declares %d bytes, more than any reply", num, length)}
			}
			valLen = protowire.ConsumeFieldValue(num, typ, rest[tagLen:])
		default:
			return 0, 0, skipped, &errNotFrame{reason: fmt.Sprintf("field %d has wire type %d, which no reply uses", num, typ)}
		}
		if valLen < 0 {
			if errors.Is(protowire.ParseError(valLen), io.ErrUnexpectedEOF) {
				return 0, 0, skipped, protocol.ErrIncomplete
			}
			return 0, 0, skipped, &errNotFrame{reason: fmt.Sprintf("field %d: %v", num, protowire.ParseError(valLen))}
		}
		if num >= 1 && num <= 3 {
			return tagLen + valLen, 0, skipped, nil
		}
		skipped += tagLen + valLen
	}
	return 0, 0, skipped, protocol.ErrIncomplete
}

// decodeReply decodes a reply body leniently (protocol.DecodeReply) and
// says separately whether it is a ServerMessage exactly as the schema
// defines it.
func decodeReply(body []byte) (msg *protocol.ServerMessage, strict error, err error) {
	msg, err = protocol.DecodeReply(body)
	if err != nil {
		return nil, nil, err
	}
	var m protocol.ServerMessage
	if uerr := proto.Unmarshal(body, &m); uerr != nil {
		return msg, fmt.Errorf("not a ServerMessage: %v", uerr), nil
	}
	for b := m.ProtoReflect().GetUnknown(); len(b) > 0; {
		num, typ, n := protowire.ConsumeField(b)
		if n < 0 {
			break
		}
		if num >= 1 && num <= 3 {
			return msg, fmt.Errorf("field %d has wire type %d, not the schema's (field 3 must be an Error message)", num, typ), nil
		}
		b = b[n:]
	}
	if members := oneofMembers(body); len(members) > 1 {
		return msg, &severalMembersError{members: members}, nil
	}
	return msg, nil, nil
}

// memberNames are ServerMessage's oneof members by field number.
var memberNames = map[protowire.Number]string{1: "echo_message", 2: "add_response", 3: "error"}

// oneofMembers lists the oneof members body, a well-formed ServerMessage,
// sets on the wire, in order of first appearance. One member written twice
// is one (protobuf merges the two).
func oneofMembers(body []byte) []string {
	var members []string
	for len(body) > 0 {
		num, _, n := protowire.ConsumeField(body)
		if n < 0 {
			break
		}
		if name, ok := memberNames[num]; ok && !slices.Contains(members, name) {
			members = append(members, name)
		}
		body = body[n:]
	}
	return members
}

// severalMembersError is a reply that sets more than one oneof member on
// the wire. A protobuf parser keeps the last, so it decodes; but a reply
// sets exactly one (PROTOCOL.md section 3), and a client that reads the
// first field sees another reply.
type severalMembersError struct{ members []string }

func (e *severalMembersError) Error() string {
	return fmt.Sprintf("it sets %d members of the oneof on the wire, %s: a protobuf parser keeps the last, a client that reads the first field sees %s; a reply sets exactly one",
		len(e.members), strings.Join(e.members, " then "), e.members[0])
}

// framingLooks says what each framing looks like on the wire, for hints.
var framingLooks = map[protocol.Framing]string{
	protocol.Raw:    "protobuf messages with no length prefix",
	protocol.Len32:  "each message behind a 4-byte big-endian length, e.g. 00 00 00 NN",
	protocol.Varint: "each message behind a varint length",
}

// NoReplyAdvice starts NoReplyHint; the report finds the hint by it.
const NoReplyAdvice = "no request of this run has had a reply: "

// NoReplyHint is the advice for a target that has answered no request at
// all. A connection in the listen backlog looks accepted to the client, and
// the most common cause is a framing the server reads otherwise (a
// little-endian length, a varint for a fixed prefix): it waits for the
// rest of a frame that never comes. It holds no "; ".
func NoReplyHint(f protocol.Framing) string {
	return fmt.Sprintf("%scheck that the server accepts connections, and reads %s framing as PROTOCOL.md defines it (%s)", NoReplyAdvice, f, framingLooks[f])
}

// TryFraming is the advice in every framing hint, followed by the framing
// to try: "...: try --framing len32 (read that way, ...)". The suite finds
// framing hints in failure messages by it.
const TryFraming = "try --framing "

// FramingHintIn returns the framing hint a failure message of this package
// carries (a "hint: " line after its first and before the transcript, which
// follows a blank line), cut after the framing it advises: "the bytes
// received look like len32 framing (...), not raw: try --framing len32";
// "" if it carries none. The suite reads it to skip what a framing mismatch
// would fail anyway, and the report to end with it.
func FramingHintIn(failure string) string {
	head, _, _ := strings.Cut(failure, "\n\n")
	for _, line := range strings.Split(head, "\n") {
		hint, ok := strings.CutPrefix(line, "hint: ")
		if !ok {
			continue
		}
		if before, after, ok := strings.Cut(hint, TryFraming); ok {
			g, _, _ := strings.Cut(after, " ")
			return before + TryFraming + g
		}
	}
	return ""
}

// framingHint says which other framing buf looks like, or "" if none: a
// framing in which buf starts with a whole reply that decodes strictly and
// sets its oneof.
func framingHint(buf []byte, current protocol.Framing) string {
	for _, g := range protocol.Framings {
		if g == current {
			continue
		}
		if msg := looksLike(buf, g); msg != nil {
			return fmt.Sprintf("the bytes received look like %s framing (%s), not %s: %s%s (read that way, they are %s)", g, framingLooks[g], current, TryFraming, g, describeReply(msg))
		}
	}
	return ""
}

// looksLike returns the reply buf starts with in framing g, or nil.
func looksLike(buf []byte, g protocol.Framing) *protocol.ServerMessage {
	if g == protocol.Raw && (len(buf) == 0 || (buf[0] != 0x0a && buf[0] != 0x12 && buf[0] != 0x1a)) {
		return nil // every reply field is length-delimited
	}
	n, prefix, skipped, err := splitReply(g, buf, protocol.DefaultMaxMessageSize+replySlack)
	if err != nil || skipped > 0 || n == prefix {
		return nil
	}
	msg, strict, err := decodeReply(buf[prefix:n])
	if err != nil || strict != nil || msg.GetMessage() == nil {
		return nil
	}
	return msg
}

// otherFraming returns the framing other than current that buf, the bytes
// received from a reply's start, is written in, if it is strong evidence of
// one: read in it, buf is one or more whole replies, each decoding strictly
// and setting its oneof, and at most the start of one more.
func otherFraming(buf []byte, current protocol.Framing) (protocol.Framing, bool) {
	for _, g := range protocol.Framings {
		if g != current && wholeReplies(buf, g) {
			return g, true
		}
	}
	return current, false
}

// wholeReplies reports whether buf, read in framing g, is whole replies
// that each look like a reply (looksLike), then at most an incomplete one.
func wholeReplies(buf []byte, g protocol.Framing) bool {
	replies := 0
	for len(buf) > 0 {
		n, _, _, err := splitReply(g, buf, protocol.DefaultMaxMessageSize+replySlack)
		if errors.Is(err, protocol.ErrIncomplete) {
			break
		}
		if err != nil || looksLike(buf, g) == nil {
			return false
		}
		buf = buf[n:]
		replies++
	}
	return replies > 0
}

// invalidReply says why a decoded reply is no valid one.
func invalidReply(msg *protocol.ServerMessage, strict, err error) string {
	switch {
	case err != nil:
		return fmt.Sprintf("the first is not a ServerMessage (%v)", err)
	case strict != nil:
		return fmt.Sprintf("the first is %s, not as the schema defines it (%v)", describeReply(msg), strict)
	}
	return "the first is " + describeReply(msg)
}
