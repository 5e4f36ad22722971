package suite

import "testing"

func TestFailsMust(t *testing.T) {
	must, should := []string{"EA-CONN-1", "must"}, []string{"EA-CONN-5", "should"}
	for _, tc := range []struct {
		first  string
		labels []string
		want   bool
	}{
		{"EA-CONN-1: got no reply within 2s, want ...", should, true},
		{"EA-CONN-5: got the connection closed, want ...", must, false},
		{"EA-CONN-5 (checking EA-CONN-1): got x, want y", must, false},
		{"EA-MAL-3 EA-MAL-1 (checking EA-MAL-3): got x, want y", should, true},
		{"A spec timeout occurred", must, true},
		{"A spec timeout occurred", should, false},
		{harnessErrorPrefix + ": restarting the server", should, true},
	} {
		if got := failsMust(tc.first, tc.labels); got != tc.want {
			t.Errorf("failsMust(%q, %v) = %v, want %v", tc.first, tc.labels, got, tc.want)
		}
	}
}

func TestFramingHint(t *testing.T) {
	const hint = "the bytes received look like len32 framing (each message behind a 4-byte big-endian length, e.g. 00 00 00 NN), not raw: try --framing len32"
	for _, tc := range []struct {
		name, msg, want string
	}{
		{"framing hint", "EA-FRAME-1: got bytes that are not a raw reply, want x\nhint: " + hint + " (read that way, they are error CODE_TOO_LARGE \"...\")\n\nconn 1 ...", hint},
		{"none", "EA-ECHO-2: got no reply within 2s of its request, want echo_message \"\"\n\nconn 1 ...", ""},
		{"a shell's hint", "EA-STOP-4: got exit status 143, want exit status 0\n\nhint: the command runs under sh -c: start it with exec", ""},
		{"in the transcript", "EA-ECHO-1: got x, want y\n\nhint: try --framing len32", ""},
	} {
		if got := framingHint(tc.msg); got != tc.want {
			t.Errorf("%s: framingHint = %q, want %q", tc.name, got, tc.want)
		}
	}
}
