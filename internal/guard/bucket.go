package guard

import (
	"math"
	"sync/atomic"
	"time"
)

// bucket is a rate limit kept as the generic cell rate algorithm keeps it:
// one number, the theoretical arrival time of the next request (tat). A
// request passes when tat is at most tolerance ((burst-1) intervals) ahead
// of now, and moves tat on by one interval (1/rate): a token bucket of
// that rate and burst, in one word. The fleet's buckets in Redis are the
// same (package fleet), which is why corral keeps its own rather than
// golang.org/x/time/rate's: a verdict from the fleet's bucket can be
// copied into the local one (see mirror), and a rate.Limiter's tokens
// cannot be set. Safe for concurrent use.
type bucket struct {
	tat       atomic.Int64 // unix nanoseconds
	interval  int64
	tolerance int64
}

func newBucket(l Limit) *bucket {
	interval := int64(math.MaxInt64 / 4)
	if l.Rate > 0 {
		interval = max(1, int64(math.Round(float64(time.Second)/l.Rate)))
	}
	return &bucket{interval: interval, tolerance: int64(l.burst()-1) * interval}
}

// allow lets one request pass at now (unix nanoseconds), or returns how
// long until one would pass.
func (b *bucket) allow(now int64) (bool, time.Duration) {
	for {
		t := b.tat.Load()
		base := max(t, now)
		if ahead := base - now; ahead > b.tolerance {
			return false, time.Duration(ahead - b.tolerance)
		}
		if b.tat.CompareAndSwap(t, base+b.interval) {
			return true, 0
		}
	}
}

// mirror sets the bucket to the fleet's: fill is how far ahead of the
// store's clock the fleet's bucket was when it answered (the requests it
// holds, in time), pending the requests let through here since the report
// it answered (they are in the next one). Counting from now rather than
// from when the store answered errs on the strict side by one round trip.
func (b *bucket) mirror(now int64, fill time.Duration, pending int64) {
	b.tat.Store(now + int64(fill) + pending*b.interval)
}

// retryAfterSeconds is Retry-After for a wait: whole seconds, at least 1.
func retryAfterSeconds(wait time.Duration) int { return secondsCeil(int64(wait)) }
