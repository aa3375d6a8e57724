package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"corral/internal/config"
)

// TestGuardConfig: the address sets reach the guard as config.Load parsed
// them, with nothing parsed again.
func TestGuardConfig(t *testing.T) {
	dir := t.TempDir()
	err := os.WriteFile(filepath.Join(dir, "corral.toml"), []byte(`
app = "a:b"
forwarded_allow_ips = ["::ffff:10.0.0.0/104"]

[guard]
allow = ["192.0.2.0/28"]
deny = ["198.51.100.0/24"]

[[guard.classes]]
name = "office"
cidrs = ["::ffff:203.0.113.0/120"]

[[guard.classes]]
name = "everyone"
cidrs = "*"
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(nil, nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	gc := guardConfig(cfg, nil, nil)
	addr := netip.MustParseAddr
	for _, tt := range []struct {
		what string
		got  bool
	}{
		{"trusted proxy 10.1.2.3", gc.Trusted.Contains(addr("10.1.2.3"))},
		{"allow-listed 192.0.2.1", gc.Allow.Contains(addr("::ffff:192.0.2.1"))},
		{"deny-listed 198.51.100.7", gc.Deny.Contains(addr("198.51.100.7"))},
		{"office 203.0.113.9", len(gc.Classes) == 2 && gc.Classes[0].Nets.Contains(addr("203.0.113.9"))},
		{"everyone 2001:db8::1", len(gc.Classes) == 2 && gc.Classes[1].Nets.Contains(addr("2001:db8::1"))},
	} {
		if !tt.got {
			t.Errorf("%s: not in its set", tt.what)
		}
	}
}
