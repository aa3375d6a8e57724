package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"corral/internal/config"
	"corral/internal/guard"
	"corral/internal/journal"
)

// newGuard starts a guard over the SQLite ban store at path, through the
// adapter serve uses.
func newGuard(t *testing.T, path string) (*guard.Guard, *journal.Bans) {
	t.Helper()
	db, err := journal.OpenBans(path, time.Now().Add(-48*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.New(guard.Config{Enabled: true, Jails: guard.DefaultJails()})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background(), banStore{db}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(); db.Close() })
	return g, db
}

// TestStorePersistence: bans survive a restart in the SQLite store.
func TestStorePersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans.db")
	g, db := newGuard(t, path)
	if _, err := g.Ban("192.0.2.20", time.Hour, "manual", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Ban("2001:db8:1:2::99", 0, "manual", "forever"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Ban("192.0.2.21", time.Hour, "manual", "lifted"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Unban("192.0.2.21", "test"); err != nil {
		t.Fatal(err)
	}
	// As serve stops: the guard flushes the store, then the store closes.
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	g2, _ := newGuard(t, path)
	got := g2.Bans()
	if len(got) != 2 || got[0].Addr != "192.0.2.20" || got[1].Addr != "2001:db8:1:2::/64" || got[1].Until != nil {
		t.Fatalf("restored bans = %+v", got)
	}
	h := g2.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "[2001:db8:1:2:ffff::1]:1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 403 {
		t.Errorf("another address of the banned /64: %d", w.Code)
	}
}

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
