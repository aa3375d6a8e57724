package guard

import (
	"net/http"
	"net/netip"
	"testing"

	"corral/internal/addrset"
)

func TestIdentify(t *testing.T) {
	trusted := addrset.MustParse("127.0.0.0/8", "10.0.0.0/8", "::1")
	proxy := netip.MustParseAddr("127.0.0.1")
	stranger := netip.MustParseAddr("203.0.113.9")
	cases := []struct {
		name      string
		peer      netip.Addr
		hdr       http.Header
		want      string
		scheme    string
		forwarded bool
	}{
		{"untrusted peer, no headers", stranger, nil, "203.0.113.9", "", false},
		{"untrusted peer spoofs XFF", stranger, http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.9", "", false},
		{"untrusted peer spoofs Forwarded and proto", stranger, http.Header{"Forwarded": {"for=198.51.100.1;proto=https"}, "X-Forwarded-Proto": {"https"}}, "203.0.113.9", "", false},
		{"trusted proxy, one hop", proxy, http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1", "", true},
		{"client prepends a fake hop", proxy, http.Header{"X-Forwarded-For": {"1.1.1.1, 198.51.100.1"}}, "198.51.100.1", "", true},
		{"fake hop in its own header line", proxy, http.Header{"X-Forwarded-For": {"1.1.1.1", "198.51.100.1"}}, "198.51.100.1", "", true},
		{"chain of trusted proxies", proxy, http.Header{"X-Forwarded-For": {"198.51.100.1, 10.1.2.3, 10.0.0.7"}}, "198.51.100.1", "", true},
		{"all hops trusted: the leftmost", proxy, http.Header{"X-Forwarded-For": {"10.9.9.9, 10.0.0.7"}}, "10.9.9.9", "", true},
		{"garbage hop stops the walk", proxy, http.Header{"X-Forwarded-For": {"198.51.100.1, garbage, 10.0.0.7"}}, "10.0.0.7", "", true},
		{"garbage only: the peer", proxy, http.Header{"X-Forwarded-For": {"unknown"}}, "127.0.0.1", "", false},
		{"empty elements skipped", proxy, http.Header{"X-Forwarded-For": {" , 198.51.100.1 ,, "}}, "198.51.100.1", "", true},
		{"port in XFF", proxy, http.Header{"X-Forwarded-For": {"198.51.100.1:4711"}}, "198.51.100.1", "", true},
		{"bracketed IPv6 with port", proxy, http.Header{"X-Forwarded-For": {"[2001:db8::1]:443"}}, "2001:db8::1", "", true},
		{"mapped IPv4 is IPv4", proxy, http.Header{"X-Forwarded-For": {"::ffff:198.51.100.1"}}, "198.51.100.1", "", true},
		{"Forwarded wins over XFF", proxy, http.Header{"Forwarded": {`for="[2001:db8::2]:80";proto=https`}, "X-Forwarded-For": {"198.51.100.1"}}, "2001:db8::2", "https", true},
		{"Forwarded chain with spoofed first element", proxy, http.Header{"Forwarded": {"for=1.1.1.1, for=198.51.100.1;by=10.0.0.1"}}, "198.51.100.1", "", true},
		{"Forwarded obfuscated node", proxy, http.Header{"Forwarded": {"for=_hidden"}}, "127.0.0.1", "", false},
		{"Forwarded case-insensitive parameter", proxy, http.Header{"Forwarded": {"For=198.51.100.1"}}, "198.51.100.1", "", true},
		{"proto from trusted proxy", proxy, http.Header{"X-Forwarded-Proto": {"HTTPS"}}, "127.0.0.1", "https", false},
		{"proto list: the last", proxy, http.Header{"X-Forwarded-Proto": {"https, http"}}, "127.0.0.1", "http", false},
		{"bogus proto ignored", proxy, http.Header{"X-Forwarded-Proto": {"javascript"}}, "127.0.0.1", "", false},
		{"unix socket peer is trusted", netip.Addr{}, http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1", "", true},
		{"unix socket peer without headers", netip.Addr{}, nil, "invalid IP", "", false},
		{"huge header of garbage", proxy, http.Header{"X-Forwarded-For": {string(make([]byte, 4096))}}, "127.0.0.1", "", false},
	}
	for _, c := range cases {
		got := Identify(c.peer, c.hdr, trusted)
		if got.Addr.String() != c.want || got.Scheme != c.scheme || got.Forwarded != c.forwarded {
			t.Errorf("%s: got %v %q forwarded=%v, want %s %q forwarded=%v", c.name, got.Addr, got.Scheme, got.Forwarded, c.want, c.scheme, c.forwarded)
		}
	}
}

func TestPeerAddrAndKey(t *testing.T) {
	cases := []struct{ remote, addr, key string }{
		{"192.0.2.1:5555", "192.0.2.1", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:80", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1", "192.0.2.1"},
		{"@", "invalid IP", "invalid IP"},
		{"", "invalid IP", "invalid IP"},
	}
	for _, c := range cases {
		a := PeerAddr(c.remote)
		if a.String() != c.addr || Key(a).String() != c.key {
			t.Errorf("PeerAddr(%q) = %v key %v, want %s key %s", c.remote, a, Key(a), c.addr, c.key)
		}
	}
}

func BenchmarkIdentify(b *testing.B) {
	trusted := addrset.MustParse("127.0.0.0/8")
	h := http.Header{"X-Forwarded-For": {"1.1.1.1, 198.51.100.1"}, "X-Forwarded-Proto": {"https"}}
	peer := netip.MustParseAddr("127.0.0.1")
	b.ReportAllocs()
	for b.Loop() {
		Identify(peer, h, trusted)
	}
}
