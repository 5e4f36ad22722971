package reference

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRefusalLogCountingDoesNotAllocate: a refusal that writes no line,
// the common case in a flood, costs no allocation.
func TestRefusalLogCountingDoesNotAllocate(t *testing.T) {
	var out bytes.Buffer
	r := newConnRefusalLog(slog.New(slog.NewTextHandler(&out, nil)), 3, func() time.Duration { return 0 })
	remote := "127.0.0.1:1"
	r.add(func() []slog.Attr { return []slog.Attr{slog.String("remote", remote)} }) // the warn line
	n := testing.AllocsPerRun(100, func() {
		r.add(func() []slog.Attr { return []slog.Attr{slog.String("remote", remote)} })
	})
	if n != 0 {
		t.Errorf("%v allocations per counted refusal, want 0", n)
	}
	if got := strings.Count(out.String(), "\n"); got != 1 {
		t.Errorf("%d lines, want 1:\n%s", got, out.String())
	}
}
