package guard

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Jails, by index in Config.Jails.
const (
	JailProbe     = iota // requests for paths the app does not have
	JailAuth             // 401 and 403 answers on a known route
	JailErrors           // any 4xx answer (a burst of client errors)
	JailRateLimit        // 429 answers from the rate limits; bans answer 429
	NumJails
)

var jailNames = [NumJails]string{"probe", "auth", "errors", "ratelimit"}

// JailName returns the config name of jail i.
func JailName(i int) string { return jailNames[i] }

// Jail is one fail2ban-style rule: MaxRetry events within FindTime ban
// the client for BanTime, multiplied by Factor for each earlier ban still
// remembered, up to MaxBanTime.
type Jail struct {
	Name       string
	MaxRetry   int // 0 = jail off
	FindTime   time.Duration
	BanTime    time.Duration
	Factor     float64 // >= 1; 1 = no escalation
	MaxBanTime time.Duration
}

// DefaultJails are the jails on by default.
func DefaultJails() [NumJails]Jail {
	return [NumJails]Jail{
		JailProbe:     {MaxRetry: 10, FindTime: 10 * time.Minute, BanTime: 10 * time.Minute, Factor: 2, MaxBanTime: 24 * time.Hour},
		JailAuth:      {MaxRetry: 10, FindTime: 10 * time.Minute, BanTime: 10 * time.Minute, Factor: 2, MaxBanTime: 24 * time.Hour},
		JailErrors:    {MaxRetry: 60, FindTime: time.Minute, BanTime: 10 * time.Minute, Factor: 2, MaxBanTime: 24 * time.Hour},
		JailRateLimit: {MaxRetry: 50, FindTime: time.Minute, BanTime: 5 * time.Minute, Factor: 2, MaxBanTime: 24 * time.Hour},
	}
}

// maxRetryLimit bounds the per-client window (one int64 per retry).
const maxRetryLimit = 10000

func (j *Jail) check() error {
	switch {
	case j.MaxRetry < 0 || j.MaxRetry > maxRetryLimit:
		return fmt.Errorf("jail %s: maxretry must be between 0 and %d, got %d", j.Name, maxRetryLimit, j.MaxRetry)
	case j.MaxRetry == 0:
		return nil
	case j.FindTime <= 0:
		return fmt.Errorf("jail %s: findtime must be positive", j.Name)
	case j.BanTime <= 0:
		return fmt.Errorf("jail %s: bantime must be positive", j.Name)
	case j.Factor < 1:
		return fmt.Errorf("jail %s: escalation factor must be at least 1, got %g", j.Name, j.Factor)
	}
	if j.MaxBanTime < j.BanTime {
		j.MaxBanTime = j.BanTime
	}
	return nil
}

// banTime is the ban for the n-th offence (1-based).
func (j *Jail) banTime(n int) time.Duration {
	d := float64(j.BanTime) * math.Pow(j.Factor, float64(n-1))
	if d >= float64(j.MaxBanTime) || math.IsInf(d, 0) || math.IsNaN(d) {
		return j.MaxBanTime
	}
	return time.Duration(d)
}

// ban is one client banned.
type ban struct {
	key      netip.Addr
	since    time.Time
	until    time.Time // zero = never expires
	jail     string
	reason   string
	offences int
	status   int // 403, or 429 for rate-limit bans
	blocked  atomic.Int64
	refused  atomic.Int64 // connections closed at accept
}

func (b *ban) activeAt(now time.Time) bool { return b.until.IsZero() || now.Before(b.until) }

func (b *ban) retryAfter(now time.Time) int {
	if b.status != http.StatusTooManyRequests {
		return 0
	}
	return max(1, int(math.Ceil(b.until.Sub(now).Seconds())))
}

// offence is what is remembered of a client's past bans.
type offence struct {
	count int
	ended time.Time
}

// banTable holds the bans in force and the recent offences.
type banTable struct {
	mu      sync.RWMutex
	m       map[netip.Addr]*ban
	history map[netip.Addr]offence
	max     int
	full    bool
	blocked int64 // requests blocked by bans that have ended
	refused int64 // connections refused by bans that have ended
	// byJail counts per jail the bans put in force and what ended bans
	// blocked and refused (see JailStats); at most maxJailNames names.
	byJail map[string]*jailCount
}

func newBanTable(max int) *banTable {
	return &banTable{m: map[netip.Addr]*ban{}, history: map[netip.Addr]offence{}, max: max}
}

// active returns the ban in force for key, or nil. It is the hot path:
// one read-locked map lookup, and the clock only when there is a ban.
func (t *banTable) active(key netip.Addr, now func() time.Time) *ban {
	t.mu.RLock()
	b := t.m[key]
	t.mu.RUnlock()
	if b == nil || !b.activeAt(now()) {
		return nil
	}
	return b
}

// counts returns the bans in force and the requests and connections
// refused because of bans, ended ones included.
func (t *banTable) counts() (n int, blocked, refused int64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	blocked, refused = t.blocked, t.refused
	for _, b := range t.m {
		blocked += b.blocked.Load()
		refused += b.refused.Load()
	}
	return len(t.m), blocked, refused
}

// keyString is how a client key is written: an address, or an IPv6 /64.
func keyString(k netip.Addr) string {
	if k.Is6() {
		return netip.PrefixFrom(k, 64).String()
	}
	return k.String()
}

// ParseKey parses an address or an IPv6 /64 as written by keyString (an
// IPv6 address stands for its /64).
func ParseKey(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4() && p.Bits() != 32 || p.Addr().Is6() && p.Bits() != 64 {
			return netip.Addr{}, fmt.Errorf("%q: only single IPv4 addresses and IPv6 /64s can be banned", s)
		}
		return Key(p.Addr()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return Key(a), nil
}

// offend records one event of client key in each of jails and bans the
// client when a jail's window is full. With a shared store the events are
// also counted in the fleet's windows, from the request's goroutine and
// before the answer goes out: see countShared.
func (g *Guard) offend(key netip.Addr, jails ...int) {
	now := g.now()
	var c *client
	var toShare [NumJails]int
	n := 0
	pushed := false // banned here, and the ban pushed
	for _, jail := range jails {
		j := &g.cfg.Jails[jail]
		if j.MaxRetry <= 0 {
			continue
		}
		if c == nil {
			c = g.clients.get(key)
		}
		c.mu.Lock()
		if c.windows == nil {
			c.windows = make([]window, NumJails)
		}
		count := c.windows[jail].add(now.UnixNano(), int64(j.FindTime), j.MaxRetry)
		full := count >= j.MaxRetry
		if full {
			c.windows[jail].reset()
		}
		c.mu.Unlock()
		if !full {
			toShare[n] = jail
			n++
			continue
		}
		reason := fmt.Sprintf("%d %s within %s", count, eventNoun[jail], j.FindTime)
		if g.ban(key, 0, j.Name, reason, jailStatus(jail), jail, true) && g.shared != nil {
			pushed = g.pushShared()
		}
	}
	if n > 0 && g.shared != nil && !pushed {
		g.countShared(key, toShare[:n])
	}
}

var eventNoun = [NumJails]string{"probes", "401/403 answers", "4xx answers", "rate-limited requests"}

// ban bans key. With escalate, d is ignored and the jail's ban time for
// this offence is used; else d is the ban time (0 = permanent). A client
// already banned keeps its ban, unless this one lasts longer.
func (g *Guard) ban(key netip.Addr, d time.Duration, jail, reason string, status, jailIdx int, escalate bool) bool {
	now := g.now()
	t := g.bans
	t.mu.Lock()
	old := t.m[key]
	if old != nil && old.activeAt(now) && !outlasts(escalate, d, now, old.until) {
		t.mu.Unlock()
		return false
	}
	prev := t.history[key]
	if old != nil {
		prev = offence{count: max(prev.count, old.offences), ended: old.until}
	}
	if now.Sub(prev.ended) > g.cfg.Remember && prev.count > 0 && !prev.ended.IsZero() {
		prev.count = 0
	}
	offences := prev.count + 1
	if escalate {
		d = g.cfg.Jails[jailIdx].banTime(offences)
	}
	b := &ban{key: key, since: now, jail: jail, reason: reason, offences: offences, status: status}
	if d > 0 {
		b.until = now.Add(d)
	}
	if !g.putUnlock(b, old) {
		return false
	}
	until := "never"
	if d > 0 {
		until = d.String()
	}
	g.log.Warn("client banned", "client", keyString(key), "jail", jail, "reason", reason, "bantime", until, "offences", offences)
	g.persist(b)
	return true
}

// putUnlock puts b in the ban table in place of old (nil: none), keeps
// old's counts, forgets the client's offence history and its per-client
// state. Called with g.bans.mu held, which it releases. A new ban for a
// full table changes nothing and reports false (the first such refusal is
// logged).
func (g *Guard) putUnlock(b, old *ban) bool {
	t := g.bans
	if old == nil && len(t.m) >= t.max {
		full := t.full
		t.full = true
		t.mu.Unlock()
		if !full {
			g.log.Error("ban table full; new bans are not applied", "bans", t.max)
		}
		return false
	}
	if old != nil {
		t.fold(old)
	}
	t.m[b.key] = b
	t.jail(b.jail).bans++
	delete(t.history, b.key)
	t.mu.Unlock()
	g.clients.forget(b.key)
	g.suspects.remove(b.key)
	return true
}

// outlasts reports whether a new ban of d (0 = permanent) from now ends
// after a ban in force until oldUntil. A jail's ban never replaces one in
// force: requests already running when it began must not escalate it.
func outlasts(escalate bool, d time.Duration, now, oldUntil time.Time) bool {
	switch {
	case escalate || oldUntil.IsZero():
		return false
	case d == 0:
		return true
	}
	return now.Add(d).After(oldUntil)
}

// persist hands a ban made here to the stores: the local one and the
// fleet's.
func (g *Guard) persist(b *ban) {
	if g.store == nil && g.shared == nil {
		return
	}
	s := b.stored()
	if g.store != nil {
		g.store.Put(s)
	}
	if g.shared != nil {
		g.shared.Put(s)
	}
}

// expire lifts the bans that have ended, with one log line each.
func (g *Guard) expire(now time.Time) {
	t := g.bans
	var ended []*ban
	t.mu.Lock()
	for k, b := range t.m {
		if !b.activeAt(now) {
			delete(t.m, k)
			t.fold(b)
			t.history[k] = offence{count: b.offences, ended: b.until}
			ended = append(ended, b)
		}
	}
	if len(ended) > 0 && len(t.m) < t.max {
		t.full = false
	}
	// Forget old offences; the map is bounded like the ban table.
	for k, o := range t.history {
		if now.Sub(o.ended) > g.cfg.Remember || len(t.history) > t.max {
			delete(t.history, k)
		}
	}
	t.mu.Unlock()
	for _, b := range ended {
		g.log.Info("client unbanned", "client", keyString(b.key), "jail", b.jail, "reason", "ban expired",
			"blocked_requests", b.blocked.Load(), "refused_connections", b.refused.Load())
	}
}

// load restores the stored bans.
func (g *Guard) load(ctx context.Context) error {
	stored, err := g.store.Load(ctx)
	if err != nil {
		return err
	}
	now := g.now()
	t := g.bans
	active := 0
	t.mu.Lock()
	for _, s := range stored {
		k, err := ParseKey(s.Addr)
		if err != nil {
			continue
		}
		if !s.Until.IsZero() && !now.Before(s.Until) {
			if now.Sub(s.Until) <= g.cfg.Remember {
				t.history[k] = offence{count: s.Offences, ended: s.Until}
			}
			continue
		}
		if len(t.m) >= t.max {
			continue
		}
		status := s.Status
		if status != http.StatusTooManyRequests {
			status = http.StatusForbidden
		}
		t.m[k] = &ban{key: k, since: s.Since, until: s.Until, jail: s.Jail, reason: s.Reason, offences: s.Offences, status: status}
		active++
	}
	t.mu.Unlock()
	if len(stored) > 0 {
		g.log.Info("bans restored", "active", active, "remembered", len(stored)-active)
	}
	return nil
}

// BanInfo describes a ban in force, for the admin API.
type BanInfo struct {
	Addr     string     `json:"addr"`
	Jail     string     `json:"jail"`
	Reason   string     `json:"reason"`
	Since    time.Time  `json:"since"`
	Until    *time.Time `json:"until,omitempty"` // nil = permanent
	Offences int        `json:"offences"`
	Status   int        `json:"status"`
	Blocked  int64      `json:"blocked_requests"`
	Refused  int64      `json:"refused_connections"`
}

// Bans lists the bans in force, oldest first.
func (g *Guard) Bans() []BanInfo {
	now := g.now()
	g.bans.mu.RLock()
	out := make([]BanInfo, 0, len(g.bans.m))
	for _, b := range g.bans.m {
		if !b.activeAt(now) {
			continue
		}
		bi := BanInfo{Addr: keyString(b.key), Jail: b.jail, Reason: b.reason, Since: b.since, Offences: b.offences,
			Status: b.status, Blocked: b.blocked.Load(), Refused: b.refused.Load()}
		if !b.until.IsZero() {
			u := b.until
			bi.Until = &u
		}
		out = append(out, bi)
	}
	g.bans.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].Addr < out[j].Addr
	})
	return out
}

// Ban bans addr (an address or IPv6 /64) for d (0 = until removed), as
// the operator or the app asks. source names who asked ("manual", "app").
// Allow-listed addresses cannot be banned.
func (g *Guard) Ban(addr string, d time.Duration, source, reason string) (string, error) {
	k, err := ParseKey(addr)
	if err != nil {
		return "", err
	}
	if g.allow.contains(k) {
		return "", fmt.Errorf("%s: %w", addr, errAllowListed)
	}
	if reason == "" {
		reason = source + " ban"
	}
	g.ban(k, d, source, reason, http.StatusForbidden, 0, false)
	return keyString(k), nil
}

// Unban lifts the ban of addr and forgets its offences. It reports
// whether there was a ban.
func (g *Guard) Unban(addr, by string) (bool, error) {
	k, err := ParseKey(addr)
	if err != nil {
		return false, err
	}
	t := g.bans
	t.mu.Lock()
	b := t.m[k]
	delete(t.m, k)
	delete(t.history, k)
	if b != nil {
		t.fold(b)
	}
	t.mu.Unlock()
	g.clients.forget(k)
	g.suspects.remove(k)
	if g.store != nil {
		g.store.Delete(keyString(k))
	}
	if g.shared != nil {
		// Also when this instance has no such ban: the fleet may.
		g.shared.Delete(keyString(k), g.now())
	}
	if b == nil {
		return false, nil
	}
	g.log.Info("client unbanned", "client", keyString(k), "jail", b.jail, "reason", "removed by "+by,
		"blocked_requests", b.blocked.Load(), "refused_connections", b.refused.Load())
	return true, nil
}

// AppBan is a ban the app asked for with corral.ban (a BAN frame).
func (g *Guard) AppBan(addr string, seconds float64, reason string) {
	if !g.cfg.Enabled {
		return
	}
	d := time.Duration(seconds * float64(time.Second))
	if seconds <= 0 || d <= 0 {
		g.log.Warn("the app asked for a ban without a positive duration; ignored", "client", addr)
		return
	}
	if reason == "" {
		reason = "corral.ban()"
	}
	if _, err := g.Ban(addr, d, "app", reason); err != nil {
		g.log.Warn("the app asked for a ban that cannot be applied", "client", addr, "error", err)
	}
}
