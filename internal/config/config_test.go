package config

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"corral/internal/addrset"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustLoad runs Load and fails the test on error.
func mustLoad(t *testing.T, args, environ []string, cwd string) *Config {
	t.Helper()
	c, err := Load(args, environ, cwd)
	if err != nil {
		t.Fatalf("Load(%q, %q): %v", args, environ, err)
	}
	return c
}

// loadErr runs Load, expects an error and returns its text.
func loadErr(t *testing.T, args, environ []string, cwd string) string {
	t.Helper()
	c, err := Load(args, environ, cwd)
	if err == nil {
		t.Fatalf("Load(%q, %q) = %+v, want an error", args, environ, c)
	}
	if c != nil {
		t.Errorf("Load returned a Config with an error")
	}
	return err.Error()
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	got := mustLoad(t, []string{"app:application"}, nil, dir)
	want := &Config{
		App:                   "app:application",
		Workers:               runtime.NumCPU(),
		Threads:               1,
		WorkerClass:           "sync",
		Interface:             "auto",
		WorkerConnections:     1000,
		Lifespan:              "auto",
		WSMaxSize:             16 << 20,
		WSPingInterval:        20 * time.Second,
		WSPingTimeout:         20 * time.Second,
		WSPerMessageDeflate:   true,
		BootTimeout:           60 * time.Second,
		StuckAfter:            5 * time.Second,
		ReloadExtra:           []string{},
		RouteTimeouts:         []RouteTimeout{},
		Bind:                  []Bind{{Network: "tcp", Address: "127.0.0.1:8000"}},
		PythonPath:            []string{},
		Env:                   []string{},
		Timeout:               30 * time.Second,
		GracefulTimeout:       30 * time.Second,
		KeepAlive:             60 * time.Second,
		Backlog:               2048,
		MaxQueue:              1024,
		QueueTimeout:          10 * time.Second,
		HeaderTimeout:         10 * time.Second,
		BodyTimeout:           60 * time.Second,
		SendTimeout:           60 * time.Second,
		MaxConnections:        10000,
		Umask:                 0,
		ForwardedAllowIPs:     addrset.MustParse("127.0.0.1", "::1"),
		CertReqs:              tls.NoClientCert,
		HTTP1:                 "corral",
		AccessLogFile:         "",
		AccessLogFormat:       "combined",
		RequestIDHeader:       "X-Request-Id",
		JournalMaxAge:         168 * time.Hour,
		JournalMaxSize:        1 << 30,
		JournalFlushInterval:  time.Second,
		requestIDHeader:       "X-Request-ID",
		ErrorLogFile:          "-",
		LogLevel:              "info",
		LimitRequestLine:      4094,
		LimitRequestFields:    100,
		LimitRequestFieldSize: 8190,
		MaxBodySize:           100 << 20,
		Static:                []StaticMount{},
		StaticMaxAge:          time.Hour,
		GuardFile:             DefaultGuard(),
		cwd:                   dir,
		forwardedAllowIPs:     []string{"127.0.0.1", "::1"},
		bind:                  []string{"127.0.0.1:8000"},
		umask:                 "0",
		certReqs:              "none",
		routeTimeouts:         []string{},
		static:                []string{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30", 30 * time.Second, false},
		{"0.5", 500 * time.Millisecond, false},
		{" 2 ", 2 * time.Second, false},
		{"0", 0, false},
		{"500ms", 500 * time.Millisecond, false},
		{"2m", 2 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"-1", -time.Second, false}, // parses; Load refuses negatives
		{"", 0, true},
		{"abc", 0, true},
		{"1e3", 0, true},
		{"inf", 0, true},
		{"NaN", 0, true},
		{"0x10", 0, true},
		{"10 s", 0, true},
		{"99999999999999999", 0, true},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"1024", 1024, false},
		{"100B", 100, false},
		{"64K", 64 << 10, false},
		{"64k", 64 << 10, false},
		{"64KiB", 64 << 10, false},
		{"100M", 100 << 20, false},
		{"100m", 100 << 20, false},
		{"100 MiB", 100 << 20, false},
		{"1G", 1 << 30, false},
		{"2gib", 2 << 30, false},
		{" 5 ", 5, false},
		{"", 0, true},
		{"M", 0, true},
		{"1.5M", 0, true},
		{"-1", 0, true},
		{"10MB", 0, true},
		{"10T", 0, true},
		{"9999999999999999999", 0, true},
		{"9999999999G", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSize(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseBind(t *testing.T) {
	tests := []struct {
		in      string
		want    Bind
		wantErr string // substring; "" = no error
	}{
		{"127.0.0.1:8000", Bind{Network: "tcp", Address: "127.0.0.1:8000"}, ""},
		{"0.0.0.0:80", Bind{Network: "tcp", Address: "0.0.0.0:80"}, ""},
		{":8000", Bind{Network: "tcp", Address: ":8000"}, ""},
		{"[::]:8000", Bind{Network: "tcp", Address: "[::]:8000"}, ""},
		{"[::1]:0", Bind{Network: "tcp", Address: "[::1]:0"}, ""},
		{"[fe80::1%eth0]:80", Bind{Network: "tcp", Address: "[fe80::1%eth0]:80"}, ""},
		{"localhost:8000", Bind{Network: "tcp", Address: "localhost:8000"}, ""},
		{"tcp://example.com:443", Bind{Network: "tcp", Address: "example.com:443"}, ""},
		{"unix:/run/corral.sock", Bind{Network: "unix", Address: "/run/corral.sock"}, ""},
		{"unix://run/x.sock", Bind{Network: "unix", Address: "run/x.sock"}, ""},
		{"unix:rel.sock", Bind{Network: "unix", Address: "rel.sock"}, ""},
		{"fd://3", Bind{Network: "fd", Address: "3", FD: 3}, ""},
		{"systemd:web", Bind{Network: "systemd", Address: "web"}, ""},
		{"localhost", Bind{}, "missing port"},
		{"127.0.0.1:", Bind{}, "not a number"},
		{"127.0.0.1:http", Bind{}, "not a number"},
		{"127.0.0.1:65536", Bind{}, "not a number"},
		{"127.0.0.1:-1", Bind{}, "not a number"},
		{"::1:8000", Bind{}, "want HOST:PORT"},
		{"bad host:80", Bind{}, "not an IP address or host name"},
		{"unix:", Bind{}, "socket path"},
		{"fd://", Bind{}, "descriptor number"},
		{"fd://-1", Bind{}, "descriptor number"},
		{"fd://x", Bind{}, "descriptor number"},
		{"systemd:", Bind{}, "FileDescriptorName"},
		{"systemd:a b", Bind{}, "FileDescriptorName"},
		{"", Bind{}, "missing port"},
	}
	for _, tt := range tests {
		got, err := parseBind(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("parseBind(%q): %v", tt.in, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parseBind(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
		case got != tt.want:
			t.Errorf("parseBind(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseTOML(t *testing.T) {
	opt := func(name string) *option { return lookup(options, name) }
	tests := []struct {
		opt     string
		in      any
		want    any
		wantErr string
	}{
		{"workers", int64(4), 4, ""},
		{"workers", "four", nil, `want an integer, got string "four"`},
		{"workers", 4.0, nil, "want an integer, got float 4"},
		{"timeout", int64(30), 30 * time.Second, ""},
		{"timeout", 0.25, 250 * time.Millisecond, ""},
		{"timeout", "2m", 2 * time.Minute, ""},
		{"timeout", "15", 15 * time.Second, ""},
		{"timeout", true, nil, "want a duration (seconds, or like 500ms, 2m), got boolean true"},
		{"max-body-size", int64(1000), int64(1000), ""},
		{"max-body-size", "1G", int64(1 << 30), ""},
		{"max-body-size", 1.5, nil, "want a size"},
		{"bind", []any{"a:1", "unix:/x"}, []string{"a:1", "unix:/x"}, ""},
		{"bind", "a:1", []string{"a:1"}, ""},
		{"bind", []any{"a:1", int64(2)}, nil, "got integer 2 at index 1"},
		{"pythonpath", "src,lib", []string{"src", "lib"}, ""},
		{"env", []any{"A=1"}, []string{"A=1"}, ""},
		{"env", map[string]any{"B": "x,y", "A": int64(1), "C": true}, []string{"A=1", "B=x,y", "C=true"}, ""},
		{"env", map[string]any{"A": []any{}}, nil, `key "A": want a string, got an array`},
		{"bind", map[string]any{"a": "b"}, nil, "want a list of strings, got a table"},
		{"log-level", int64(1), nil, "want a string, got integer 1"},
	}
	for _, tt := range tests {
		got, err := parseTOML(opt(tt.opt), tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseTOML(%s, %#v) error = %v, want one containing %q", tt.opt, tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseTOML(%s, %#v) = %#v, %v; want %#v", tt.opt, tt.in, got, err, tt.want)
		}
	}
}

// TestPrecedence sets options in all four layers and checks that the
// highest one wins for each.
func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "corral.toml", `
app = "file:app"
workers = 2
threads = 2
timeout = 5
max_body_size = "1M"
bind = ["unix:/file.sock"]
log-level = "debug"
`)
	environ := []string{
		"CORRAL_THREADS=3",
		"CORRAL_TIMEOUT=6s",
		"CORRAL_BIND=127.0.0.1:9000, unix:/run/x.sock",
		"CORRAL_MAX_BODY_SIZE=2M",
		"CORRAL_APP=env:app",
		"PATH=/usr/bin",
	}
	args := []string{"--timeout", "7", "-b", ":1", "--bind=:2", "flag:app"}
	c := mustLoad(t, args, environ, dir)

	tests := []struct {
		name      string
		got, want any
	}{
		{"app (flag)", c.App, "flag:app"},
		{"timeout (flag)", c.Timeout, 7 * time.Second},
		{"bind (flag, repeated)", c.Bind, []Bind{{Network: "tcp", Address: ":1"}, {Network: "tcp", Address: ":2"}}},
		{"threads (env)", c.Threads, 3},
		{"max-body-size (env)", c.MaxBodySize, int64(2 << 20)},
		{"workers (file)", c.Workers, 2},
		{"log-level (file)", c.LogLevel, "debug"},
		{"keep-alive (default)", c.KeepAlive, 60 * time.Second},
		{"config file", c.ConfigFile, filepath.Join(dir, "corral.toml")},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}

	// Without the flags, env beats the file; lists are comma-separated.
	c = mustLoad(t, nil, environ, dir)
	if c.App != "env:app" || c.Timeout != 6*time.Second {
		t.Errorf("env layer: app %q timeout %v, want env:app 6s", c.App, c.Timeout)
	}
	if want := []Bind{{Network: "tcp", Address: "127.0.0.1:9000"}, {Network: "unix", Address: "/run/x.sock"}}; !slices.Equal(c.Bind, want) {
		t.Errorf("CORRAL_BIND: bind = %q, want %q", c.Bind, want)
	}
	// Without env, the file wins over defaults.
	c = mustLoad(t, nil, nil, dir)
	if c.App != "file:app" || c.Threads != 2 || !slices.Equal(c.Bind, []Bind{{Network: "unix", Address: "/file.sock"}}) {
		t.Errorf("file layer: app %q threads %d bind %q", c.App, c.Threads, c.Bind)
	}
}

func TestFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args  []string
		check func(*Config) bool
	}{
		{[]string{"-w", "3", "a:b"}, func(c *Config) bool { return c.Workers == 3 }},
		{[]string{"-w4", "a:b"}, func(c *Config) bool { return c.Workers == 4 }},
		{[]string{"a:b", "--workers=5"}, func(c *Config) bool { return c.Workers == 5 && c.App == "a:b" }},
		{[]string{"--limit-request-field_size", "4000", "a:b"}, func(c *Config) bool { return c.LimitRequestFieldSize == 4000 }},
		{[]string{"--limit-request-field-size", "4001", "a:b"}, func(c *Config) bool { return c.LimitRequestFieldSize == 4001 }},
		{[]string{"--max_body_size", "1K", "a:b"}, func(c *Config) bool { return c.MaxBodySize == 1024 }},
		{[]string{"-e", "A=1", "--env", "B=x,y", "-e", "C=", "a:b"}, func(c *Config) bool {
			return slices.Equal(c.Env, []string{"A=1", "B=x,y", "C="})
		}},
		{[]string{"--pythonpath", "src,lib", "--pythonpath", "other", "a:b"}, func(c *Config) bool {
			return slices.Equal(c.PythonPath, []string{"src", "lib", "other"})
		}},
		{[]string{"-k", "gthread", "--threads", "8", "a:b"}, func(c *Config) bool { return c.WorkerClass == "gthread" && c.Threads == 8 }},
		{[]string{"-k", "asgi", "a:b"}, func(c *Config) bool { return c.Interface == "asgi" }},
		{[]string{"-k", "uvicorn.workers.UvicornWorker", "a:b"}, func(c *Config) bool { return c.Interface == "asgi" }},
		{[]string{"-k", "uvicorn.workers.UvicornH11Worker", "--interface", "ASGI", "a:b"}, func(c *Config) bool { return c.Interface == "asgi" }},
		{[]string{"-k", "uvicorn_worker.UvicornWorker", "a:b"}, func(c *Config) bool { return c.Interface == "asgi" }},
		{[]string{"--interface", "wsgi", "-k", "sync", "a:b"}, func(c *Config) bool { return c.Interface == "wsgi" }},
		{[]string{"--worker-connections", "50", "--lifespan", "off", "a:b"}, func(c *Config) bool {
			return c.WorkerConnections == 50 && c.Lifespan == "off"
		}},
		{[]string{"--ws-max-size", "1M", "--ws-ping-interval", "5", "--ws-ping-timeout", "500ms", "--ws-per-message-deflate=false", "a:b"}, func(c *Config) bool {
			return c.WSMaxSize == 1<<20 && c.WSPingInterval == 5*time.Second && c.WSPingTimeout == 500*time.Millisecond && !c.WSPerMessageDeflate
		}},
		{[]string{"--log-level", "WARNING", "a:b"}, func(c *Config) bool { return c.LogLevel == "warning" }},
		{[]string{"--access-logfile", "-", "--access-log-format", "json", "a:b"}, func(c *Config) bool {
			return c.AccessLogFile == "-" && c.AccessLogFormat == "json"
		}},
		{[]string{"-t", "0.5", "--keep-alive", "0", "a:b"}, func(c *Config) bool { return c.Timeout == 500*time.Millisecond && c.KeepAlive == 0 }},
		{[]string{"--", "--weird:app"}, func(c *Config) bool { return c.App == "--weird:app" }},
	}
	for _, tt := range tests {
		c := mustLoad(t, tt.args, nil, dir)
		if !tt.check(c) {
			t.Errorf("Load(%q) = %+v: check failed", tt.args, c)
		}
	}
}

func TestHelpVersion(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "corral.toml", "this is not toml")
	tests := []struct {
		args []string
		want error
	}{
		{[]string{"--help"}, ErrHelp},
		{[]string{"-h"}, ErrHelp},
		{[]string{"check", "--help"}, ErrHelp},
		{[]string{"routes", "--help"}, ErrHelp},
		{[]string{"--version"}, ErrVersion},
		{[]string{"-v"}, ErrVersion},
	}
	for _, tt := range tests {
		_, err := Load(tt.args, []string{"CORRAL_WORKERS=x"}, dir)
		if !errors.Is(err, tt.want) {
			t.Errorf("Load(%q) error = %v, want %v", tt.args, err, tt.want)
		}
	}
}

func TestFlagErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want []string // substrings
	}{
		{[]string{"--wokers", "2", "a:b"}, []string{"unknown flag: --wokers", "did you mean --workers?", "--help"}},
		{[]string{"--frobnicate", "a:b"}, []string{"unknown flag: --frobnicate", "see corral --help"}},
		{[]string{"-z", "a:b"}, []string{"unknown shorthand flag", "--help"}},
		{[]string{"-w", "x", "a:b"}, []string{`invalid argument "x"`, "--workers", `want an integer, got "x"`, "--help"}},
		{[]string{"--timeout", "soon", "a:b"}, []string{"want a duration"}},
		{[]string{"a:b", "c:d"}, []string{"too many arguments", "--help"}},
		{[]string{"--workers"}, []string{"needs an argument", "--help"}},
	}
	for _, tt := range tests {
		got := loadErr(t, tt.args, nil, dir)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("Load(%q) error %q, want it to contain %q", tt.args, got, w)
			}
		}
	}
}

func TestEnv(t *testing.T) {
	dir := t.TempDir()
	c := mustLoad(t, []string{"a:b"}, []string{
		"CORRAL_WOKERS=2", "CORRAL_NOPE=1", "CORRAL_ENV=A=1,B=2", "CORRAL_PYTHONPATH=src, lib",
		"CORRAL_LIMIT_REQUEST_FIELD_SIZE=1000", "CORRAL_ACCESS_LOGFILE=", "CORRAL_WORKERS=1", "CORRAL_WORKERS=6",
	}, dir)
	if c.Workers != 6 {
		t.Errorf("workers = %d, want 6 (the last CORRAL_WORKERS wins)", c.Workers)
	}
	if !slices.Equal(c.Env, []string{"A=1", "B=2"}) || !slices.Equal(c.PythonPath, []string{"src", "lib"}) {
		t.Errorf("env %q pythonpath %q", c.Env, c.PythonPath)
	}
	if c.LimitRequestFieldSize != 1000 {
		t.Errorf("limit-request-field_size = %d, want 1000", c.LimitRequestFieldSize)
	}
	wantWarn := []string{
		"CORRAL_NOPE: unknown variable, ignored",
		"CORRAL_WOKERS: unknown variable, ignored (did you mean CORRAL_WORKERS?)",
	}
	if !slices.Equal(c.Warnings, wantWarn) {
		t.Errorf("warnings:\n got %q\nwant %q", c.Warnings, wantWarn)
	}

	tests := []struct {
		environ []string
		want    string
	}{
		{[]string{"CORRAL_WORKERS=x"}, `CORRAL_WORKERS: want an integer, got "x"`},
		{[]string{"CORRAL_WORKERS="}, `CORRAL_WORKERS: want an integer, got ""`},
		{[]string{"CORRAL_WORKERS=0"}, `CORRAL_WORKERS: must be at least 1, got 0`},
		{[]string{"CORRAL_TIMEOUT=-1"}, `CORRAL_TIMEOUT: must not be negative, got -1s`},
		{[]string{"CORRAL_MAX_BODY_SIZE=lots"}, `CORRAL_MAX_BODY_SIZE: want a size (bytes, or like 64K, 100M, 1G), got "lots"`},
		{[]string{"CORRAL_ENV=A=1,oops"}, `CORRAL_ENV: want KEY=VALUE, got "oops"`},
		{[]string{"CORRAL_BIND=localhost"}, `CORRAL_BIND: bind "localhost": missing port`},
		{[]string{"CORRAL_BIND="}, `CORRAL_BIND: no address to listen on`},
		{[]string{"CORRAL_LOG_LEVEL=loud"}, `CORRAL_LOG_LEVEL: want one of debug, info, warning, error, critical, got "loud"`},
	}
	for _, tt := range tests {
		got := loadErr(t, []string{"a:b"}, tt.environ, dir)
		if !strings.Contains(got, tt.want) {
			t.Errorf("environ %q: error %q, want it to contain %q", tt.environ, got, tt.want)
		}
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		file, content string
		want          []string
	}{
		{"corral.toml", "wokers = 4", []string{`corral.toml: unknown key "wokers" (did you mean "workers"?)`}},
		{"corral.toml", "max_bdy_size = 4", []string{`corral.toml: unknown key "max_bdy_size" (did you mean "max_body_size"?)`}},
		{"corral.toml", "colour = 'red'", []string{`corral.toml: unknown key "colour"`}},
		{"corral.toml", `workers = "four"`, []string{`corral.toml: key "workers": want an integer, got string "four"`}},
		{"pyproject.toml", "[tool.corral]\nworkers = \"four\"", []string{`pyproject.toml [tool.corral]: key "workers": want an integer, got string "four"`}},
		{"pyproject.toml", "[tool]\ncorral = 3", []string{`pyproject.toml [tool.corral]: want a table, got integer 3`}},
		{"corral.toml", "config = 'other.toml'", []string{`corral.toml: key "config" cannot be set in a config file`}},
		{"corral.toml", "max_body_size = 1\nmax-body-size = 2", []string{`corral.toml: keys "max-body-size" and "max_body_size" both set max-body-size`}},
		{"corral.toml", "workers = 0\nthreads = -1", []string{
			`corral.toml: key "workers": must be at least 1, got 0`,
			`corral.toml: key "threads": must not be negative, got -1`,
		}},
		{"corral.toml", "timeout = -2.5", []string{`corral.toml: key "timeout": must not be negative, got -2.5s`}},
		{"corral.toml", "worker_class = 'gevent'", []string{`corral.toml: key "worker_class": worker class "gevent": corral runs apps in its own Python workers`, "--threads"}},
		{"corral.toml", "worker_class = 'tornado.Worker'", []string{"accepts sync, gthread, or an ASGI class"}},
		{"corral.toml", "worker_class = 'uvicorn.workers.UvicornWorker'\ninterface = 'wsgi'", []string{
			`corral.toml: key "interface": wsgi contradicts the ASGI worker class "uvicorn.workers.UvicornWorker"`}},
		{"corral.toml", "interface = 'rsgi'", []string{`corral.toml: key "interface": want one of auto, asgi, wsgi, got "rsgi"`}},
		{"corral.toml", "worker_connections = 0", []string{`corral.toml: key "worker_connections": must be at least 1, got 0`}},
		{"corral.toml", "lifespan = 'yes'", []string{`corral.toml: key "lifespan": want one of auto, on, off`}},
		{"corral.toml", "ws_max_size = 0", []string{`corral.toml: key "ws_max_size": must be at least 1 byte`}},
		{"corral.toml", "workers = [", []string{"corral.toml: line 1, column"}},
		{"corral.toml", "env = {A = [1]}", []string{`corral.toml: key "env": key "A": want a string, got an array`}},
		{"corral.toml", "access_logformat = '%(h)s %(r)'", []string{`corral.toml: key "access_logformat": at byte 6: %(r) has no conversion`}},
		{"corral.toml", "request_id_header = 'X Request'", []string{`corral.toml: key "request_id_header": want a header name`}},
		{"corral.toml", "journal_flush_interval = 0", []string{`corral.toml: key "journal_flush_interval": must be more than 0`}},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		writeFile(t, dir, tt.file, tt.content)
		got := loadErr(t, []string{"a:b"}, nil, dir)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s %q: error %q, want it to contain %q", tt.file, tt.content, got, w)
			}
		}
	}
}

func TestErrorType(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "corral.toml", "workers = 'x'")
	_, err := Load(nil, []string{"CORRAL_THREADS=y"}, dir)
	var sources []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *Error
		if errors.As(e, &ce) {
			sources = append(sources, ce.Source)
		}
	}
	want := []string{"CORRAL_THREADS", `corral.toml: key "workers"`}
	if !slices.Equal(sources, want) {
		t.Errorf("error sources = %q, want %q", sources, want)
	}
	if !errors.Is(err, ErrNoApp) {
		t.Errorf("error %v does not wrap ErrNoApp", err)
	}
}

func TestConfigFileDiscovery(t *testing.T) {
	t.Run("pyproject", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "pyproject.toml", `
[project]
name = "demo"

[tool.black]
line-length = 100

[tool.corral]
app = "demo.wsgi:application"
workers = 3
env = { DJANGO_SETTINGS_MODULE = "demo.settings" }

[tool.corral.nothing]
`)
		got := loadErr(t, nil, nil, dir)
		if want := `pyproject.toml [tool.corral]: unknown key "nothing"`; !strings.Contains(got, want) {
			t.Errorf("error %q, want %q", got, want)
		}
		writeFile(t, dir, "pyproject.toml", `
[project]
name = "demo"

[tool.corral]
app = "demo.wsgi:application"
workers = 3
env = { DJANGO_SETTINGS_MODULE = "demo.settings" }
`)
		c := mustLoad(t, nil, nil, dir)
		if c.App != "demo.wsgi:application" || c.Workers != 3 || !slices.Equal(c.Env, []string{"DJANGO_SETTINGS_MODULE=demo.settings"}) {
			t.Errorf("pyproject: %+v", c)
		}
		if want := filepath.Join(dir, "pyproject.toml"); c.ConfigFile != want {
			t.Errorf("ConfigFile = %q, want %q", c.ConfigFile, want)
		}
	})
	t.Run("pyproject without tool.corral", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "pyproject.toml", "[project]\nname = \"demo\"\n[tool.ruff]\nline-length = 9\n")
		c := mustLoad(t, []string{"a:b"}, nil, dir)
		if c.ConfigFile != "" {
			t.Errorf("ConfigFile = %q, want none", c.ConfigFile)
		}
	})
	t.Run("corral.toml before pyproject", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "pyproject.toml", "[tool.corral]\nworkers = 7\n")
		writeFile(t, dir, "corral.toml", "workers = 5\n")
		c := mustLoad(t, []string{"a:b"}, nil, dir)
		if c.Workers != 5 || c.ConfigFile != filepath.Join(dir, "corral.toml") {
			t.Errorf("workers %d from %q, want 5 from corral.toml", c.Workers, c.ConfigFile)
		}
	})
	t.Run("-c relative to cwd", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "corral.toml", "workers = 5\n")
		writeFile(t, dir, "deploy/prod.toml", "workers = 9\n")
		c := mustLoad(t, []string{"-c", "deploy/prod.toml", "a:b"}, nil, dir)
		if c.Workers != 9 || c.ConfigFile != filepath.Join(dir, "deploy/prod.toml") {
			t.Errorf("workers %d from %q, want 9 from deploy/prod.toml", c.Workers, c.ConfigFile)
		}
		c = mustLoad(t, []string{"a:b"}, []string{"CORRAL_CONFIG=deploy/prod.toml"}, dir)
		if c.Workers != 9 {
			t.Errorf("CORRAL_CONFIG: workers %d, want 9", c.Workers)
		}
		got := loadErr(t, []string{"--config=deploy/prod.toml", "a:b"}, []string{"CORRAL_THREADS=0"}, dir)
		if !strings.Contains(got, "CORRAL_THREADS: must be at least 1") {
			t.Errorf("error %q", got)
		}
	})
	t.Run("-c pyproject.toml", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "sub/pyproject.toml", "[tool.corral]\nworkers = \"x\"\n")
		got := loadErr(t, []string{"-c", "sub/pyproject.toml", "a:b"}, nil, dir)
		if want := `sub/pyproject.toml [tool.corral]: key "workers"`; !strings.Contains(got, want) {
			t.Errorf("error %q, want %q", got, want)
		}
	})
	t.Run("-c missing", func(t *testing.T) {
		dir := t.TempDir()
		got := loadErr(t, []string{"-c", "nope.toml", "a:b"}, nil, dir)
		if !strings.Contains(got, "--config: ") || !strings.Contains(got, "nope.toml") {
			t.Errorf("error %q, want it to name --config and the file", got)
		}
		var pe *os.PathError
		_, err := Load([]string{"-c", "nope.toml", "a:b"}, nil, dir)
		if !errors.As(err, &pe) {
			t.Errorf("error %v does not wrap *os.PathError", err)
		}
	})
}

func TestNoApp(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(nil, nil, dir)
	if !errors.Is(err, ErrNoApp) {
		t.Errorf("Load without APP: error %v, want ErrNoApp", err)
	}
	// A config file that does not parse may hold the app: only its own
	// error is reported.
	writeFile(t, dir, "corral.toml", "app = ")
	_, err = Load(nil, nil, dir)
	if err == nil || errors.Is(err, ErrNoApp) || !strings.HasPrefix(err.Error(), "corral.toml: line 1") {
		t.Errorf("Load with a broken corral.toml: error %v, want only the file's", err)
	}
}

func TestLimits(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args                []string
		line, fields, size  int
		wantErr, wantSource string
	}{
		{args: nil, line: 4094, fields: 100, size: 8190},
		{args: []string{"--limit-request-line=0"}, line: 8190, fields: 100, size: 8190},
		{args: []string{"--limit-request-line=8190"}, line: 8190, fields: 100, size: 8190},
		{args: []string{"--limit-request-fields=0"}, line: 4094, fields: 124, size: 8190},
		{args: []string{"--limit-request-field_size=0"}, line: 4094, fields: 100, size: 10191},
		{args: []string{"--limit-request-fields=0", "--limit-request-field_size=0"}, line: 4094, fields: 124, size: 8190},
		{args: []string{"--limit-request-fields=2000", "--limit-request-field_size=100"}, line: 4094, fields: 2000, size: 100},
		{args: []string{"--limit-request-fields=0", "--limit-request-field_size=1"}, line: 4094, fields: 32768, size: 1},
		{args: []string{"--limit-request-line=8191"}, wantErr: "--limit-request-line: must be at most 8190, got 8191"},
		{args: []string{"--limit-request-fields=40000"}, wantErr: "--limit-request-fields: must be at most 32768, got 40000"},
		{args: []string{"--limit-request-fields=200"},
			wantErr: "--limit-request-fields: must be at most 124 with limit-request-field_size 8190 and limit-request-line 4094 (a request head must fit in a 1 MiB worker frame), got 200"},
		{args: []string{"--limit-request-field_size=20000"},
			wantErr: "--limit-request-field_size: must be at most 10191 with limit-request-fields 100 and limit-request-line 4094"},
		{args: []string{"--limit-request-fields=0", "--limit-request-field_size=1048576"},
			wantErr: "--limit-request-field_size: must be at most 1019902"},
	}
	for _, tt := range tests {
		args := append([]string{"a:b"}, tt.args...)
		if tt.wantErr != "" {
			if got := loadErr(t, args, nil, dir); !strings.Contains(got, tt.wantErr) {
				t.Errorf("Load(%q) error %q, want %q", args, got, tt.wantErr)
			}
			continue
		}
		c := mustLoad(t, args, nil, dir)
		if c.LimitRequestLine != tt.line || c.LimitRequestFields != tt.fields || c.LimitRequestFieldSize != tt.size {
			t.Errorf("Load(%q) limits = %d, %d, %d; want %d, %d, %d", args,
				c.LimitRequestLine, c.LimitRequestFields, c.LimitRequestFieldSize, tt.line, tt.fields, tt.size)
		}
		if n := headBytes(c.LimitRequestLine, c.LimitRequestFields, c.LimitRequestFieldSize); n > frameLimit {
			t.Errorf("Load(%q): head of %d bytes exceeds the frame limit", args, n)
		}
	}

	// The option set by the highest source is the one named.
	writeFile(t, dir, "corral.toml", "limit_request_fields = 124\n")
	got := loadErr(t, []string{"a:b"}, []string{"CORRAL_LIMIT_REQUEST_LINE=8000"}, dir)
	if want := "CORRAL_LIMIT_REQUEST_LINE: must be at most"; !strings.Contains(got, want) {
		t.Errorf("error %q, want %q", got, want)
	}
}

func TestSlogLevel(t *testing.T) {
	tests := []struct {
		level string
		want  slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warning", slog.LevelWarn},
		{"error", slog.LevelError},
		{"critical", LevelCritical},
		{"", slog.LevelInfo},
	}
	for _, tt := range tests {
		if got := (&Config{LogLevel: tt.level}).SlogLevel(); got != tt.want {
			t.Errorf("SlogLevel(%q) = %v, want %v", tt.level, got, tt.want)
		}
	}
	if LevelCritical <= slog.LevelError {
		t.Errorf("LevelCritical %v is not above error", LevelCritical)
	}
}

// TestTable checks the option table itself: unique names, field types that
// match the kinds, defaults that parse and validate.
func TestTable(t *testing.T) {
	names, envs, shorts := map[string]bool{}, map[string]bool{}, map[string]bool{"h": true, "v": true}
	wantType := map[kind]string{
		kindString: "*string", kindInt: "*int", kindBool: "*bool",
		kindDuration: "*time.Duration", kindSize: "*int64", kindList: "*[]string",
	}
	var c Config
	for i := range options {
		o := &options[i]
		n := normName(o.name)
		if names[n] || n == "help" || n == "version" {
			t.Errorf("option %s: duplicate name", o.name)
		}
		names[n] = true
		if envs[o.envName()] {
			t.Errorf("option %s: duplicate env var %s", o.name, o.envName())
		}
		envs[o.envName()] = true
		if o.short != "" {
			if shorts[o.short] || len(o.short) != 1 {
				t.Errorf("option %s: bad or duplicate short flag %q", o.name, o.short)
			}
			shorts[o.short] = true
		}
		if got := reflect.TypeOf(o.field(&c)).String(); got != wantType[o.kind] {
			t.Errorf("option %s: field is %s, want %s for its kind", o.name, got, wantType[o.kind])
		}
		if o.help == "" || o.group >= groupCount {
			t.Errorf("option %s: no help or bad group", o.name)
		}
		if !o.positional && o.arg == "" && o.kind != kindBool {
			t.Errorf("option %s: no placeholder for --help", o.name)
		}
		if len(o.choices) > 0 && !slices.Contains(o.choices, o.def) {
			t.Errorf("option %s: default %q is not one of %q", o.name, o.def, o.choices)
		}
	}
	// Every Config field but the bookkeeping ones is set by an option.
	set := map[uintptr]bool{}
	for i := range options {
		o := &options[i]
		set[reflect.ValueOf(o.field(&c)).Pointer()] = true
		if (o.typed == nil) != (o.parse == nil) {
			t.Errorf("option %s: typed and parse go together", o.name)
		}
		if o.typed != nil {
			set[reflect.ValueOf(o.typed(&c)).Pointer()] = true
		}
	}
	rt := reflect.TypeOf(c)
	rv := reflect.ValueOf(&c).Elem()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if !f.IsExported() || f.Name == "Warnings" || f.Name == "GuardFile" { // GuardFile: the [guard] table
			continue
		}
		if !set[rv.Field(i).Addr().Pointer()] {
			t.Errorf("Config.%s has no option", f.Name)
		}
	}
}

// TestAddOption shows that an option is one table entry: a bool option
// added to a copy of the table works as a flag, env var and file key.
func TestAddOption(t *testing.T) {
	var exampleFlag bool
	table := append(slices.Clone(options), option{
		name: "example-flag", kind: kindBool, group: groupWorkers,
		help:  "Load the app before forking.",
		field: func(*Config) any { return &exampleFlag },
	})
	dir := t.TempDir()
	tests := []struct {
		args, environ []string
		file          string
		want          bool
	}{
		{nil, nil, "", false},
		{[]string{"--example-flag"}, nil, "", true},
		{[]string{"--example-flag=false"}, []string{"CORRAL_EXAMPLE_FLAG=1"}, "", false},
		{nil, []string{"CORRAL_EXAMPLE_FLAG=true"}, "example-flag = false", true},
		{nil, nil, "example-flag = true", true},
	}
	for _, tt := range tests {
		exampleFlag = false
		os.Remove(filepath.Join(dir, "corral.toml"))
		if tt.file != "" {
			writeFile(t, dir, "corral.toml", tt.file)
		}
		if _, err := load(table, append(tt.args, "a:b"), tt.environ, dir); err != nil {
			t.Fatalf("load(%q, %q, %q): %v", tt.args, tt.environ, tt.file, err)
		}
		if exampleFlag != tt.want {
			t.Errorf("load(%q, %q, %q): example-flag = %t, want %t", tt.args, tt.environ, tt.file, exampleFlag, tt.want)
		}
	}
	writeFile(t, dir, "corral.toml", "example-flag = 'yes'")
	_, err := load(table, []string{"a:b"}, nil, dir)
	if want := `corral.toml: key "example-flag": want true or false, got string "yes"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
	if u := usage(table); !strings.Contains(u, "--example-flag") || !strings.Contains(u, "CORRAL_EXAMPLE_FLAG") {
		t.Errorf("usage does not show the new option")
	}
}

func TestUsage(t *testing.T) {
	u := Usage()
	for _, want := range []string{"Usage: corral [OPTIONS] APP", "check APP", "routes APP", "--json",
		"Application:", "Workers:", "Listening:", "Timeouts & limits:", "Logging:", "--help", "--version",
		"--limit-request-field_size", "--limit-request-field-size"} {
		if !strings.Contains(u, want) {
			t.Errorf("Usage() lacks %q", want)
		}
	}
	for i := range options {
		o := &options[i]
		for _, want := range []string{o.flagName(), o.envName()} {
			if !strings.Contains(u, want) {
				t.Errorf("Usage() lacks %q of option %s", want, o.name)
			}
		}
		if d := o.defaultText(); d != "" && !strings.Contains(u, "Default "+d+".") {
			t.Errorf("Usage() lacks the default %q of option %s", d, o.name)
		}
	}
	for _, line := range strings.Split(u, "\n") {
		if len(line) > 80 {
			t.Errorf("Usage() line longer than 80 columns: %q", line)
		}
	}
}

func TestObservabilityOptions(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "corral.toml", `
app = "app:app"
journal = "/var/lib/corral/journal.db"
journal_max_age = "24h"
journal_max_size = "10M"
access_logformat = '%(h)s "%(r)s" %({x-request-id}i)s'
request_id_header = "x-correlation-id"
`)
	c := mustLoad(t, nil, nil, dir)
	if c.Journal != "/var/lib/corral/journal.db" || c.JournalMaxAge != 24*time.Hour || c.JournalMaxSize != 10<<20 ||
		c.JournalFlushInterval != time.Second || len(c.AccessLogParts) != 5 || c.RequestIDHeader != "X-Correlation-Id" {
		t.Errorf("got journal %q %v %d %v, %d format parts, request ID header %q", c.Journal, c.JournalMaxAge, c.JournalMaxSize,
			c.JournalFlushInterval, len(c.AccessLogParts), c.RequestIDHeader)
	}
	if c := mustLoad(t, []string{"--request-id-header", "off", "a:b"}, nil, t.TempDir()); c.RequestIDHeader != "" {
		t.Errorf("--request-id-header off: %q", c.RequestIDHeader)
	}
}
