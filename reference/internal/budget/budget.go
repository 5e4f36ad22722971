// Package budget bounds, between all of a server's connections, the memory
// they hold beyond their small per-connection buffers: requests still
// arriving and replies the client has not taken. Without such a bound the
// worst case is the connection limit times the largest request.
package budget

import (
	"math"
	"sync/atomic"
)

// Budget counts bytes held against a limit; it is safe for concurrent use.
// A nil *Budget is no limit: every method works on it and Grow always
// succeeds.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// New returns a Budget of limit bytes, or nil (no limit) for limit <= 0.
func New(limit int64) *Budget {
	if limit <= 0 {
		return nil
	}
	return &Budget{limit: limit}
}

// Grow takes n more bytes if they fit within the limit and reports whether
// they did. It is the check before buffering more of a request, which can
// be refused.
func (b *Budget) Grow(n int) bool {
	if b == nil || n <= 0 {
		return true
	}
	for {
		used := b.used.Load()
		if used+int64(n) > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+int64(n)) {
			return true
		}
	}
}

// Add takes n bytes without a check (a reply already made must be held
// until it is written), or gives -n back.
func (b *Budget) Add(n int) {
	if b != nil && n != 0 {
		b.used.Add(int64(n))
	}
}

// Left returns the bytes that Grow may still take now (0 or more).
func (b *Budget) Left() int {
	if b == nil {
		return math.MaxInt
	}
	return int(max(0, b.limit-b.used.Load()))
}

// Used returns the bytes held now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Limit returns the limit in bytes, 0 for none.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}
