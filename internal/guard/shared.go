package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Shared is a store that the instances of a fleet share (package fleet
// keeps one in Redis or Valkey): bans, jail event counts and rate-limit
// buckets. The guard answers from its own tables. Requests admitted by
// rate limits are reported by its own goroutine in batches, and the
// fleet's buckets that come back become the guard's own (with what it let
// through meanwhile) for the requests after them. Jail events are counted
// before the answer that earned them goes out, and the requests of a
// suspect (a client near a jail's threshold) ask the store for a ban
// first: see countShared. No
// other request waits for the store. Ban changes travel both ways: the
// guard hands its own to Put and Delete, and the store hands the other
// instances' to Local.Apply.
//
// While the store is down, Up is false, Count and Take fail at once, and
// the guard goes on with its local jails and limits alone; Put and Delete
// still queue, and the store pushes their changes when it returns. All
// methods must be safe for concurrent use. The store's owner opens it,
// sets it in Config.Shared, and closes it after the guard's Shutdown.
type Shared interface {
	// Start starts the store's background work (connecting, following the
	// fleet's ban changes, pushing changes made while it was down) on
	// behalf of l. The guard calls it once, from Start.
	Start(l Local)
	// Up reports whether the store answers now. It is called on the
	// request path, so it must be an atomic load or as cheap.
	Up() bool
	// Put shares a ban made here, and Delete the lifting of the ban of
	// addr (a Ban's Addr) at the time at. Neither blocks: changes are
	// queued (bounded), pushed soon, and pushed when the store returns if
	// it is down. A change older than the one the store holds for the same
	// address is dropped there (the latest change wins).
	Put(b Ban)
	Delete(addr string, at time.Time)
	// Count adds one jail event per entry to the shared jail windows and
	// returns each window's count after it; a count that reaches the
	// event's MaxRetry empties that window (the guard bans the client).
	// The guard calls it from a request's goroutine, before the answer
	// that earned the events goes out: it must give up within a few
	// milliseconds (the store's call timeout).
	Count(ctx context.Context, events []Event) ([]int, error)
	// Banned returns the store's latest ban change of each of addrs (a
	// zero Change, Addr "", when it has none), in one round trip within
	// the call timeout. The guard asks before it serves a suspect (see
	// Guard.countShared), never for other clients.
	Banned(ctx context.Context, addrs []string) ([]Change, error)
	// Push pushes the queued ban changes now, within the call timeout:
	// the guard calls it after a ban its shared count made, before the
	// answer goes out.
	Push(ctx context.Context) error
	// Take records requests admitted by rate limits in the shared buckets
	// and returns, for each, the bucket's fill after it: how far its
	// theoretical arrival time is ahead of the store's clock (GCRA, as
	// the guard's own buckets; 0 for an empty bucket; negative for a take
	// whose call failed alone). The guard sets its bucket to that.
	Take(ctx context.Context, takes []Take) ([]time.Duration, error)
	// Flush pushes the queued ban changes, giving up when ctx is done.
	Flush(ctx context.Context) error
	// Stats describes the store, for /status.
	Stats() SharedStats
}

// Local is the guard as a Shared store sees it.
type Local interface {
	// Bans returns the bans in force here, for a store that comes back
	// after an outage (or restarted empty) to push the ones it lacks.
	Bans() []Ban
	// Apply applies a ban change that another instance made (or that the
	// store held while this instance was away). The latest change of an
	// address wins: a change older than this instance's ban is ignored.
	Apply(c Change)
}

// Change is one change to the fleet's bans.
type Change struct {
	// Ban is the ban made; with Deleted only its Addr counts.
	Ban
	// Deleted says that the ban of Addr was lifted, at At.
	Deleted bool
	At      time.Time
	// Origin names the instance that made the change, for the log.
	Origin string
	// Resync says that the store hands the change over while it
	// catches up with the fleet (after an outage, at start) rather than
	// as it happens: the guard logs it at debug level, and the store
	// logs how many there were.
	Resync bool
}

// Event is one jail event for a shared jail window: the window of Jail
// for Addr holds the events of the last FindTime, and MaxRetry of them
// ban the client.
type Event struct {
	Jail     string
	Addr     string
	MaxRetry int
	FindTime time.Duration
}

// Take is N requests admitted by a rate limit: Limit names it ("global",
// "client", or "route:" and the route limit's path), Addr is the client
// ("" for the global limit), Rate is the limit's (the burst is the
// guard's business: it compares the fill that comes back with it).
type Take struct {
	Limit string
	Addr  string
	N     int
	Rate  float64
}

// SharedStats is the state of the shared store, in /status's guard
// section. While the store is down, Up is false and DownSeconds counts.
type SharedStats struct {
	URL         string     `json:"url"` // without its password
	Up          bool       `json:"up"`
	DownSince   *time.Time `json:"down_since,omitempty"`
	DownSeconds float64    `json:"down_seconds"` // the outage so far; 0 while up
	Outages     int64      `json:"outages"`      // since start, the one at start included
	PendingBans int        `json:"pending_bans"` // ban changes not pushed yet
	// Dropped counts the updates not shared: jail events and admitted
	// requests dropped because the store was down or the queue was full,
	// and ban changes dropped because the queue was full.
	Dropped   int64  `json:"dropped_updates"`
	Errors    int64  `json:"errors"` // failed calls
	LastError string `json:"last_error,omitempty"`
}

// ErrDown is returned by a Shared store's calls while it is down.
var ErrDown = errors.New("shared guard store is down")

// Sizes of the guard's queues towards the shared store. Past them updates
// are dropped (and counted), never queued without bound.
const (
	sharedDirtyQueue = 8192 // clients with admitted requests to report
	sharedSyncQueue  = 4096 // requests waiting to count jail events or to check a ban
	sharedBatch      = 512  // takes, counts or checks per call
	// sharedDelay is how long the guard lets admitted requests gather
	// before it reports them: the price of batching, in how late the
	// verdict of an empty bucket arrives.
	sharedDelay = time.Millisecond
	maxSuspects = 65536 // clients whose every request asks the store for a ban
)

// sharedLocal is the guard as its Shared store sees it.
type sharedLocal struct{ g *Guard }

func (l sharedLocal) Bans() []Ban {
	g := l.g
	now := g.now()
	g.bans.mu.RLock()
	defer g.bans.mu.RUnlock()
	out := make([]Ban, 0, len(g.bans.m))
	for _, b := range g.bans.m {
		if b.activeAt(now) {
			out = append(out, b.stored())
		}
	}
	return out
}

func (l sharedLocal) Apply(c Change) { l.g.applyShared(c) }

// stored is b as a Store keeps it.
func (b *ban) stored() Ban {
	return Ban{Addr: keyString(b.key), Since: b.since, Until: b.until, Jail: b.jail,
		Reason: b.reason, Offences: b.offences, Status: b.status}
}

// applyShared applies a ban change from the fleet: the latest change of a
// client wins, by the time it was made (millisecond precision, as the
// store keeps it). An allow-listed client is never banned here.
func (g *Guard) applyShared(c Change) {
	k, err := ParseKey(c.Addr)
	if err != nil || !g.cfg.Enabled {
		return
	}
	now := g.now()
	t := g.bans
	if c.Deleted {
		t.mu.Lock()
		old := t.m[k]
		if old == nil || old.since.UnixMilli() > c.At.UnixMilli() {
			t.mu.Unlock()
			return
		}
		delete(t.m, k)
		delete(t.history, k)
		t.fold(old)
		t.mu.Unlock()
		g.clients.forget(k)
		g.suspects.remove(k)
		if g.store != nil {
			g.store.Delete(keyString(k))
		}
		g.log.Log(context.Background(), changeLevel(c), "client unbanned", "client", keyString(k), "jail", old.jail,
			"reason", "lifted on another instance", "origin", c.Origin,
			"blocked_requests", old.blocked.Load(), "refused_connections", old.refused.Load())
		return
	}
	if g.allow.contains(k) {
		return
	}
	status := c.Status
	if status != http.StatusTooManyRequests {
		status = http.StatusForbidden
	}
	// A resync hands over the bans this instance already has: answer
	// those under the read lock, which does not hold requests up.
	t.mu.RLock()
	old := t.m[k]
	known := old != nil && (old.since.UnixMilli() > c.Since.UnixMilli() || sameBan(old, c.Ban))
	t.mu.RUnlock()
	if known {
		return
	}
	t.mu.Lock()
	old = t.m[k]
	if old != nil && (old.since.UnixMilli() > c.Since.UnixMilli() || sameBan(old, c.Ban)) {
		t.mu.Unlock()
		return
	}
	if !c.Until.IsZero() && !now.Before(c.Until) {
		// Ended: only its offences matter, for the next ban's escalation.
		if old == nil && now.Sub(c.Until) <= g.cfg.Remember && t.history[k].count < c.Offences {
			t.history[k] = offence{count: c.Offences, ended: c.Until}
		}
		t.mu.Unlock()
		return
	}
	b := &ban{key: k, since: c.Since, until: c.Until, jail: c.Jail, reason: c.Reason, offences: c.Offences, status: status}
	if !g.putUnlock(b, old) {
		return
	}
	until := "never"
	if !c.Until.IsZero() {
		until = c.Until.Sub(now).Round(time.Second).String()
	}
	g.log.Log(context.Background(), changeLevel(c), "client banned", "client", keyString(k), "jail", c.Jail,
		"reason", c.Reason, "bantime", until, "offences", c.Offences, "origin", c.Origin)
	if g.store != nil {
		g.store.Put(b.stored())
	}
}

// changeLevel is the level of the log line of a change from the fleet:
// one line per ban as it happens, none (but at debug level) for each of
// the bans a resync hands over.
func changeLevel(c Change) slog.Level {
	if c.Resync {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// sameBan reports whether b is the ban s describes, to the millisecond.
func sameBan(b *ban, s Ban) bool {
	return b.since.UnixMilli() == s.Since.UnixMilli() && b.until.UnixMilli() == s.Until.UnixMilli() &&
		b.until.IsZero() == s.Until.IsZero() && b.jail == s.Jail
}

// countShared counts jail events of key in the fleet's windows and bans
// the client when one is full. The request's goroutine waits for it
// before the answer that earned the events goes out, and a ban it makes
// is in the store before it returns, so that a scan spread over the fleet
// is cut off as against one instance:
//
//   - the fleet's count of a probe already includes every earlier probe
//     of a scanner that waits for each answer, whatever instance
//     answered it: the count that reaches maxretry is this instance's,
//     and the ban is in the store before the scanner hears back;
//   - a client whose count reached half a jail's maxretry is a suspect
//     here until the jail's findtime has passed: before serving each of
//     its requests this instance asks the store for its ban (sharedBan),
//     so the scanner's next probe is refused wherever it lands, even
//     before the ban's message on the channel arrives.
//
// Only answers that count against a jail (a probe, a 401/403, another
// 4xx) and the requests of suspects wait for the store; other answers,
// and every request of a client that is not a suspect, never do. The
// waits are batched by syncShared (one round trip for many requests, so
// a flood of 4xx answers does not become a flood of calls) and bounded
// by its queue: a request that finds it full, or the store down, goes
// on without the store.
func (g *Guard) countShared(key netip.Addr, jails []int) {
	if !g.shared.Up() {
		g.sharedDropped.Add(int64(len(jails)))
		return
	}
	r := &sharedReq{key: key, done: make(chan struct{})}
	r.n = copy(r.jails[:], jails)
	if !g.waitShared(r) {
		g.sharedDropped.Add(int64(r.n))
	}
}

// sharedBan asks the store whether suspect key is banned, applies the ban
// it holds here and returns it; nil when the store has none, or does not
// answer within its timeout.
func (g *Guard) sharedBan(key netip.Addr) *ban {
	if !g.shared.Up() {
		return nil
	}
	r := &sharedReq{key: key, check: true, done: make(chan struct{})}
	if !g.waitShared(r) || r.found.Addr == "" || r.found.Deleted {
		return nil
	}
	g.applyShared(r.found)
	return g.bans.active(key, g.now)
}

// pushShared pushes a ban the local jails made before the answer that
// earned it goes out, as countShared does for the fleet's. It reports
// whether it did.
func (g *Guard) pushShared() bool {
	if !g.shared.Up() {
		return false
	}
	return g.waitShared(&sharedReq{push: true, done: make(chan struct{})})
}

// sharedReq is a request's business with the store, which it waits for:
// count its jail events, (check) read its ban into found, or (push) push
// the ban changes queued.
type sharedReq struct {
	key   netip.Addr
	jails [NumJails]int
	n     int
	check bool
	push  bool
	found Change
	done  chan struct{} // closed when done
}

// waitShared hands r to syncShared and waits until it is done. It
// reports false when the queue is full or the guard stops first.
func (g *Guard) waitShared(r *sharedReq) bool {
	select {
	case g.syncq <- r:
	default:
		return false
	}
	select {
	case <-r.done:
		return true
	case <-g.stopCtx.Done():
		return false
	}
}

// syncShared does the requests' business with the store, in batches,
// until the guard stops.
func (g *Guard) syncShared() {
	defer close(g.syncDone)
	batch := make([]*sharedReq, 0, sharedBatch)
	for {
		select {
		case <-g.stopCtx.Done():
			return
		case r := <-g.syncq:
			batch = append(batch[:0], r)
		}
	drain:
		for len(batch) < sharedBatch {
			select {
			case r := <-g.syncq:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		g.syncOnce(batch)
		for _, r := range batch {
			close(r.done)
		}
		clear(batch)
	}
}

// syncOnce counts the batch's events, bans the clients whose windows are
// full and pushes the bans, then reads the bans the batch checks: a ban
// this batch made is in the store before anyone hears of it.
func (g *Guard) syncOnce(batch []*sharedReq) {
	var evs []Event
	var refs []*sharedReq
	var jails []int
	var addrs []string
	var checks []*sharedReq
	banned := false
	for _, r := range batch {
		banned = banned || r.push
		if r.check {
			addrs = append(addrs, keyString(r.key))
			checks = append(checks, r)
			continue
		}
		addr := keyString(r.key)
		for _, jail := range r.jails[:r.n] {
			j := &g.cfg.Jails[jail]
			evs = append(evs, Event{Jail: j.Name, Addr: addr, MaxRetry: j.MaxRetry, FindTime: j.FindTime})
			refs = append(refs, r)
			jails = append(jails, jail)
		}
	}
	if len(evs) > 0 {
		counts, err := g.shared.Count(g.stopCtx, evs)
		if err != nil {
			g.sharedDropped.Add(int64(len(evs)))
		}
		now := g.now()
		for i, n := range counts {
			jail, key := jails[i], refs[i].key
			j := &g.cfg.Jails[jail]
			switch {
			case n >= j.MaxRetry:
				reason := fmt.Sprintf("%d %s within %s across the fleet", n, eventNoun[jail], j.FindTime)
				banned = g.ban(key, 0, j.Name, reason, jailStatus(jail), jail, true) || banned
			case 2*n >= j.MaxRetry:
				g.suspects.add(key, now.Add(j.FindTime).UnixNano())
			}
		}
	}
	if banned {
		// A failed push stays queued and goes out with the next.
		_ = g.shared.Push(g.stopCtx)
	}
	if len(addrs) > 0 {
		found, err := g.shared.Banned(g.stopCtx, addrs)
		if err == nil {
			for i, c := range found {
				checks[i].found = c
			}
		}
	}
}

// suspects are the clients whose count in a shared jail window came near
// its maxretry: every request of theirs asks the store for a ban first.
// Bounded: past maxSuspects, new suspects are not kept (their scans are
// cut off as before, when the ban's message arrives).
type suspects struct {
	n  atomic.Int32 // len(m): the request path skips the lock while 0
	mu sync.RWMutex
	m  map[netip.Addr]int64 // until when (unix ns)
}

func (s *suspects) add(k netip.Addr, until int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[netip.Addr]int64{}
	}
	if _, ok := s.m[k]; !ok && len(s.m) >= maxSuspects {
		return
	}
	s.m[k] = until
	s.n.Store(int32(len(s.m)))
}

func (s *suspects) has(k netip.Addr, now func() time.Time) bool {
	if s.n.Load() == 0 {
		return false
	}
	s.mu.RLock()
	until, ok := s.m[k]
	s.mu.RUnlock()
	return ok && until > now().UnixNano()
}

func (s *suspects) remove(k netip.Addr) {
	if s.n.Load() == 0 {
		return
	}
	s.mu.Lock()
	delete(s.m, k)
	s.n.Store(int32(len(s.m)))
	s.mu.Unlock()
}

// expire forgets the suspects whose time is up.
func (s *suspects) expire(now time.Time) {
	if s.n.Load() == 0 {
		return
	}
	t := now.UnixNano()
	s.mu.Lock()
	for k, until := range s.m {
		if until <= t {
			delete(s.m, k)
		}
	}
	s.n.Store(int32(len(s.m)))
	s.mu.Unlock()
}

func (g *Guard) kickShared() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// Limits of a client in the shared buckets, by index: the client rate,
// then one per route limit.
const sharedClientLimit = 0

// noteShared counts a request admitted by limit i of c for the next
// report to the shared store. c.mu is held.
func (g *Guard) noteShared(c *client, i int) {
	if c.sharedPending == nil {
		c.sharedPending = make([]int32, 1+len(g.cfg.RouteLimits))
	}
	if c.sharedPending[i] < math.MaxInt32 {
		c.sharedPending[i]++
	}
	if c.dirty {
		return
	}
	select {
	case g.dirty <- c:
		c.dirty = true
		g.kickShared()
	default:
		g.sharedDropped.Add(1)
	}
}

func secondsCeil(ns int64) int { return max(1, int((ns+int64(time.Second)-1)/int64(time.Second))) }

// share sends the jail events and admitted requests to the shared store
// and applies its verdicts, until the guard stops.
func (g *Guard) share() {
	defer close(g.sharedDone)
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-g.stopCtx.Done():
			return
		case <-g.kick:
		}
		// Admitted requests wait a moment for others to join them in
		// the batch.
		t.Reset(sharedDelay)
		select {
		case <-g.stopCtx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		for g.shareOnce() {
		}
	}
}

// takeRef is where a Take's verdict goes: limit i of client c, or the
// global limit when c is nil.
type takeRef struct {
	c *client
	i int
}

// shareOnce sends one batch of takes; it reports whether more are
// waiting.
func (g *Guard) shareOnce() bool {
	up := g.shared.Up()
	var takes []Take
	var refs []takeRef
	if n := g.globalPending.Swap(0); n > 0 {
		takes = append(takes, Take{Limit: "global", N: int(min(n, math.MaxInt32)), Rate: g.cfg.GlobalRate.Rate})
		refs = append(refs, takeRef{})
	}
drainClients:
	for len(takes) < sharedBatch {
		select {
		case c := <-g.dirty:
			c.mu.Lock()
			c.dirty = false
			for i, n := range c.sharedPending {
				if n == 0 {
					continue
				}
				c.sharedPending[i] = 0
				lim, name := g.cfg.ClientRate, "client"
				if i > sharedClientLimit {
					rl := &g.cfg.RouteLimits[i-1]
					lim, name = rl.Limit, "route:"+rl.Path
				}
				takes = append(takes, Take{Limit: name, Addr: keyString(c.key), N: int(n), Rate: lim.Rate})
				refs = append(refs, takeRef{c: c, i: i})
			}
			c.mu.Unlock()
		default:
			break drainClients
		}
	}
	more := len(takes) >= sharedBatch
	if !up {
		g.sharedDropped.Add(int64(len(takes)))
		return more
	}
	if len(takes) > 0 {
		fills, err := g.shared.Take(g.stopCtx, takes)
		if err != nil {
			g.sharedDropped.Add(int64(len(takes)))
		}
		now := g.now().UnixNano()
		for i, fill := range fills {
			r := refs[i]
			if fill < 0 {
				continue
			}
			if r.c == nil {
				g.global.mirror(now, fill, g.globalPending.Load())
				continue
			}
			r.c.mu.Lock()
			b := r.c.limiter
			if r.i > sharedClientLimit {
				b = r.c.routes[r.i-1]
			}
			b.mirror(now, fill, int64(r.c.sharedPending[r.i]))
			r.c.mu.Unlock()
		}
	}
	return more
}

// jailStatus is the answer to a client banned by jail i.
func jailStatus(jail int) int {
	if jail == JailRateLimit {
		return http.StatusTooManyRequests
	}
	return http.StatusForbidden
}
