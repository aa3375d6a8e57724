package trust

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      []string
		want    string
		wantErr string
	}{
		{nil, "", ""},
		{[]string{"127.0.0.1", "::1"}, "127.0.0.1,::1", ""},
		{[]string{" 10.0.0.0/8 ", "", "fd00::/8"}, "10.0.0.0/8,fd00::/8", ""},
		{[]string{"10.1.2.3/8"}, "10.0.0.0/8", ""}, // masked
		{[]string{"::ffff:127.0.0.1"}, "127.0.0.1", ""},
		{[]string{"*"}, "*", ""},
		{[]string{"127.0.0.1", "localhost"}, "", `"localhost"`},
		{[]string{"10.0.0.0/33"}, "", `"10.0.0.0/33"`},
		{[]string{"fe80::1%eth0"}, "", `"fe80::1%eth0"`},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) error = %v, want one naming %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got.String() != tt.want {
			t.Errorf("Parse(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTrusts(t *testing.T) {
	p, err := Parse([]string{"127.0.0.1", "::1", "10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
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

	var zero Proxies
	if zero.Trusts(tcp("127.0.0.1:1")) || !zero.Trusts(&net.UnixAddr{}) {
		t.Errorf("zero Proxies: want only Unix peers trusted")
	}
	all, _ := Parse([]string{"*"})
	if !all.Trusts(tcp("192.0.2.7:1")) || !all.TrustsIP(netip.MustParseAddr("2001:db8::1")) || all.TrustsIP(netip.Addr{}) {
		t.Errorf("*: want every valid address trusted")
	}
}
