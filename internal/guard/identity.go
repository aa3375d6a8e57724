package guard

import (
	"net/http"
	"net/netip"
	"strings"

	"corral/internal/addrset"
)

// Identity is who a request comes from, as far as corral can tell.
type Identity struct {
	// Addr is the client address: the TCP peer (after PROXY protocol), or
	// the address a trusted proxy forwarded. Invalid for a Unix-socket
	// peer that forwarded nothing.
	Addr netip.Addr
	// Scheme is "https" or "http" when a trusted proxy said so with
	// X-Forwarded-Proto or Forwarded proto=, else "".
	Scheme string
	// Forwarded reports that Addr came from a forwarding header.
	Forwarded bool
}

// Identify works out the client of a request that arrived from peer (the
// connection's remote address; invalid for a Unix socket). Forwarding
// headers count only when the peer is in trusted (--forwarded-allow-ips)
// or on a Unix socket (only local processes with access to the socket file
// can connect). Of the
// forwarded hops it takes the rightmost one that is not itself a trusted
// proxy, walking from the right: hops left of an untrusted one may be made
// up by the client. Forwarded (RFC 7239) wins over X-Forwarded-For when a
// request has both. A hop that does not parse as an address stops the
// walk at the last good address, so garbage never frames anyone.
func Identify(peer netip.Addr, h http.Header, trusted addrset.Set) Identity {
	id := Identity{Addr: peer.Unmap()}
	if peer.IsValid() && !trusted.Contains(id.Addr) {
		return id
	}
	if vs := h["Forwarded"]; len(vs) > 0 {
		if a, ok := walkForwarded(vs, trusted); ok {
			id.Addr, id.Forwarded = a, a != id.Addr
		}
		id.Scheme = forwardedProto(vs)
	} else if vs := h["X-Forwarded-For"]; len(vs) > 0 {
		if a, ok := walkList(vs, trusted, parseXFF); ok {
			id.Addr, id.Forwarded = a, a != id.Addr
		}
	}
	if id.Scheme == "" {
		if vs := h["X-Forwarded-Proto"]; len(vs) > 0 {
			id.Scheme = scheme(lastElement(vs[len(vs)-1]))
		}
	}
	return id
}

// walkList walks comma-separated hops from the right across every header
// line (later lines are later hops). parse turns one element into an
// address. It returns the first untrusted address, or the leftmost
// address if every hop is trusted, or the last good one before a hop that
// did not parse.
func walkList(vs []string, trusted addrset.Set, parse func(string) (netip.Addr, bool)) (netip.Addr, bool) {
	var last netip.Addr
	found := false
	for i := len(vs) - 1; i >= 0; i-- {
		s := vs[i]
		for len(s) > 0 {
			var elem string
			if j := strings.LastIndexByte(s, ','); j >= 0 {
				elem, s = s[j+1:], s[:j]
			} else {
				elem, s = s, ""
			}
			elem = strings.TrimSpace(elem)
			if elem == "" {
				continue
			}
			a, ok := parse(elem)
			if !ok {
				return last, found
			}
			last, found = a, true
			if !trusted.Contains(a) {
				return a, true
			}
		}
	}
	return last, found
}

// parseXFF parses one X-Forwarded-For element: an address, possibly with
// a port ("1.2.3.4:5678", "[::1]:80"), as some proxies write.
func parseXFF(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// walkForwarded walks the for= parameters of Forwarded elements.
func walkForwarded(vs []string, trusted addrset.Set) (netip.Addr, bool) {
	return walkList(vs, trusted, func(elem string) (netip.Addr, bool) {
		v, ok := param(elem, "for")
		if !ok {
			return netip.Addr{}, false
		}
		return parseXFF(v)
	})
}

// forwardedProto is the proto= of the last Forwarded element that has one.
func forwardedProto(vs []string) string {
	for i := len(vs) - 1; i >= 0; i-- {
		s := vs[i]
		for len(s) > 0 {
			var elem string
			if j := strings.LastIndexByte(s, ','); j >= 0 {
				elem, s = s[j+1:], s[:j]
			} else {
				elem, s = s, ""
			}
			if v, ok := param(elem, "proto"); ok {
				return scheme(v)
			}
		}
	}
	return ""
}

// param finds name=value among the ;-separated pairs of one Forwarded
// element, unquoting a quoted value.
func param(elem, name string) (string, bool) {
	for len(elem) > 0 {
		var pair string
		if j := strings.IndexByte(elem, ';'); j >= 0 {
			pair, elem = elem[:j], elem[j+1:]
		} else {
			pair, elem = elem, ""
		}
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), name) {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v, true
	}
	return "", false
}

// lastElement is the last comma-separated element of s, trimmed.
func lastElement(s string) string {
	if j := strings.LastIndexByte(s, ','); j >= 0 {
		s = s[j+1:]
	}
	return strings.TrimSpace(s)
}

// scheme accepts http and https in any case, and nothing else.
func scheme(s string) string {
	switch {
	case strings.EqualFold(s, "https"):
		return "https"
	case strings.EqualFold(s, "http"):
		return "http"
	}
	return ""
}

// PeerAddr parses a net/http RemoteAddr ("1.2.3.4:5678", "[::1]:80"); a
// Unix-socket peer ("@", "") gives an invalid address.
func PeerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// Key is the address that per-client state is kept under: the address
// itself for IPv4, its /64 for IPv6 (one host usually owns a whole /64, so
// per-address state would let it walk around every limit).
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
