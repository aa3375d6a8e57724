package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"corral/internal/config"
	"corral/internal/front"
	"corral/internal/listen"
)

// TestListenConfig: the binds, umask and trusted proxies reach
// listen.Config as config.Load parsed them, with nothing parsed again.
func TestListenConfig(t *testing.T) {
	dir := t.TempDir()
	err := os.WriteFile(filepath.Join(dir, "corral.toml"), []byte(`
app = "a:b"
bind = ["unix:/run/a.sock", "tcp://[::1]:8080", "systemd:web"]
umask = "007"
backlog = 64
max_connections = 5
proxy_protocol = true
forwarded_allow_ips = ["10.0.0.0/8"]
header_timeout = "3s"
route_timeout = ["/reports/*=2m"]
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(nil, nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	linger := listen.NewLinger(listen.LingerConfig{})
	lc := listenConfig(cfg, nil, nil, nil, nil, linger, nil)
	wantAddrs := []listen.Addr{{Network: "unix", Address: "/run/a.sock"}, {Network: "tcp", Address: "[::1]:8080"}, {Network: "systemd", Address: "web"}}
	if !slices.Equal(lc.Addrs, wantAddrs) {
		t.Errorf("Addrs = %v, want %v", lc.Addrs, wantAddrs)
	}
	if lc.Options.Umask != 0o007 || lc.Options.Backlog != 64 || lc.MaxConnections != 5 || !lc.ProxyProtocol || lc.HeaderTimeout != 3*time.Second {
		t.Errorf("listen.Config = %+v", lc)
	}
	if lc.PreferActivation {
		t.Errorf("PreferActivation with binds configured")
	}
	if !lc.Trusted.TrustsIP(netip.MustParseAddr("10.1.2.3")) || lc.Trusted.TrustsIP(netip.MustParseAddr("192.0.2.1")) {
		t.Errorf("trusted proxies are not --forwarded-allow-ips")
	}
	if lc.TLS != nil || lc.Linger != linger || lc.Options.Chown {
		t.Errorf("TLS %v, Linger %p, Chown %t; want plain HTTP/1 lingering with the server's Linger, no owner", lc.TLS, lc.Linger, lc.Options.Chown)
	}
	if got, want := routeTimeouts(cfg.RouteTimeouts), []front.RouteTimeout{{Pattern: "/reports/*", Timeout: 2 * time.Minute}}; !slices.Equal(got, want) {
		t.Errorf("routeTimeouts = %v, want %v", got, want)
	}

	// Without a configured bind, the sockets systemd passes come first.
	cfg, err = config.Load([]string{"a:b"}, nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if lc := listenConfig(cfg, nil, nil, nil, nil, nil, nil); !lc.PreferActivation || len(lc.Addrs) != 1 || lc.Addrs[0].Address != "127.0.0.1:8000" {
		t.Errorf("defaults: PreferActivation %t, Addrs %v", lc.PreferActivation, lc.Addrs)
	}
}
