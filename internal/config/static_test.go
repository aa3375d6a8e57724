package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStatic(t *testing.T) {
	dir := t.TempDir()
	c := mustLoad(t, []string{"--static", "/static=static", "--static", "/media=/srv/media", "--static-max-age", "24h", "app:app"}, nil, dir)
	if want := []string{"/static=static", "/media=/srv/media"}; !slices.Equal(c.Static, want) {
		t.Errorf("flags: Static = %q, want %q", c.Static, want)
	}
	if c.StaticMaxAge != 24*time.Hour {
		t.Errorf("StaticMaxAge = %v, want 24h", c.StaticMaxAge)
	}

	c = mustLoad(t, []string{"app:app"}, []string{"CORRAL_STATIC=/a=x,/b=y", "CORRAL_STATIC_MAX_AGE=0"}, dir)
	if want := []string{"/a=x", "/b=y"}; !slices.Equal(c.Static, want) || c.StaticMaxAge != 0 {
		t.Errorf("env: Static = %q, StaticMaxAge = %v; want %q, 0", c.Static, c.StaticMaxAge, want)
	}

	writeFile(t, dir, "corral.toml", "app = \"app:app\"\n[static]\n\"/static\" = \"static\"\n\"/media\" = \"media\"\n")
	c = mustLoad(t, nil, nil, dir)
	if want := []string{"/media=media", "/static=static"}; !slices.Equal(c.Static, want) {
		t.Errorf("TOML table: Static = %q, want %q", c.Static, want)
	}

	for _, bad := range []string{"static=static", "/=static", "/static", "/static=", "=x"} {
		if msg := loadErr(t, []string{"--static", bad, "app:app"}, nil, dir); !strings.Contains(msg, "--static") {
			t.Errorf("--static %q: error %q does not name --static", bad, msg)
		}
	}
}
