package guard

import (
	"sort"
	"strings"

	"corral/internal/front"
	"corral/internal/urlpath"
)

// maxJailNames bounds the jail names counted apart; bans with other names
// (stored or shared bans from a newer version, say) count under "other".
const maxJailNames = 32

// jailCount is one jail's part of the ban table's counts. Guarded by the
// table's mu.
type jailCount struct {
	bans             int64 // bans put in force here
	blocked, refused int64 // by bans of this jail that have ended
}

// jail returns the counts of the jail named name. t.mu is held for writing.
func (t *banTable) jail(name string) *jailCount {
	if t.byJail == nil {
		t.byJail = map[string]*jailCount{}
	}
	c := t.byJail[name]
	if c == nil {
		if len(t.byJail) >= maxJailNames {
			name = "other"
			if c = t.byJail[name]; c != nil {
				return c
			}
		}
		c = &jailCount{}
		t.byJail[name] = c
	}
	return c
}

// fold adds what b blocked and refused to the counts of ended bans, in
// total and for b's jail, when b leaves the table. t.mu is held for
// writing.
func (t *banTable) fold(b *ban) {
	blocked, refused := b.blocked.Load(), b.refused.Load()
	t.blocked += blocked
	t.refused += refused
	c := t.jail(b.jail)
	c.blocked += blocked
	c.refused += refused
}

// JailStat is one jail's counters since the start: bans put in force on
// this instance (by this guard, the app, the admin API or the fleet), the
// requests those bans refused (403 or 429 from Go) and the connections
// closed at accept because of them. Active is the jail's bans in force.
type JailStat struct {
	Jail    string `json:"jail"`
	Bans    int64  `json:"bans"`
	Active  int    `json:"active"`
	Blocked int64  `json:"blocked_requests"`
	Refused int64  `json:"refused_connections"`
}

// JailStats returns the counters of every jail that has had a ban, sorted
// by name. It costs a walk of the ban table: call it at scrape time.
func (g *Guard) JailStats() []JailStat {
	t := g.bans
	t.mu.RLock()
	by := make(map[string]*JailStat, len(t.byJail))
	get := func(name string) *JailStat {
		s := by[name]
		if s == nil {
			s = &JailStat{Jail: name}
			by[name] = s
		}
		return s
	}
	for name, c := range t.byJail {
		s := get(name)
		s.Bans, s.Blocked, s.Refused = c.bans, c.blocked, c.refused
	}
	for _, b := range t.m {
		name := b.jail
		if _, ok := t.byJail[name]; !ok && len(by) >= maxJailNames {
			name = "other"
		}
		s := get(name)
		s.Active++
		s.Blocked += b.blocked.Load()
		s.Refused += b.refused.Load()
	}
	t.mu.RUnlock()
	out := make([]JailStat, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Jail < out[j].Jail })
	return out
}

// Tarpit returns the connections held in the tarpit now and the number
// put there since the start.
func (g *Guard) Tarpit() (held, total int64) { return g.held.Load(), g.tarpitted.Load() }

// Route returns the route path belongs to, as a bounded label: the rule of
// the app's route (as `corral routes` prints it), the prefix (an app's
// prefix or a static mount) for paths under one, "" for paths the
// matcher does not know (learned paths included: they are unbounded).
func (g *Guard) Route(path string) string {
	m := g.matcher.Load()
	if l, ok := m.Label(path); ok || g.cfg.ScriptName == "" {
		return l
	}
	if rest, ok := urlpath.Below(path, g.cfg.ScriptName); ok {
		if rest == "" {
			rest = "/"
		}
		l, _ := m.Label(rest)
		return l
	}
	return ""
}

// noteRoute tells a writer that asks (front.RouteNoter) the route of the
// request the guard matched: index route of m, known or not.
func (g *Guard) noteRoute(w any, m *Matcher, route int, known bool, path string) {
	n, ok := w.(front.RouteNoter)
	if !ok {
		return
	}
	switch {
	case route >= 0:
		n.NoteRoute(m.Rule(route))
	case known:
		n.NoteRoute(g.Route(path))
	default:
		n.NoteRoute("")
	}
}

// Label is like Match, but returns the rule of the route path belongs to,
// or the prefix (or static mount) it is under; "" and false if none.
func (m *Matcher) Label(path string) (string, bool) {
	i, ok := m.Match(path)
	switch {
	case !ok:
		return "", false
	case i >= 0:
		return m.rules[i], true
	}
	if _, ok := m.exact[path]; ok {
		return path, true // a static mount's own path
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(path, p) {
			return p, true
		}
	}
	return "", true
}
