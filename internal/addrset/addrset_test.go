package addrset

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		hosts   bool   // ParseHosts rather than Parse
		want    string // String() of the set
		wantErr string // the error, in full
	}{
		{"nothing", nil, false, "", ""},
		{"addresses", []string{"127.0.0.1", "::1"}, false, "127.0.0.1,::1", ""},
		{"spaces trimmed", []string{" 10.0.0.0/8 ", "\tfd00::/8\n"}, false, "10.0.0.0/8,fd00::/8", ""},
		{"host bits masked", []string{"10.1.2.3/8", "2001:db8::1/32"}, false, "10.0.0.0/8,2001:db8::/32", ""},
		{"single-address prefix", []string{"192.0.2.1/32"}, false, "192.0.2.1/32", ""},
		{"upper-case IPv6", []string{"2001:DB8::A"}, false, "2001:db8::a", ""},
		{"4-in-6 address unmapped", []string{"::ffff:127.0.0.1"}, false, "127.0.0.1", ""},
		{"4-in-6 /104 unmapped", []string{"::ffff:10.0.0.0/104"}, false, "10.0.0.0/8", ""},
		{"4-in-6 /128 unmapped", []string{"::ffff:192.0.2.1/128"}, false, "192.0.2.1/32", ""},
		{"4-in-6 /96 is all IPv4", []string{"::ffff:0:0/96"}, false, "0.0.0.0/0", ""},
		{"4-in-6 /120 masked", []string{"::ffff:192.0.2.77/120"}, false, "192.0.2.0/24", ""},
		{"shorter than /96 stays IPv6", []string{"::ffff:1.2.3.4/64"}, false, "::/64", ""},
		{"star", []string{"*"}, false, "*", ""},
		{"star among others", []string{"10.0.0.0/8", " * "}, false, "10.0.0.0/8,*", ""},
		{"IPv6 in brackets", []string{"[::1]", "[2001:db8::]/32", "[::ffff:192.0.2.1]"}, false, "::1,2001:db8::/32,192.0.2.1", ""},
		{"host names", []string{"Office.Example.COM", "db-1.internal.", "localhost", "_srv.example.com"}, true,
			"office.example.com,db-1.internal.,localhost,_srv.example.com", ""},
		{"addresses and names", []string{"192.0.2.0/24", "office.example.com", "*"}, true, "192.0.2.0/24,office.example.com,*", ""},

		{"host name where none is taken", []string{"127.0.0.1", "localhost"}, false, "", `"localhost" is not an IP address or a CIDR`},
		{"bad host name", []string{"not a host!"}, true, "", `"not a host!" is not an IP address, a CIDR or a host name`},
		{"wildcard name", []string{"*.example.com"}, true, "", `"*.example.com" is not an IP address, a CIDR or a host name`},
		{"label starts with -", []string{"-x.example.com"}, true, "", `"-x.example.com" is not an IP address, a CIDR or a host name`},
		{"label too long", []string{strings.Repeat("a", 64) + ".com"}, true, "", `"` + strings.Repeat("a", 64) + `.com" is not an IP address, a CIDR or a host name`},
		{"numeric name is a bad address", []string{"10.0.0.256"}, true, "", `"10.0.0.256" is not an IP address, a CIDR or a host name`},
		{"leading zero octet", []string{"010.0.0.1"}, true, "", `"010.0.0.1" is not an IP address, a CIDR or a host name`},
		{"bad prefix length", []string{"10.0.0.0/33"}, false, "", `"10.0.0.0/33" is not a CIDR (want ADDRESS/BITS, like 10.0.0.0/8 or 2001:db8::/32)`},
		{"empty prefix length", []string{"10.0.0.0/"}, true, "", `"10.0.0.0/" is not a CIDR (want ADDRESS/BITS, like 10.0.0.0/8 or 2001:db8::/32)`},
		{"name with a length", []string{"example.com/24"}, true, "", `"example.com/24" is not a CIDR (want ADDRESS/BITS, like 10.0.0.0/8 or 2001:db8::/32)`},
		{"two slashes", []string{"10.0.0.0/8/8"}, false, "", `"10.0.0.0/8/8" is not a CIDR (want ADDRESS/BITS, like 10.0.0.0/8 or 2001:db8::/32)`},
		{"zone", []string{"fe80::1%eth0"}, true, "", `"fe80::1%eth0" has an IPv6 zone, which an address set cannot hold; write the address without %eth0`},
		{"zone in a prefix", []string{"fe80::%eth0/64"}, false, "", `"fe80::%eth0/64" has an IPv6 zone, which an address set cannot hold; write the address without %eth0`},
		{"zone in brackets", []string{"[fe80::1%2]"}, false, "", `"[fe80::1%2]" has an IPv6 zone, which an address set cannot hold; write the address without %2`},
		{"brackets with a port", []string{"[::1]:80"}, true, "", `"[::1]:80" is not an IP address, a CIDR or a host name`},
		{"address with a port", []string{"127.0.0.1:80"}, true, "", `"127.0.0.1:80" is not an IP address, a CIDR or a host name`},
		{"IPv4 in brackets", []string{"[127.0.0.1]"}, false, "", `"[127.0.0.1]" puts an IPv4 address in brackets; brackets are for IPv6 addresses`},
		{"prefix inside the brackets", []string{"[2001:db8::/32]"}, false, "", `"[2001:db8::/32]" is not a CIDR (want ADDRESS/BITS, like 10.0.0.0/8 or 2001:db8::/32)`},
		{"empty brackets", []string{"[]"}, false, "", `"[]" is not an IP address or a CIDR`},
		{"empty entry", []string{"10.0.0.0/8", ""}, false, "", `"" is empty (entry 2 of the list)`},
		{"blank entry", []string{"   "}, true, "", `"   " is empty (entry 1 of the list)`},
		{"the first bad entry", []string{"10.0.0.0/8", "nope", "also bad"}, false, "", `"nope" is not an IP address or a CIDR`},
	}
	for _, tt := range tests {
		parse := Parse
		if tt.hosts {
			parse = ParseHosts
		}
		got, err := parse(tt.in)
		if tt.wantErr != "" {
			var e *Error
			if err == nil || err.Error() != tt.wantErr || !errors.As(err, &e) {
				t.Errorf("%s: Parse(%q) error = %v, want %s", tt.name, tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Parse(%q): %v", tt.name, tt.in, err)
			continue
		}
		if got.String() != tt.want {
			t.Errorf("%s: Parse(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
		// The canonical entries parse to the same set.
		again, err := parse(got.Entries())
		if err != nil || again.String() != got.String() {
			t.Errorf("%s: Parse(%q) = %q, %v; want %q", tt.name, got.Entries(), again, err, got)
		}
	}
}

func TestContains(t *testing.T) {
	s, err := ParseHosts([]string{"127.0.0.1", "::1", "10.0.0.0/8", "::ffff:192.0.2.0/120", "2001:db8::/32", "fe80::1", "office.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.0.0.2", false},
		{"::1", true},
		{"::ffff:127.0.0.1", true}, // mapped address, IPv4 entry
		{"10.200.1.1", true},
		{"::ffff:10.200.1.1", true},
		{"11.0.0.1", false},
		{"192.0.2.9", true}, // IPv4 address, mapped entry
		{"::ffff:192.0.2.9", true},
		{"192.0.3.1", false},
		{"2001:db8:1::1", true},
		{"2001:db9::1", false},
		{"fe80::1%eth0", true}, // the zone of the address asked about is ignored
		{"fe80::2%eth0", false},
	}
	for _, tt := range tests {
		if got := s.Contains(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Contains(%s) = %t, want %t", tt.addr, got, tt.want)
		}
	}
	if s.Contains(netip.Addr{}) {
		t.Errorf("Contains(invalid address) = true")
	}
	if got := s.Hosts(); len(got) != 1 || got[0] != "office.example.com" {
		t.Errorf("Hosts() = %q", got)
	}

	// IPv6 prefixes do not hold IPv4 addresses; * holds every valid one.
	v6 := MustParse("::/0")
	if v6.Contains(netip.MustParseAddr("192.0.2.1")) || !v6.Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Errorf("::/0: want every IPv6 address and no IPv4 one")
	}
	all := MustParse("*")
	if !all.All() || !all.Contains(netip.MustParseAddr("192.0.2.7")) || !all.Contains(netip.MustParseAddr("2001:db8::1")) || all.Contains(netip.Addr{}) {
		t.Errorf("*: want every valid address")
	}

	var zero Set
	if zero.Contains(netip.MustParseAddr("127.0.0.1")) || zero.All() || zero.String() != "" || zero.Hosts() != nil {
		t.Errorf("the zero Set is not empty")
	}
}

func TestWith(t *testing.T) {
	s, err := ParseHosts([]string{"10.0.0.0/8", "office.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	office := netip.MustParseAddr("192.0.2.10")
	w := s.With(netip.MustParseAddr("::ffff:192.0.2.10"), netip.Addr{})
	if !w.Contains(office) || !w.Contains(netip.MustParseAddr("10.1.1.1")) {
		t.Errorf("With: the set plus the address wanted")
	}
	if s.Contains(office) {
		t.Errorf("With changed the set it was called on")
	}
	if w.String() != s.String() {
		t.Errorf("With changed the entries: %q, want %q", w, s)
	}
	if !(Set{}).With(office).Contains(office) {
		t.Errorf("the zero Set With an address does not hold it")
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Errorf("MustParse of a bad entry did not panic")
		}
	}()
	MustParse("localhost")
}
