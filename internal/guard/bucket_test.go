package guard

import (
	"testing"
	"time"
)

// TestBucket: a burst, then one request per interval; a refusal says how
// long until the next; mirror takes the fleet's fill and the requests let
// through here since.
func TestBucket(t *testing.T) {
	b := newBucket(Limit{Rate: 10, Burst: 3})
	now := time.Unix(1000, 0).UnixNano()
	for i := range 3 {
		if ok, _ := b.allow(now); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := b.allow(now)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("past the burst: %v, wait %v; want a refusal for 100ms", ok, wait)
	}
	if ok, _ := b.allow(now + int64(100*time.Millisecond)); !ok {
		t.Fatal("refused after one interval")
	}
	// The fleet's bucket is 1s ahead, and one request was let through
	// here since: the next passes 900ms later ((1s + 100ms) - 200ms of
	// tolerance), not before.
	b.mirror(now, time.Second, 1)
	if ok, wait := b.allow(now + int64(899*time.Millisecond)); ok || wait != time.Millisecond {
		t.Errorf("before the fleet's bucket has room: %v, wait %v", ok, wait)
	}
	if ok, _ := b.allow(now + int64(900*time.Millisecond)); !ok {
		t.Error("refused once the fleet's bucket has room")
	}
	// An empty fleet bucket gives the whole burst back.
	later := now + int64(10*time.Second)
	b.mirror(later, 0, 0)
	for i := range 3 {
		if ok, _ := b.allow(later); !ok {
			t.Fatalf("after an empty verdict, request %d refused", i+1)
		}
	}
	if got := retryAfterSeconds(1500 * time.Millisecond); got != 2 {
		t.Errorf("Retry-After for 1.5s: %d", got)
	}
	if got := retryAfterSeconds(time.Millisecond); got != 1 {
		t.Errorf("Retry-After for 1ms: %d", got)
	}
}

// TestBucketNoRate: a limit of rate 0 admits its burst and then nothing
// for a very long time (the guard never builds one; this keeps the
// arithmetic from overflowing if it did).
func TestBucketNoRate(t *testing.T) {
	b := newBucket(Limit{Rate: 0, Burst: 1})
	now := time.Now().UnixNano()
	if ok, _ := b.allow(now); !ok {
		t.Fatal("first request refused")
	}
	if ok, wait := b.allow(now); ok || wait <= 0 {
		t.Fatalf("second request: %v, wait %v", ok, wait)
	}
}
