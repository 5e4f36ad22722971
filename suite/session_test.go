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
