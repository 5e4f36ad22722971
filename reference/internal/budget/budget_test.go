package budget

import (
	"sync"
	"testing"
)

func TestGrowStopsAtTheLimit(t *testing.T) {
	b := New(100)
	if !b.Grow(60) || !b.Grow(40) {
		t.Fatal("Grow refused bytes within the limit")
	}
	if b.Grow(1) {
		t.Fatal("Grow took a byte beyond the limit")
	}
	b.Add(-40)
	if !b.Grow(40) {
		t.Fatal("Grow refused bytes given back")
	}
	if got := b.Left(); got != 0 {
		t.Fatalf("Left = %d with all taken, want 0", got)
	}
	b.Add(-40)
	if got := b.Left(); got != 40 {
		t.Fatalf("Left = %d, want 40", got)
	}
	b.Grow(40)
	b.Add(10) // unchecked: may go beyond
	if got := b.Used(); got != 110 {
		t.Fatalf("Used = %d, want 110", got)
	}
	if got := b.Left(); got != 0 {
		t.Fatalf("Left = %d beyond the limit, want 0", got)
	}
}

func TestNilIsNoLimit(t *testing.T) {
	var b *Budget = New(0)
	if b != nil {
		t.Fatal("New(0) is a limit")
	}
	if !b.Grow(1 << 40) {
		t.Fatal("a nil Budget refused")
	}
	b.Add(5)
	if b.Used() != 0 || b.Limit() != 0 {
		t.Fatal("a nil Budget counts")
	}
}

// Concurrent Grows never take more than the limit between them.
func TestGrowConcurrent(t *testing.T) {
	b := New(1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := 0
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if b.Grow(7) {
					mu.Lock()
					taken += 7
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if taken > 1000 || b.Used() != int64(taken) {
		t.Fatalf("taken %d, Used %d, limit 1000", taken, b.Used())
	}
	if taken < 1000-6 {
		t.Fatalf("taken %d: Grow refused bytes that fit", taken)
	}
}
