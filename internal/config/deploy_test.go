package config

import (
	"os"
	"slices"
	"strings"
	"testing"
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
		got, err := ParseUmask(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseUmask(%q) = %03o, %v; want %03o, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestDeployOptions(t *testing.T) {
	dir := t.TempDir()
	c := mustLoad(t, []string{"--reuse-port", "--umask", "007", "--proxy-protocol",
		"--forwarded-allow-ips", "10.0.0.0/8,::1", "--forwarded-allow-ips", "*",
		"--certfile", "c.pem", "--keyfile", "k.pem", "--ca-certs", "ca.pem", "--cert-reqs", "REQUIRED",
		"-u", "nobody", "-g", "nogroup", "--allow-root", "app:app"}, nil, dir)
	if !c.ReusePort || c.Umask != "007" || !c.ProxyProtocol || c.CertFile != "c.pem" || c.KeyFile != "k.pem" ||
		c.CACerts != "ca.pem" || c.CertReqs != "required" || c.User != "nobody" || c.Group != "nogroup" || !c.AllowRoot {
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
