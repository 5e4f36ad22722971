// Package bytesize reads byte counts as people write them on command lines,
// a plain number or one with a binary suffix (64KiB, 1MiB, 1GiB, 1TiB, in any
// case), and writes them back the same way. The three commands share it, so
// that every size flag takes the same spellings.
package bytesize

import (
	"fmt"
	"strconv"
	"strings"
)

var suffixes = []struct {
	suffix string
	factor int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}}

// Parse reads s as a number of bytes of at most limit.
func Parse(s string, limit int64) (int64, bool) {
	digits, factor := s, int64(1)
	for _, u := range suffixes {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			digits, factor = s[:len(s)-len(u.suffix)], u.factor
			break
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(digits), 10, 63)
	if err != nil || n > uint64(limit/factor) {
		return 0, false
	}
	return int64(n) * factor, true
}

// Format writes n with the largest suffix that divides it, as people write
// sizes: 256MiB, 1000.
func Format(n int64) string {
	for i := len(suffixes) - 1; i >= 0; i-- {
		if u := suffixes[i]; n != 0 && n%u.factor == 0 {
			return strconv.FormatInt(n/u.factor, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// Value is a flag (a pflag.Value) that stores a byte count of at most a
// limit in an int or int64. A lower bound is the caller's to check, with
// an error that says why it is there.
type Value[T ~int | ~int64] struct {
	p     *T
	limit int64
}

// Var is a Value storing into p, limited to limit bytes.
func Var[T ~int | ~int64](p *T, limit int64) *Value[T] { return &Value[T]{p: p, limit: limit} }

func (v *Value[T]) Set(s string) error {
	n, ok := Parse(s, v.limit)
	if !ok {
		return fmt.Errorf("want a number of bytes up to %s, e.g. 1048576, 64KiB or 1MiB", Format(v.limit))
	}
	*v.p = T(n)
	return nil
}

func (v *Value[T]) String() string { return Format(int64(*v.p)) }

func (v *Value[T]) Type() string { return "bytes" }
