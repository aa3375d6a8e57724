package pool

import (
	"strconv"
	"testing"
	"time"
)

func TestEstimateUnseenKeyUsesGlobal(t *testing.T) {
	e := newEstimates(time.Millisecond)
	if got, want := e.get(e.key(&Request{Route: "GET /new"})), time.Millisecond; got != want {
		t.Errorf("estimate of an unseen key = %v, want the initial %v", got, want)
	}
	e.observe(e.key(&Request{Route: "GET /a"}), 81*time.Millisecond)
	if got, want := e.get(e.key(&Request{Route: "GET /new"})), 11*time.Millisecond; got != want {
		t.Errorf("estimate of an unseen key = %v, want the global average %v", got, want)
	}
}

func TestEstimateEWMA(t *testing.T) {
	e := newEstimates(time.Millisecond)
	k := e.key(&Request{Route: "GET /a"})
	e.observe(k, 100*time.Millisecond)
	if got, want := e.get(k), 100*time.Millisecond; got != want {
		t.Errorf("after the first sample: %v, want %v", got, want)
	}
	e.observe(k, 20*time.Millisecond)
	if got, want := e.get(k), 80*time.Millisecond; got != want {
		t.Errorf("after a second sample: %v, want %v (weight 1/4)", got, want)
	}
	for range 40 {
		e.observe(k, 20*time.Millisecond)
	}
	if got := e.get(k); got < 20*time.Millisecond || got > 20*time.Millisecond+20*time.Microsecond {
		t.Errorf("after many 20ms samples: %v, want 20ms", got)
	}
	if other := e.get(e.key(&Request{Route: "GET /b"})); other < 19*time.Millisecond || other > 21*time.Millisecond {
		t.Errorf("global average %v, want it to have converged near 20ms", other)
	}
}

func TestEstimateKeysAreDistinct(t *testing.T) {
	e := newEstimates(time.Millisecond)
	a, b := e.key(&Request{Route: "GET /a"}), e.key(&Request{Route: "GET /b"})
	if a == b || a == 0 || b == 0 {
		t.Fatalf("keys %d and %d", a, b)
	}
	if a != e.key(&Request{Route: "GET /a"}) {
		t.Error("key is not stable")
	}
	e.observe(a, 5*time.Millisecond)
	e.observe(b, 50*time.Millisecond)
	if got := e.get(a); got != 5*time.Millisecond {
		t.Errorf("a = %v, want 5ms", got)
	}
	if got := e.get(b); got != 50*time.Millisecond {
		t.Errorf("b = %v, want 50ms", got)
	}
}

// Two keys in the same slot: the later one takes it over, the earlier
// falls back to the global average (never to the other key's estimate),
// and no memory is allocated however many keys come.
func TestEstimateSlotCollision(t *testing.T) {
	e := newEstimates(time.Millisecond)
	seen := map[uint64]uint64{}
	var k1, k2 uint64
	for i := 0; k2 == 0; i++ {
		k := e.key(&Request{Route: "GET /" + strconv.Itoa(i)})
		if prev, ok := seen[k%estimateSlots]; ok && prev != k {
			k1, k2 = prev, k
		}
		seen[k%estimateSlots] = k
	}
	e.observe(k1, 40*time.Millisecond)
	if got := e.get(k1); got != 40*time.Millisecond {
		t.Fatalf("k1 = %v, want 40ms", got)
	}
	global := e.global
	if got := e.get(k2); got != global {
		t.Errorf("k2 before any sample = %v, want the global %v, not k1's estimate", got, global)
	}
	e.observe(k2, 400*time.Millisecond)
	if got := e.get(k2); got != 400*time.Millisecond {
		t.Errorf("k2 = %v, want 400ms", got)
	}
	if got := e.get(k1); got != e.global {
		t.Errorf("k1 after losing its slot = %v, want the global %v", got, e.global)
	}

	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		e.observe(uint64(i)*2+1, time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("observe of new keys allocates %v times per call, want 0", allocs)
	}
}

func TestKeyOfMethodAndPath(t *testing.T) {
	e := newEstimates(time.Millisecond)
	if a, b := e.key(&Request{Method: "GET", Path: "/a"}), e.key(&Request{Route: "GET /a"}); a != b {
		t.Errorf("method and path hash to %x, the same route spelled out to %x", a, b)
	}
	if a, b := e.key(&Request{Method: "GET", Path: "/a"}), e.key(&Request{Method: "POST", Path: "/a"}); a == b {
		t.Error("GET /a and POST /a share a key")
	}
}
