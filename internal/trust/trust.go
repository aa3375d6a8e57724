// Package trust decides which peers may speak for a client: a PROXY
// protocol header, and forwarded headers (Forwarded, X-Forwarded-For), are
// believed only from the proxies listed in --forwarded-allow-ips, and from
// peers on a Unix socket.
package trust

import (
	"net"
	"net/netip"

	"corral/internal/addrset"
)

// Proxies is a set of trusted peers. The zero value trusts only Unix-socket
// peers. A Proxies is immutable and safe for concurrent use.
type Proxies struct {
	set addrset.Set
}

// New trusts the peers in set (--forwarded-allow-ips, as config.Load
// parses it) and every Unix-socket peer.
func New(set addrset.Set) Proxies { return Proxies{set: set} }

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
func (p Proxies) TrustsIP(ip netip.Addr) bool { return p.set.Contains(ip) }

// String lists the trusted addresses as --forwarded-allow-ips takes them,
// for logs.
func (p Proxies) String() string { return p.set.String() }
