package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestGuardTable(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "corral.toml", `
app = "a:b"
strict-routes = true
forwarded_allow_ips = ["10.0.0.0/8"]

[guard]
allow = ["192.0.2.0/24", "office.example.com"]
deny = "198.51.100.7, 203.0.113.0/24"
rate = 20
burst = 40
global_rate = 1000.5
max-inflight-per-client = 8
max_conns_per_client = 64

[guard.jails.probe]
maxretry = 5
findtime = "1m"
bantime = 3600
factor = 3
max_bantime = "48h"

[guard.jails.errors]
maxretry = 0

[[guard.routes]]
path = "/login"
rate = 0.2
burst = 5

[[guard.classes]]
name = "ops"
header = "X-Ops-Token"
secret = "s3cret"
reserve = 0.25

[[guard.classes]]
name = "office"
cidrs = ["192.0.2.0/24"]
`)
	c, err := Load(nil, nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !c.StrictRoutes || !reflect.DeepEqual(c.ForwardedAllowIPs.Entries(), []string{"10.0.0.0/8"}) {
		t.Errorf("strict %v, trusted %q", c.StrictRoutes, c.ForwardedAllowIPs)
	}
	g := c.GuardFile
	if !reflect.DeepEqual(g.Allow.Entries(), []string{"192.0.2.0/24", "office.example.com"}) ||
		!reflect.DeepEqual(g.Deny.Entries(), []string{"198.51.100.7", "203.0.113.0/24"}) {
		t.Errorf("lists: %q %q", g.Allow, g.Deny)
	}
	if g.Rate != 20 || g.Burst != 40 || g.GlobalRate != 1000.5 || g.MaxInFlightPerClient != 8 || g.MaxConnsPerClient != 64 {
		t.Errorf("limits: %+v", g)
	}
	want := Jail{MaxRetry: 5, FindTime: time.Minute, BanTime: time.Hour, Factor: 3, MaxBanTime: 48 * time.Hour}
	if g.Jails["probe"] != want || g.Jails["errors"].MaxRetry != 0 || g.Jails["auth"] != DefaultGuard().Jails["auth"] {
		t.Errorf("jails: %+v", g.Jails)
	}
	if len(g.Routes) != 1 || g.Routes[0] != (RouteLimit{Path: "/login", Rate: 0.2, Burst: 5}) {
		t.Errorf("routes: %+v", g.Routes)
	}
	if len(g.Classes) != 2 || g.Classes[0].Header != "X-Ops-Token" || g.Classes[0].Reserve != 0.25 || g.Classes[1].CIDRs.String() != "192.0.2.0/24" {
		t.Errorf("classes: %+v", g.Classes)
	}
}

func TestGuardTableErrors(t *testing.T) {
	tests := []struct{ content, want string }{
		{"[guard]\nrate = 'fast'", `corral.toml: key "guard.rate": want a number, got string "fast"`},
		{"[guard]\nalow = []", `corral.toml: key "guard.alow": unknown key (did you mean "allow"?)`},
		{"[guard]\nallow = ['not a host!']", `corral.toml: key "guard.allow": "not a host!" is not an IP address, a CIDR or a host name`},
		{"[guard.jails.probe]\nmaxretry = 'x'", `corral.toml: key "guard.jails.probe.maxretry": want an integer, got string "x"`},
		{"[guard.jails.probe]\nfactor = 0.5", `key "guard.jails.probe.factor": want a number from 1 to 1000, got 0.5`},
		{"[guard.jails.probe]\nbantime = 'soon'", `key "guard.jails.probe.bantime": want a duration`},
		{"[guard.jails.prob]\nmaxretry = 1", `key "guard.jails.prob": unknown key (did you mean "probe"?)`},
		{"[guard.jails.probe]\nfindtime = 0", `key "guard.jails.probe.maxretry": a jail that is on needs a positive findtime and bantime`},
		{"[[guard.routes]]\npath = 'login'\nrate = 1", `key "guard.routes[0].path": want a URL path starting with /, got "login"`},
		{"[[guard.routes]]\npath = '/login'", `key "guard.routes[0].rate": want a positive number`},
		{"[[guard.classes]]\nname = 'x'\nheader = 'X-T'", `key "guard.classes[0].secret": a class chosen by header needs a secret`},
		{"[[guard.classes]]\nname = 'x'\ncidrs = ['nope']", `key "guard.classes[0].cidrs": "nope" is not an IP address or a CIDR`},
		{"[[guard.classes]]\nname = 'x'\ncidrs = ['10.0.0.0/8']\nreserve = 2", `key "guard.classes[0].reserve": want a number from 0 to 1, got 2`},
		{"guard = 3", `corral.toml: key "guard": want a table, got integer 3`},
		{"forwarded_allow_ips = ['somewhere']", `"somewhere"`},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		writeFile(t, dir, "corral.toml", tt.content)
		got := loadErr(t, []string{"a:b"}, nil, dir)
		if !strings.Contains(got, tt.want) {
			t.Errorf("%q: error %q, want it to contain %q", tt.content, got, tt.want)
		}
	}
}

func TestGuardInPyproject(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pyproject.toml", "[tool.corral]\napp = 'a:b'\n[tool.corral.guard.jails.auth]\nmaxretry = 'x'\n")
	got := loadErr(t, nil, nil, dir)
	if want := `pyproject.toml [tool.corral]: key "guard.jails.auth.maxretry": want an integer`; !strings.Contains(got, want) {
		t.Errorf("error %q, want %q", got, want)
	}
}

// TestAddressSets shows that every list of addresses is parsed by one set
// of rules (package addrset) in one step with the rest of Load, and that
// a bad entry is named with the key and the place it was set.
func TestAddressSets(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "corral.toml", `
app = "a:b"
forwarded_allow_ips = [" ::ffff:10.0.0.0/104 ", "[::1]"]

[guard]
allow = ["::ffff:192.0.2.1", "Office.Example.com"]
deny = "*"

[[guard.classes]]
name = "everyone"
cidrs = ["*"]
`)
	c, err := Load(nil, nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, got, want string }{
		{"forwarded_allow_ips", c.ForwardedAllowIPs.String(), "10.0.0.0/8,::1"},
		{"guard.allow", c.GuardFile.Allow.String(), "192.0.2.1,office.example.com"},
		{"guard.deny", c.GuardFile.Deny.String(), "*"},
		{"guard.classes[0].cidrs", c.GuardFile.Classes[0].CIDRs.String(), "*"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}

	errs := []struct {
		args, environ []string
		content       string
		want          string
	}{
		{nil, nil, "forwarded_allow_ips = ['fe80::1%eth0']", `corral.toml: key "forwarded_allow_ips": trusted proxy "fe80::1%eth0" has an IPv6 zone`},
		{nil, nil, "forwarded_allow_ips = ['10.0.0.0/8', ' ']", `corral.toml: key "forwarded_allow_ips": trusted proxy " " is empty (entry 2 of the list)`},
		{nil, []string{"CORRAL_FORWARDED_ALLOW_IPS=10.0.0.0/33"}, "", `CORRAL_FORWARDED_ALLOW_IPS: trusted proxy "10.0.0.0/33" is not a CIDR`},
		{[]string{"--forwarded-allow-ips", "[127.0.0.1]"}, nil, "", `--forwarded-allow-ips: trusted proxy "[127.0.0.1]" puts an IPv4 address in brackets`},
		{nil, nil, "[guard]\ndeny = ['10.0.0.1', '']", `corral.toml: key "guard.deny": "" is empty (entry 2 of the list)`},
		{nil, nil, "[guard]\nallow = ['fe80::1%eth0']", `corral.toml: key "guard.allow": "fe80::1%eth0" has an IPv6 zone`},
		{nil, nil, "[[guard.classes]]\nname = 'x'\ncidrs = ['office.example.com']", `corral.toml: key "guard.classes[0].cidrs": "office.example.com" is not an IP address or a CIDR`},
		{nil, nil, "[[guard.classes]]\nname = 'x'\ncidrs = []", `corral.toml: key "guard.classes[0].cidrs": a class needs cidrs or a header`},
	}
	for _, tt := range errs {
		dir := t.TempDir()
		if tt.content != "" {
			writeFile(t, dir, "corral.toml", tt.content)
		}
		got := loadErr(t, append(tt.args, "a:b"), tt.environ, dir)
		if !strings.Contains(got, tt.want) {
			t.Errorf("%q %q %q: error %q, want it to contain %q", tt.args, tt.environ, tt.content, got, tt.want)
		}
	}
}

func TestGuardStore(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "corral.toml", "app = 'a:b'\n[guard]\nstore = 'redis://:pw@10.0.0.5:6379/2'\nstore_timeout = '20ms'\nstore-prefix = 'shop'\n")
	c, err := Load(nil, nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.GuardStore != "redis://:pw@10.0.0.5:6379/2" || c.GuardFile.StoreTimeout != 20*time.Millisecond || c.GuardFile.StorePrefix != "shop" {
		t.Errorf("store %q, timeout %v, prefix %q", c.GuardStore, c.GuardFile.StoreTimeout, c.GuardFile.StorePrefix)
	}
	// The flag and the environment win over the file.
	c, err = Load([]string{"--guard-store", "unix:///run/redis/redis.sock?db=1"}, nil, dir)
	if err != nil || c.GuardStore != "unix:///run/redis/redis.sock?db=1" {
		t.Errorf("flag: %q %v", c.GuardStore, err)
	}
	c, err = Load(nil, []string{"CORRAL_GUARD_STORE=rediss://user:pw@redis.example:6380"}, dir)
	if err != nil || c.GuardStore != "rediss://user:pw@redis.example:6380" {
		t.Errorf("env: %q %v", c.GuardStore, err)
	}
	// None by default; the defaults of the other keys.
	c = mustLoad(t, []string{"a:b"}, nil, t.TempDir())
	if c.GuardStore != "" || c.GuardFile.StoreTimeout != 5*time.Millisecond || c.GuardFile.StorePrefix != "corral" {
		t.Errorf("defaults: %q %v %q", c.GuardStore, c.GuardFile.StoreTimeout, c.GuardFile.StorePrefix)
	}
}

func TestGuardStoreErrors(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		content string
		want    string
	}{
		{[]string{"--guard-store", "http://x:1"}, "", `--guard-store: want redis://[USER:PASSWORD@]HOST:PORT/DB, rediss://... or unix:///PATH: the scheme is "http"`},
		{[]string{"--guard-store", "redis://:secret@:6379"}, "", `--guard-store: want redis://`},
		{[]string{"--guard-store", "redis://h:99999"}, "", `bad port "99999"`},
		{[]string{"--guard-store", "redis://h:6379/zero"}, "", `the database "zero" is not a number`},
		{[]string{"--guard-store", "unix://"}, "", `the URL has no socket path`},
		{[]string{"--guard-store", "redis://h:6379/0?ca=/etc/ca.pem"}, "", `--guard-store: ca, cert and key are for a TLS store: rediss://`},
		{nil, "[guard]\nstore = 'rediss://h/0?cert=/c.pem'", `key "guard.store": a client certificate needs both cert and key`},
		{nil, "[guard]\nstore = 'redis//h'", `corral.toml: key "guard.store": want redis://`},
		{nil, "[guard]\nstore = 6379", `key "guard.store": want a string, got integer 6379`},
		{nil, "[guard]\nstore_timeout = 0", `key "guard.store_timeout": want a duration from 1ms to 10s, got 0s`},
		{nil, "[guard]\nstore_prefix = 'a b'", `key "guard.store_prefix": want a non-empty prefix without spaces or braces`},
		{nil, "[guard]\nstores = 'redis://h'", `key "guard.stores": unknown key (did you mean "store"?)`},
	} {
		dir := t.TempDir()
		if tt.content != "" {
			writeFile(t, dir, "corral.toml", tt.content)
		}
		got := loadErr(t, append(tt.args, "a:b"), nil, dir)
		if !strings.Contains(got, tt.want) {
			t.Errorf("%q %q: error %q, want it to contain %q", tt.args, tt.content, got, tt.want)
		}
		if strings.Contains(got, "secret") {
			t.Errorf("the error shows the password: %s", got)
		}
	}
}
