package config

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseUmask(t *testing.T) {
	tests := []struct {
		in      string
		want    os.FileMode
		wantErr bool
	}{
		{"0", 0, false},
		{"007", 0o007, false},
		{"0o22", 0o022, false},
		{"0O77", 0o077, false},
		{"18", 0o22, false}, // decimal, as gunicorn reads it
		{"0777", 0o777, false},
		{"01000", 0, true},
		{"08", 0, true},
		{"-1", 0, true},
		{"0o", 0, true},
		{"", 0, true},
		{"rwx", 0, true},
	}
	for _, tt := range tests {
		got, err := parseUmask(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseUmask(%q) = %03o, %v; want %03o, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestDeployOptions(t *testing.T) {
	dir := t.TempDir()
	c := mustLoad(t, []string{"--reuse-port", "--umask", "007", "--proxy-protocol",
		"--forwarded-allow-ips", "10.0.0.0/8,::1", "--forwarded-allow-ips", "*",
		"--certfile", "c.pem", "--keyfile", "k.pem", "--ca-certs", "ca.pem", "--cert-reqs", "REQUIRED",
		"-u", "nobody", "-g", "nogroup", "--allow-root", "app:app"}, nil, dir)
	if !c.ReusePort || c.Umask != 0o007 || !c.ProxyProtocol || c.CertFile != "c.pem" || c.KeyFile != "k.pem" ||
		c.CACerts != "ca.pem" || c.CertReqs != tls.RequireAndVerifyClientCert || c.User != "nobody" || c.Group != "nogroup" || !c.AllowRoot {
		t.Errorf("options not all set: %+v", c)
	}
	if want := []string{"10.0.0.0/8", "::1", "*"}; !slices.Equal(c.ForwardedAllowIPs.Entries(), want) {
		t.Errorf("forwarded-allow-ips = %q, want %q", c.ForwardedAllowIPs, want)
	}
	if c.BindSet() {
		t.Errorf("BindSet with no bind configured")
	}
	if c := mustLoad(t, []string{"--h2c", "app:app"}, nil, dir); !c.H2C {
		t.Errorf("--h2c not set")
	}
	for _, args := range [][]string{{"-b", "127.0.0.1:8000"}, {"--bind=systemd:web"}} {
		if c := mustLoad(t, append(args, "app:app"), nil, dir); !c.BindSet() {
			t.Errorf("%q: BindSet false", args)
		}
	}
	if c := mustLoad(t, []string{"app:app"}, []string{"CORRAL_BIND=unix:/x.sock"}, dir); !c.BindSet() {
		t.Errorf("CORRAL_BIND: BindSet false")
	}

	errs := []struct {
		args []string
		want string
	}{
		{[]string{"--umask", "999"}, "--umask: umask \"999\""},
		{[]string{"--forwarded-allow-ips", "127.0.0.1,example.com"}, `--forwarded-allow-ips: trusted proxy "example.com"`},
		{[]string{"--keyfile", "k.pem"}, "--keyfile: needs --certfile"},
		{[]string{"--ca-certs", "ca.pem"}, "--ca-certs: needs --certfile"},
		{[]string{"--cert-reqs", "optional"}, "--cert-reqs: needs --certfile and --ca-certs"},
		{[]string{"--certfile", "c.pem", "--cert-reqs", "required"}, "--cert-reqs: needs --ca-certs"},
		{[]string{"--certfile", "c.pem", "--h2c"}, "--h2c: has no effect with --certfile"},
		{[]string{"--cert-reqs", "2"}, "want one of none, optional, required"},
		{[]string{"--user", "a:b"}, "not a user or group name"},
	}
	for _, tt := range errs {
		if got := loadErr(t, append(tt.args, "app:app"), nil, dir); !strings.Contains(got, tt.want) {
			t.Errorf("%q: error %q, want one containing %q", tt.args, got, tt.want)
		}
	}
}

// TestParsedOptions shows that Load returns binds, the umask, route
// timeouts and client-certificate requirements parsed, in the step that
// validates them, and that a bad value is named with the key and the
// place it was set.
func TestParsedOptions(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "corral.toml", `
app = "a:b"
bind = ["unix:/run/a.sock", "tcp://[::1]:80", "fd://3", "systemd:web"]
umask = "0o27"
route_timeout = ["/reports/*=120s", "*.csv=2m"]
`)
	c := mustLoad(t, nil, nil, dir)
	wantBinds := []Bind{
		{Network: "unix", Address: "/run/a.sock"},
		{Network: "tcp", Address: "[::1]:80"},
		{Network: "fd", Address: "3", FD: 3},
		{Network: "systemd", Address: "web"},
	}
	if !slices.Equal(c.Bind, wantBinds) {
		t.Errorf("Bind = %+v, want %+v", c.Bind, wantBinds)
	}
	var texts []string
	for _, b := range c.Bind {
		texts = append(texts, b.String())
	}
	if want := []string{"unix:/run/a.sock", "[::1]:80", "fd://3", "systemd:web"}; !slices.Equal(texts, want) {
		t.Errorf("Bind strings = %q, want %q", texts, want)
	}
	if c.Umask != 0o027 {
		t.Errorf("Umask = %03o, want 027", c.Umask)
	}
	wantRT := []RouteTimeout{{"/reports/*", 120 * time.Second}, {"*.csv", 2 * time.Minute}}
	if !slices.Equal(c.RouteTimeouts, wantRT) {
		t.Errorf("RouteTimeouts = %v, want %v", c.RouteTimeouts, wantRT)
	}
	for _, tt := range []struct {
		in   string
		want tls.ClientAuthType
	}{{"none", tls.NoClientCert}, {"Optional", tls.VerifyClientCertIfGiven}, {"required", tls.RequireAndVerifyClientCert}} {
		c := mustLoad(t, []string{"--certfile", "c.pem", "--ca-certs", "ca.pem", "--cert-reqs", tt.in, "a:b"}, nil, t.TempDir())
		if c.CertReqs != tt.want {
			t.Errorf("--cert-reqs %s = %v, want %v", tt.in, c.CertReqs, tt.want)
		}
	}

	errs := []struct {
		args, environ []string
		content       string
		want          string
	}{
		{nil, nil, "bind = ['127.0.0.1:80', 'localhost']", `corral.toml: key "bind": bind "localhost": missing port`},
		{nil, nil, "bind = []", `corral.toml: key "bind": no address to listen on`},
		{nil, []string{"CORRAL_BIND=unix:"}, "", `CORRAL_BIND: bind "unix:": want unix:PATH`},
		{[]string{"-b", "fd://x"}, nil, "", `--bind: bind "fd://x": want fd://N`},
		{nil, nil, "umask = '0o1000'", `corral.toml: key "umask": umask "0o1000": want permission bits`},
		{nil, []string{"CORRAL_UMASK=rwx"}, "", `CORRAL_UMASK: umask "rwx"`},
		{nil, nil, "route_timeout = ['/a=1s', 'reports=5s']", `corral.toml: key "route_timeout": "reports=5s": PATTERN must start with / or *`},
		{[]string{"--route-timeout", "/a"}, nil, "", `--route-timeout: want PATTERN=DURATION`},
		{[]string{"--route-timeout", "/a=-5s"}, nil, "", `--route-timeout: "/a=-5s": must not be negative`},
		{nil, nil, "route_timeout = ['/slow=-1']", `corral.toml: key "route_timeout": "/slow=-1": must not be negative`},
		{nil, []string{"CORRAL_ROUTE_TIMEOUT=/a=soon"}, "", `CORRAL_ROUTE_TIMEOUT: "/a=soon": want a duration`},
		{nil, nil, "cert-reqs = 'sometimes'", `corral.toml: key "cert-reqs": want one of none, optional, required, got "sometimes"`},
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

func TestStateDirectory(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	unset := "/var/lib/corral"
	if os.Geteuid() != 0 {
		unset = "/xdg/corral"
	}
	tests := []struct {
		stateDir string
		getenv   func(string) string
		want     string
	}{
		{"/srv/state", env("STATE_DIRECTORY", "/var/lib/x"), "/srv/state"},
		{"", env("STATE_DIRECTORY", "/var/lib/a:/var/lib/b", "XDG_STATE_HOME", "/xdg"), "/var/lib/a"},
		{"", env("XDG_STATE_HOME", "/xdg"), unset},
	}
	for _, tt := range tests {
		c := &Config{StateDir: tt.stateDir}
		if got := c.StateDirectory(tt.getenv); got != tt.want {
			t.Errorf("StateDir %q: StateDirectory = %q, want %q", tt.stateDir, got, tt.want)
		}
	}
}

func TestAppDir(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, dir},
		{[]string{"--chdir", "src"}, filepath.Join(dir, "src")},
		{[]string{"--chdir", "/srv/app/"}, "/srv/app"},
	} {
		if got := mustLoad(t, append(tt.args, "a:b"), nil, dir).AppDir(); got != tt.want {
			t.Errorf("%q: AppDir = %q, want %q", tt.args, got, tt.want)
		}
	}
}
