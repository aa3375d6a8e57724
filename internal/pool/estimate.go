package pool

import (
	"hash/maphash"
	"time"
)

// estimates remembers how long requests take, per route key, so that the
// dispatcher pipelines only behind requests expected to finish soon. The
// table has a fixed number of slots indexed by hash: distinct keys may share
// a slot, which only blurs an estimate, and memory stays bounded however
// many paths clients invent. Not safe for concurrent use: the pool's mutex
// guards it.
type estimates struct {
	seed   maphash.Seed
	slots  [estimateSlots]estimateSlot
	global time.Duration // EWMA over all requests, for unseen keys
}

const estimateSlots = 4096

type estimateSlot struct {
	tag  uint64
	ewma time.Duration
}

func newEstimates(initial time.Duration) *estimates {
	return &estimates{seed: maphash.MakeSeed(), global: initial}
}

// key hashes a route key: the request's route pattern when it has one,
// else its method and path (hashed in parts: no string is built).
func (e *estimates) key(r *Request) uint64 {
	var h maphash.Hash
	h.SetSeed(e.seed)
	if r.Route != "" {
		h.WriteString(r.Route)
	} else {
		h.WriteString(r.Method)
		h.WriteByte(' ')
		h.WriteString(r.Path)
	}
	return h.Sum64() | 1
}

// get returns the expected service time for a key.
func (e *estimates) get(k uint64) time.Duration {
	s := &e.slots[k%estimateSlots]
	if s.tag == k {
		return s.ewma
	}
	return e.global
}

// observe folds one measured service time into the key's and the global
// average (weight 1/4 for the new sample: quick to learn, not jumpy).
func (e *estimates) observe(k uint64, d time.Duration) {
	s := &e.slots[k%estimateSlots]
	if s.tag != k {
		s.tag, s.ewma = k, d
	} else {
		s.ewma += (d - s.ewma) / 4
	}
	e.global += (d - e.global) / 8
}
