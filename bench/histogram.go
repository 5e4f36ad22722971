package bench

import (
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets, as HDR histograms do:
// 128 sub-buckets per power of two, so that every recorded value is known to
// within 1/128 (0.8 %), in a fixed 37 KiB whatever the number of samples.
// Values above about 9 minutes are counted in the last bucket. Not safe for
// concurrent use: each connection records into its own and they are merged.
type Histogram struct {
	counts [histBuckets]uint64
	total  uint64
	max    time.Duration
}

const (
	subBits     = 7
	subCount    = 1 << subBits
	histMaxExp  = 32 // values up to 2^(32+8) ns
	histBuckets = (histMaxExp + 2) * subCount
)

func bucketOf(ns uint64) int {
	if ns < 2*subCount {
		return int(ns)
	}
	e := bits.Len64(ns) - (subBits + 1)
	if e > histMaxExp {
		return histBuckets - 1
	}
	return e*subCount + int(ns>>e)
}

// bucketHigh is the largest value that falls in bucket i.
func bucketHigh(i int) uint64 {
	if i < 2*subCount {
		return uint64(i)
	}
	e := i/subCount - 1
	m := uint64(i - e*subCount)
	return (m+1)<<e - 1
}

// Record adds one sample.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.total++
	if d > h.max {
		h.max = d
	}
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest sample, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the smallest bucket bound at or below which a fraction q
// of the samples lie (never above Max); 0 when there are no samples.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q * float64(h.total))
	if float64(rank) < q*float64(h.total) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i == histBuckets-1 {
				return h.max // the overflow bucket has no upper bound
			}
			return min(time.Duration(bucketHigh(i)), h.max)
		}
	}
	return h.max
}
