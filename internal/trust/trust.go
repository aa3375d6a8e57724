// Package trust decides which peers may speak for a client: a PROXY
// protocol header, and forwarded headers (Forwarded, X-Forwarded-For), are
// believed only from the proxies listed in --forwarded-allow-ips.
package trust

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Proxies is a set of trusted peers. The zero value trusts only Unix-socket
// peers. A Proxies is immutable after Parse and safe for concurrent use.
type Proxies struct {
	all      bool
	prefixes []netip.Prefix
}

// Parse builds the set from entries as --forwarded-allow-ips takes them:
// IP addresses (127.0.0.1, ::1), CIDR prefixes (10.0.0.0/8, fd00::/8), or
// "*" for every peer. Entries are trimmed; empty ones are skipped. The error
// names the first entry that is none of those.
func Parse(entries []string) (Proxies, error) {
	var p Proxies
	for _, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
		case e == "*":
			p.all = true
		case strings.Contains(e, "/"):
			pfx, err := netip.ParsePrefix(e)
			if err != nil {
				return Proxies{}, fmt.Errorf("trusted proxy %q: not an IP address, CIDR prefix or *", e)
			}
			p.prefixes = append(p.prefixes, pfx.Masked())
		default:
			a, err := netip.ParseAddr(e)
			if err != nil || a.Zone() != "" {
				return Proxies{}, fmt.Errorf("trusted proxy %q: not an IP address, CIDR prefix or *", e)
			}
			a = a.Unmap()
			p.prefixes = append(p.prefixes, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return p, nil
}

// Trusts reports whether the peer at addr, as a connection's RemoteAddr
// gives it, is trusted. Unix-socket peers always are: the socket file's
// permissions decide who may connect, and that is how a local proxy such
// as HAProxy talks to corral. A nil addr is a Unix-socket peer that did not
// bind a name.
func (p Proxies) Trusts(addr net.Addr) bool {
	switch a := addr.(type) {
	case nil, *net.UnixAddr:
		return true
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ok && p.TrustsIP(ip)
	}
	ap, err := netip.ParseAddrPort(addr.String())
	return err == nil && p.TrustsIP(ap.Addr())
}

// TrustsIP reports whether a peer with this IP address is trusted. An
// IPv4-mapped IPv6 address (::ffff:127.0.0.1) counts as the IPv4 address.
func (p Proxies) TrustsIP(ip netip.Addr) bool {
	if p.all {
		return ip.IsValid()
	}
	ip = ip.Unmap().WithZone("")
	for _, pfx := range p.prefixes {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// String lists the set as Parse takes it, for logs.
func (p Proxies) String() string {
	if p.all {
		return "*"
	}
	s := make([]string, len(p.prefixes))
	for i, pfx := range p.prefixes {
		if pfx.IsSingleIP() {
			s[i] = pfx.Addr().String()
		} else {
			s[i] = pfx.String()
		}
	}
	return strings.Join(s, ",")
}
