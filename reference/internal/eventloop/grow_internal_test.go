//go:build linux

package eventloop

import (
	"testing"

	"echoadd/reference/internal/budget"
)

// TestGrowInNearTheLimit: a large request that arrives 64 KiB at a time
// while the budget is nearly used up grows c.in in few steps (each one a
// copy of all of it), not one per read, and its charge is what it holds.
func TestGrowInNearTheLimit(t *testing.T) {
	const limit = 16 << 20
	b := budget.New(limit)
	b.Add(limit - 7<<20) // other connections hold most of it
	l := &loop{e: &Engine{cfg: Config{Budget: b}}}
	c := &Conn{}
	l.growIn(c, 64<<10, 64<<10, true) // a partial request left by a read
	steps := 0
	for len(c.in) < 7<<20 && steps <= 20 {
		if len(c.in) == cap(c.in) {
			if !l.growIn(c, 2*len(c.in), len(c.in)+1, true) { // as fill asks
				t.Fatalf("refused at %d bytes, with %d of %d used", len(c.in), b.Used(), limit)
			}
			steps++
		}
		c.in = c.in[:min(cap(c.in), len(c.in)+64<<10)] // a read
	}
	if steps > 20 {
		t.Errorf("%d reallocations for 7 MiB; want few", steps)
	}
	if c.charged != cap(c.in) || b.Used() != limit-7<<20+int64(cap(c.in)) {
		t.Errorf("charged %d, budget used %d, for a buffer of %d", c.charged, b.Used(), cap(c.in))
	}
	// Beyond what is left, it is refused, and nothing changes.
	held := cap(c.in)
	c.in = c.in[:cap(c.in)]
	if l.growIn(c, 2*cap(c.in), cap(c.in)+1, true) || cap(c.in) != held || c.charged != held {
		t.Errorf("grew beyond the budget: cap %d, charged %d", cap(c.in), c.charged)
	}
}
