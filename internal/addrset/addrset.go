// Package addrset is the set of IP addresses that corral's options mean
// when they list peers or clients: --forwarded-allow-ips, and the guard's
// allow and deny lists and priority classes. Every such list is parsed
// here, by one set of rules, so an entry means the same thing wherever it
// is written.
//
// An entry is one of:
//
//   - an IP address: 192.0.2.1, 2001:db8::1, or an IPv6 address in
//     brackets, [2001:db8::1];
//   - a CIDR prefix: 10.0.0.0/8, 2001:db8::/32, [2001:db8::]/32; host bits
//     are masked off, so 10.1.2.3/8 is 10.0.0.0/8;
//   - *, every address;
//   - a host name (office.example.com), only in lists that take names
//     (ParseHosts). The set keeps the name; resolving it is the caller's
//     business (Hosts, With).
//
// The rules:
//
//   - Spaces around an entry are trimmed. An empty entry is an error.
//   - An IPv4-mapped IPv6 address (::ffff:192.0.2.1) is the IPv4 address,
//     and a mapped prefix of /96 or longer is the IPv4 prefix
//     (::ffff:10.0.0.0/104 is 10.0.0.0/8). Contains unmaps the address it
//     is asked about too, so a client seen on a dual-stack socket matches
//     the IPv4 entries.
//   - An IPv6 zone (fe80::1%eth0) is an error. A set matches addresses on
//     every interface; dropping the zone silently would widen the entry,
//     which for trusted proxies or an allow list is a hole. Contains
//     ignores the zone of the address it is asked about.
//   - IPv6 prefixes do not match IPv4 addresses: ::/0 is every IPv6
//     address. * is every address.
//   - A host name is dot-separated labels of letters, digits, - and _
//     (not starting or ending with -), with an optional trailing dot, whose
//     last label is not all digits: 10.0.0.256 is a bad address, not a
//     name. Names are lower-cased.
//
// Errors are *Error values that quote the entry.
package addrset

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Set is an immutable set of IP addresses and prefixes, with the host
// names of its entries kept aside. The zero value is the empty set. A Set
// is cheap to copy and safe for concurrent use.
type Set struct {
	p *set
}

type set struct {
	all     bool
	exact   map[netip.Addr]struct{} // single addresses, unmapped, without zone
	nets    []netip.Prefix          // masked, IPv4 for mapped prefixes
	hosts   []string                // lower-cased, in the order given
	entries []string                // canonical entries, in the order given
}

// Error is an entry that is none of the forms its list takes.
type Error struct {
	// Entry is the entry, trimmed (untrimmed when it is only spaces).
	Entry string
	// Reason completes the message after the quoted entry: "is not an IP
	// address or a CIDR".
	Reason string
}

func (e *Error) Error() string { return strconv.Quote(e.Entry) + " " + e.Reason }

// Parse builds a set from entries that are IP addresses, CIDR prefixes
// or *. The error names the first bad entry.
func Parse(entries []string) (Set, error) { return parse(entries, false) }

// ParseHosts is Parse for lists that also take host names.
func ParseHosts(entries []string) (Set, error) { return parse(entries, true) }

// MustParse is Parse for entries known to be good, such as defaults; it
// panics on a bad one.
func MustParse(entries ...string) Set {
	s, err := Parse(entries)
	if err != nil {
		panic("addrset: " + err.Error())
	}
	return s
}

func parse(entries []string, hosts bool) (Set, error) {
	p := &set{}
	for i, e := range entries {
		if err := p.add(e, i, hosts); err != nil {
			return Set{}, err
		}
	}
	return Set{p}, nil
}

// add parses entry i of the list and adds it.
func (p *set) add(raw string, i int, hosts bool) error {
	e := strings.TrimSpace(raw)
	if e == "" {
		return &Error{Entry: raw, Reason: fmt.Sprintf("is empty (entry %d of the list)", i+1)}
	}
	if e == "*" {
		p.all = true
		p.entries = append(p.entries, e)
		return nil
	}
	bad := &Error{Entry: e, Reason: "is not an IP address or a CIDR"}
	if hosts {
		bad.Reason = "is not an IP address, a CIDR or a host name"
	}
	addr, bits, isPrefix := strings.Cut(e, "/")
	bracketed := len(addr) > 2 && addr[0] == '[' && addr[len(addr)-1] == ']'
	if bracketed {
		addr = addr[1 : len(addr)-1]
	}
	a, err := netip.ParseAddr(addr)
	switch {
	case err != nil && !isPrefix && !bracketed && hosts && validHost(e):
		h := strings.ToLower(e)
		p.hosts = append(p.hosts, h)
		p.entries = append(p.entries, h)
		return nil
	case err != nil:
		if isPrefix {
			bad.Reason = "is not a CIDR (want ADDRESS/BITS, like 10.0.0.0/8 or 2001:db8::/32)"
		}
		return bad
	case a.Zone() != "":
		return &Error{Entry: e, Reason: "has an IPv6 zone, which an address set cannot hold; write the address without %" + a.Zone()}
	case bracketed && !a.Is6():
		return &Error{Entry: e, Reason: "puts an IPv4 address in brackets; brackets are for IPv6 addresses"}
	}
	if !isPrefix {
		a = a.Unmap()
		if p.exact == nil {
			p.exact = map[netip.Addr]struct{}{}
		}
		p.exact[a] = struct{}{}
		p.entries = append(p.entries, a.String())
		return nil
	}
	pfx, err := netip.ParsePrefix(addr + "/" + bits)
	if err != nil {
		bad.Reason = "is not a CIDR (want ADDRESS/BITS, like 10.0.0.0/8 or 2001:db8::/32)"
		return bad
	}
	pfx = pfx.Masked()
	if pfx.Addr().Is4In6() && pfx.Bits() >= 96 {
		pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
	}
	if pfx.IsSingleIP() {
		if p.exact == nil {
			p.exact = map[netip.Addr]struct{}{}
		}
		p.exact[pfx.Addr()] = struct{}{}
	} else {
		p.nets = append(p.nets, pfx)
	}
	p.entries = append(p.entries, pfx.String())
	return nil
}

// validHost reports whether h is a host name as the package doc describes.
func validHost(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}

// Contains reports whether a is in the set. An IPv4-mapped address counts
// as its IPv4 address, and a's zone is ignored. The invalid address is in
// no set, not even *.
func (s Set) Contains(a netip.Addr) bool {
	p := s.p
	if p == nil || !a.IsValid() {
		return false
	}
	if p.all {
		return true
	}
	a = a.Unmap().WithZone("")
	if _, ok := p.exact[a]; ok {
		return true
	}
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// All reports whether the set holds every address (an entry *).
func (s Set) All() bool { return s.p != nil && s.p.all }

// Hosts returns the host names among the entries, lower-cased, in order;
// Contains knows nothing of them until they are resolved and added with
// With.
func (s Set) Hosts() []string {
	if s.p == nil {
		return nil
	}
	return slices.Clone(s.p.hosts)
}

// With returns the set plus addrs (such as the addresses its host names
// resolve to), unmapped and without zones; invalid ones are skipped. s is
// unchanged, and the new set's entries are those of s.
func (s Set) With(addrs ...netip.Addr) Set {
	n := &set{exact: map[netip.Addr]struct{}{}}
	if s.p != nil {
		n.all = s.p.all
		n.nets = s.p.nets // never modified once built
		n.hosts = s.p.hosts
		n.entries = s.p.entries
		for a := range s.p.exact {
			n.exact[a] = struct{}{}
		}
	}
	for _, a := range addrs {
		if a.IsValid() {
			n.exact[a.Unmap().WithZone("")] = struct{}{}
		}
	}
	return Set{n}
}

// Entries returns the entries in canonical form (addresses unmapped,
// prefixes masked, names lower-cased), in the order given.
func (s Set) Entries() []string {
	if s.p == nil {
		return nil
	}
	return slices.Clone(s.p.entries)
}

// String lists the entries in canonical form, comma-separated, for logs
// and messages; Parse of the entries gives the same set.
func (s Set) String() string { return strings.Join(s.Entries(), ",") }
