package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"corral/internal/config"
)

// TestNewFleet: the [guard] table's store, or --guard-store over it,
// makes the fleet's store, without connecting; none with the guard off.
func TestNewFleet(t *testing.T) {
	dir := t.TempDir()
	conf := "app = 'a:b'\n[guard]\nstore = 'redis://:pw@127.0.0.1:1/3'\n"
	if err := os.WriteFile(filepath.Join(dir, "corral.toml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string // the store's URL, "" for none
	}{
		{nil, "redis://:xxxxx@127.0.0.1:1/3"},
		{[]string{"--guard-store", "unix:///run/redis.sock?db=2"}, "unix:///run/redis.sock?db=2"},
		{[]string{"--no-guard"}, ""},
	} {
		cfg, err := config.Load(tt.args, nil, dir)
		if err != nil {
			t.Fatal(err)
		}
		s, err := newFleet(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		got := ""
		if s != nil {
			got = s.URL()
			s.Close()
		}
		if got != tt.want {
			t.Errorf("%q: store %q, want %q", tt.args, got, tt.want)
		}
	}
}
