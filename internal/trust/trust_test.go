package trust

import (
	"net"
	"net/netip"
	"testing"

	"corral/internal/addrset"
)

func TestTrusts(t *testing.T) {
	p := New(addrset.MustParse("127.0.0.1", "::1", "10.0.0.0/8"))
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	tests := []struct {
		addr net.Addr
		want bool
	}{
		{tcp("127.0.0.1:5000"), true},
		{tcp("127.0.0.2:5000"), false},
		{tcp("[::1]:5000"), true},
		{tcp("[::ffff:127.0.0.1]:5000"), true},
		{tcp("10.200.1.1:80"), true},
		{tcp("11.0.0.1:80"), false},
		{tcp("[fe80::1%eth0]:80"), false},
		{&net.UnixAddr{Net: "unix"}, true},
		{(*net.UnixAddr)(nil), true},
		{nil, true},
		{&net.IPAddr{IP: net.ParseIP("10.0.0.1")}, false}, // no port: not a peer we know
	}
	for _, tt := range tests {
		if got := p.Trusts(tt.addr); got != tt.want {
			t.Errorf("Trusts(%v) = %t, want %t", tt.addr, got, tt.want)
		}
	}
	if got, want := p.String(), "127.0.0.1,::1,10.0.0.0/8"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	var zero Proxies
	if zero.Trusts(tcp("127.0.0.1:1")) || !zero.Trusts(&net.UnixAddr{}) {
		t.Errorf("zero Proxies: want only Unix peers trusted")
	}
	all := New(addrset.MustParse("*"))
	if !all.Trusts(tcp("192.0.2.7:1")) || !all.TrustsIP(netip.MustParseAddr("2001:db8::1")) || all.TrustsIP(netip.Addr{}) {
		t.Errorf("*: want every valid address trusted")
	}
}
