package suite

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"echoadd/protocol"
	"echoadd/testdata/malformed"
)

// Each case of the corpus means, under the protocol package's own reading
// (what the reference does), what the case file says.
func TestMalformedCorpus(t *testing.T) {
	embedded, err := malformed.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	for _, mc := range embedded {
		for _, id := range []string{"EA-MAL-1", "EA-MAL-2"} {
			if !slices.Contains(mc.Requirements, id) {
				t.Errorf("%s: requirements lack %s, which every case checks", mc.Name, id)
			}
		}
		for _, id := range mc.Requirements {
			if _, ok := levels[id]; !ok {
				t.Errorf("%s: unknown requirement %s", mc.Name, id)
			}
		}
		for _, f := range mc.Framings {
			got, truncated, success := serverReading(mc, f)
			if success {
				t.Errorf("%s (%s): decodes as a valid request", mc.Name, f)
			}
			want := mc.Codes
			if truncated {
				if len(mc.Optional) == 0 {
					t.Errorf("%s (%s): the input ends inside a frame, but the case names no optional code", mc.Name, f)
				}
				got = got[:len(got)-1]
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s (%s): the protocol package answers %v, the case says %v", mc.Name, f, got, want)
			}
		}
	}
}

// serverReading is what a server built on the protocol package makes of
// the case's bytes: the Error codes it sends, whether the stream ended
// inside a frame (which ends with CODE_FRAMING, optional), and whether
// anything decoded as a valid request.
func serverReading(mc malformed.Case, f protocol.Framing) (codes []protocol.Code, truncated, success bool) {
	d := protocol.NewDecoder(bytes.NewReader(mc.Wire(f)), f, protocol.DefaultMaxMessageSize)
	for {
		msg, err := d.Next()
		switch {
		case err == nil:
			if _, derr := protocol.DecodeRequest(msg); derr != nil {
				codes = append(codes, protocol.ErrorCode(derr))
			} else {
				success = true
			}
			continue
		case errors.Is(err, io.EOF):
			return codes, false, success
		case errors.Is(err, io.ErrUnexpectedEOF):
			if !mc.CloseWrite {
				return codes, false, success // a server waits for the rest
			}
			return append(codes, protocol.Code_CODE_FRAMING), true, success
		default:
			return append(codes, protocol.ErrorCode(err)), false, success
		}
	}
}
