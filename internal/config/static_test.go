package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStatic(t *testing.T) {
	dir := t.TempDir()
	c := mustLoad(t, []string{"--static", "/static=static", "--static", "/media=/srv/media", "--static-max-age", "24h", "app:app"}, nil, dir)
	if want := []StaticMount{{"/static", filepath.Join(dir, "static")}, {"/media", "/srv/media"}}; !slices.Equal(c.Static, want) {
		t.Errorf("flags: Static = %q, want %q", c.Static, want)
	}
	if c.StaticMaxAge != 24*time.Hour {
		t.Errorf("StaticMaxAge = %v, want 24h", c.StaticMaxAge)
	}

	c = mustLoad(t, []string{"app:app"}, []string{"CORRAL_STATIC=/a=x,/b=y", "CORRAL_STATIC_MAX_AGE=0"}, dir)
	if want := []StaticMount{{"/a", filepath.Join(dir, "x")}, {"/b", filepath.Join(dir, "y")}}; !slices.Equal(c.Static, want) || c.StaticMaxAge != 0 {
		t.Errorf("env: Static = %q, StaticMaxAge = %v; want %q, 0", c.Static, c.StaticMaxAge, want)
	}

	writeFile(t, dir, "corral.toml", "app = \"app:app\"\n[static]\n\"/static\" = \"static\"\n\"/media\" = \"media\"\n")
	c = mustLoad(t, nil, nil, dir)
	if want := []StaticMount{{"/media", filepath.Join(dir, "media")}, {"/static", filepath.Join(dir, "static")}}; !slices.Equal(c.Static, want) {
		t.Errorf("TOML table: Static = %q, want %q", c.Static, want)
	}

	for _, bad := range []string{"static=static", "/=static", "/static", "/static=", "=x"} {
		if msg := loadErr(t, []string{"--static", bad, "app:app"}, nil, dir); !strings.Contains(msg, "--static") {
			t.Errorf("--static %q: error %q does not name --static", bad, msg)
		}
	}
}

// TestStaticMounts shows that Load parses --static entries in the step
// that validates them: prefixes normalised, directories made absolute
// against --chdir, and every rule of a mount's form checked there, with
// the option named in the error. Whether a directory exists is left to
// the server's start (package static).
func TestStaticMounts(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args    []string
		want    []StaticMount
		wantErr string
	}{
		{args: []string{"--static", "/static=static"}, want: []StaticMount{{"/static", filepath.Join(dir, "static")}}},
		{args: []string{"--static", "/static/=./static/", "--static", "/media=/srv/media"}, want: []StaticMount{
			{"/static", filepath.Join(dir, "static")}, {"/media", "/srv/media"}}},
		{args: []string{"--static", "/a/b=media"}, want: []StaticMount{{"/a/b", filepath.Join(dir, "media")}}},
		{args: []string{"--static", "/static=static=x"}, want: []StaticMount{{"/static", filepath.Join(dir, "static=x")}}},
		{args: []string{"--chdir", "app", "--static", "/s=assets"}, want: []StaticMount{{"/s", filepath.Join(dir, "app", "assets")}}},
		{args: []string{"--chdir", "/srv/app", "--static", "/s=assets"}, want: []StaticMount{{"/s", "/srv/app/assets"}}},
		{args: []string{"--static", "static=static"}, wantErr: "clean URL path"},
		{args: []string{"--static", "/a/../b=static"}, wantErr: "clean URL path"},
		{args: []string{"--static", "/a//b=static"}, wantErr: "clean URL path"},
		{args: []string{"--static", "/a?b=static"}, wantErr: "clean URL path"},
		{args: []string{"--static", "/=static"}, wantErr: "hide the application"},
		{args: []string{"--static", "=static"}, wantErr: "hide the application"},
		{args: []string{"--static", "/static"}, wantErr: "PREFIX=DIR"},
		{args: []string{"--static", "/static="}, wantErr: "PREFIX=DIR"},
		{args: []string{"--static", "/static=static", "--static", "/static/=media"}, wantErr: "mounted twice"},
	}
	for _, tt := range tests {
		args := append(tt.args, "app:app")
		if tt.wantErr != "" {
			if msg := loadErr(t, args, nil, dir); !strings.Contains(msg, tt.wantErr) || !strings.HasPrefix(msg, "--static: ") {
				t.Errorf("%q: error %q, want --static: and %q", tt.args, msg, tt.wantErr)
			}
			continue
		}
		if got := mustLoad(t, args, nil, dir).Static; !slices.Equal(got, tt.want) {
			t.Errorf("%q: Static = %q, want %q", tt.args, got, tt.want)
		}
	}

	writeFile(t, dir, "corral.toml", "app = \"app:app\"\n[static]\n\"/a/../b\" = \"static\"\n")
	if msg := loadErr(t, nil, nil, dir); !strings.Contains(msg, `corral.toml: key "static": "/a/../b=static": the prefix must be a clean URL path`) {
		t.Errorf("file: error %q does not name the key and the file", msg)
	}
}
