package guard

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"corral/internal/addrset"
)

// list is an allow or deny list: the addresses, CIDRs and * of its set as
// given, plus the addresses its host names resolve to, looked up at start
// and again every so often.
type list struct {
	name  string
	log   *slog.Logger
	fixed addrset.Set
	hosts []string
	cur   atomic.Pointer[addrset.Set] // fixed plus the resolved addresses

	mu       sync.Mutex
	resolved map[string][]netip.Addr // last good answer per host
	failing  map[string]bool
}

func newList(name string, set addrset.Set, log *slog.Logger) *list {
	l := &list{name: name, log: log, fixed: set, hosts: set.Hosts(),
		resolved: map[string][]netip.Addr{}, failing: map[string]bool{}}
	l.cur.Store(&set)
	return l
}

func (l *list) contains(a netip.Addr) bool {
	return l.cur.Load().Contains(a)
}

// rebuild publishes the fixed entries plus the last resolved addresses.
func (l *list) rebuild() {
	var as []netip.Addr
	l.mu.Lock()
	for _, r := range l.resolved {
		as = append(as, r...)
	}
	l.mu.Unlock()
	s := l.fixed.With(as...)
	l.cur.Store(&s)
}

// resolve looks the host names up again. A host that fails keeps its
// last addresses. One log line per change, not per lookup.
func (l *list) resolve(ctx context.Context, lookup func(context.Context, string) ([]netip.Addr, error)) {
	if len(l.hosts) == 0 {
		return
	}
	if lookup == nil {
		lookup = func(ctx context.Context, h string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", h)
		}
	}
	changed := false
	for _, h := range l.hosts {
		as, err := lookup(ctx, h)
		l.mu.Lock()
		if err != nil {
			if !l.failing[h] {
				l.failing[h] = true
				l.log.Warn("cannot resolve a host name of the "+l.name+" list; keeping its last addresses", "host", h,
					"addresses", len(l.resolved[h]), "error", err)
			}
			l.mu.Unlock()
			continue
		}
		delete(l.failing, h)
		for i := range as {
			as[i] = as[i].Unmap()
		}
		slices.SortFunc(as, func(a, b netip.Addr) int { return a.Compare(b) })
		as = slices.Compact(as)
		if !slices.Equal(as, l.resolved[h]) {
			l.resolved[h] = as
			changed = true
			l.log.Info(l.name+" list host resolved", "host", h, "addresses", fmt.Sprint(as))
		}
		l.mu.Unlock()
	}
	if changed {
		l.rebuild()
	}
}
