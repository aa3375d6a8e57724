package guard

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// addrSet is an immutable set of addresses and networks.
type addrSet struct {
	exact map[netip.Addr]struct{}
	nets  []netip.Prefix
}

func (s *addrSet) contains(a netip.Addr) bool {
	if len(s.exact) > 0 {
		if _, ok := s.exact[a]; ok {
			return true
		}
	}
	for _, p := range s.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// list is an allow or deny list: addresses and CIDRs given as such, and
// host names resolved at start and again every so often.
type list struct {
	name  string
	log   *slog.Logger
	fixed []netip.Prefix
	hosts []string
	cur   atomic.Pointer[addrSet]

	mu       sync.Mutex
	resolved map[string][]netip.Addr // last good answer per host
	failing  map[string]bool
}

// newList parses entries: IP addresses, CIDRs or host names.
func newList(name string, entries []string, log *slog.Logger) (*list, error) {
	l := &list{name: name, log: log, resolved: map[string][]netip.Addr{}, failing: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			l.fixed = append(l.fixed, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			a = a.Unmap()
			l.fixed = append(l.fixed, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		if !validHostName(e) {
			return nil, fmt.Errorf("%s list: %q is not an IP address, a CIDR or a host name", name, e)
		}
		l.hosts = append(l.hosts, strings.ToLower(e))
	}
	l.rebuild()
	return l, nil
}

func validHostName(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func (l *list) contains(a netip.Addr) bool {
	return l.cur.Load().contains(a)
}

// rebuild publishes the fixed entries plus the last resolved addresses.
func (l *list) rebuild() {
	s := &addrSet{exact: map[netip.Addr]struct{}{}}
	add := func(p netip.Prefix) {
		if p.IsSingleIP() {
			s.exact[p.Addr()] = struct{}{}
		} else {
			s.nets = append(s.nets, p)
		}
	}
	for _, p := range l.fixed {
		add(p)
	}
	l.mu.Lock()
	for _, as := range l.resolved {
		for _, a := range as {
			add(netip.PrefixFrom(a, a.BitLen()))
		}
	}
	l.mu.Unlock()
	l.cur.Store(s)
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
