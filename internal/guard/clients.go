package guard

import (
	"hash/maphash"
	"net/netip"
	"sync"
)

// client is the per-client state: jail windows, token buckets, in-flight
// count. It lives in a bounded LRU table, so a flood of (spoofed) sources
// evicts the least recently seen clients instead of growing memory.
type client struct {
	key        netip.Addr
	prev, next *client // LRU links, guarded by the shard's mutex

	mu       sync.Mutex // guards everything below
	windows  []window   // one per jail, allocated on the first event
	limiter  *bucket
	routes   []*bucket // one per route limit, allocated on first use
	inflight int

	// With a shared store (Config.Shared), by limit (the client rate, then
	// the route limits), allocated on first use: the requests admitted
	// since the last report. dirty: queued for the next report.
	sharedPending []int32
	dirty         bool
}

// window is a jail's sliding window for one client: the times of the last
// maxretry events, as a ring.
type window struct {
	times []int64 // unix nanoseconds
	next  int
	n     int
}

// add records an event at now and returns how many events fall within
// findtime before now (at most len(times)).
func (w *window) add(now, findtime int64, size int) int {
	if w.times == nil {
		w.times = make([]int64, size)
	}
	w.times[w.next] = now
	w.next = (w.next + 1) % len(w.times)
	if w.n < len(w.times) {
		w.n++
	}
	count := 0
	for i := 0; i < w.n; i++ {
		if now-w.times[i] < findtime {
			count++
		}
	}
	return count
}

func (w *window) reset() { w.n, w.next = 0, 0 }

const shardCount = 16

// clients is the sharded LRU table of per-client state.
type clients struct {
	seed   maphash.Seed
	shards [shardCount]shard
}

type shard struct {
	mu         sync.Mutex
	m          map[netip.Addr]*client
	head, tail *client // most and least recently used
	max        int
	evicted    uint64
}

func newClients(max int) *clients {
	cs := &clients{seed: maphash.MakeSeed()}
	per := max / shardCount
	if per < 1 {
		per = 1
	}
	for i := range cs.shards {
		cs.shards[i].m = make(map[netip.Addr]*client)
		cs.shards[i].max = per
	}
	return cs
}

func (cs *clients) shard(k netip.Addr) *shard {
	b := k.As16()
	return &cs.shards[maphash.Bytes(cs.seed, b[:])%shardCount]
}

// get returns the state of key k, creating it (and evicting the least
// recently used client of its shard if full).
func (cs *clients) get(k netip.Addr) *client {
	s := cs.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.m[k]; c != nil {
		s.toFront(c)
		return c
	}
	if len(s.m) >= s.max && s.tail != nil {
		old := s.tail
		s.unlink(old)
		delete(s.m, old.key)
		s.evicted++
	}
	c := &client{key: k}
	s.m[k] = c
	s.pushFront(c)
	return c
}

// peek returns the state of k without creating it or touching the LRU.
func (cs *clients) peek(k netip.Addr) *client {
	s := cs.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k]
}

func (cs *clients) forget(k netip.Addr) {
	s := cs.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.m[k]; c != nil {
		s.unlink(c)
		delete(s.m, k)
	}
}

func (cs *clients) len() int {
	n := 0
	for i := range cs.shards {
		s := &cs.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (s *shard) pushFront(c *client) {
	c.prev, c.next = nil, s.head
	if s.head != nil {
		s.head.prev = c
	} else {
		s.tail = c
	}
	s.head = c
}

func (s *shard) unlink(c *client) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		s.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		s.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

func (s *shard) toFront(c *client) {
	if s.head == c {
		return
	}
	s.unlink(c)
	s.pushFront(c)
}
