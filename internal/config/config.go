// Package config holds corral's settings and loads them from the command
// line, CORRAL_* environment variables, a TOML config file (corral.toml or
// the [tool.corral] table of pyproject.toml) and defaults, in that order of
// precedence.
//
// Every setting is defined once, in a table: its flag, environment
// variable, config-file key, default, validation and --help text all come
// from that entry.
package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"corral/internal/addrset"
	"corral/internal/logformat"
)

// Config holds every setting of a corral server. Load fills it: after a
// successful Load every field holds its effective value, defaults applied
// and validated. Durations are time.Duration; sizes are bytes.
type Config struct {
	// App is the WSGI application: "module:name", "module:factory()" or a
	// path to a .py file. Never empty after Load.
	App string

	// ConfigFile is the absolute path of the config file that was read, or
	// "" if none was (no file found, or a pyproject.toml without
	// [tool.corral]).
	ConfigFile string
	// Chdir is the directory the workers change to before importing the
	// app, as given (relative paths are relative to the working directory
	// passed to Load); "" = stay.
	Chdir string
	// PythonPath lists directories to put in front of sys.path, in order.
	PythonPath []string
	// Python is the interpreter given with --python, "" if none; use
	// ResolvePython to find the one to run.
	Python string
	// Env holds "KEY=VALUE" entries added to the workers' environment, in
	// order; each has a non-empty KEY.
	Env []string

	// Workers is the number of worker processes, at least 1.
	Workers int
	// Threads is the number of threads per worker (requests one worker
	// runs at once), at least 1.
	Threads int
	// WorkerClass is accepted for gunicorn compatibility: "sync" or
	// "gthread" change nothing (Threads decides); an ASGI class ("asgi",
	// uvicorn's worker classes) makes Load set Interface to "asgi".
	WorkerClass string

	// Interface is "auto" (each worker detects what the app is), "asgi"
	// or "wsgi".
	Interface string
	// WorkerConnections is the number of requests (HTTP and WebSocket) an
	// ASGI worker runs at once, at least 1.
	WorkerConnections int
	// Lifespan is "auto", "on" or "off": whether ASGI workers run the
	// app's lifespan startup and shutdown.
	Lifespan string
	// WSMaxSize is the largest WebSocket message a client may send, in
	// bytes, at least 1.
	WSMaxSize int64
	// WSPingInterval is how often WebSocket clients are pinged; 0 = never.
	WSPingInterval time.Duration
	// WSPingTimeout is how long a pinged client has to answer before its
	// socket is closed; 0 = no limit.
	WSPingTimeout time.Duration
	// WSPerMessageDeflate offers permessage-deflate to WebSocket clients.
	WSPerMessageDeflate bool

	// BootTimeout is the longest a worker may take to import the app.
	BootTimeout time.Duration
	// WarmupPath is requested (GET) on each new worker before it takes
	// traffic; "" = none.
	WarmupPath string
	// Preload loads the app once in a template process and forks workers
	// from it.
	Preload bool
	// StuckAfter replaces a worker whose requests have all run longer than
	// this (and 20 times their route's usual time) with a fresh one; the
	// stuck worker finishes on the side. 0 = never. MaxStuck bounds the
	// workers set aside at once; 0 = as many as Workers.
	StuckAfter time.Duration
	MaxStuck   int
	// MaxRequests recycles a worker after this many requests, plus up to
	// MaxRequestsJitter; 0 = never.
	MaxRequests       int
	MaxRequestsJitter int
	// MaxLifetime recycles a worker after this long, plus up to
	// MaxLifetimeJitter; 0 = never.
	MaxLifetime       time.Duration
	MaxLifetimeJitter time.Duration
	// MaxRSS recycles a worker whose resident memory exceeds this many
	// MiB; 0 = never.
	MaxRSS int
	// Reload restarts the workers when the app's source files change
	// (development); ReloadExtra adds glob patterns of more files to watch.
	Reload      bool
	ReloadExtra []string

	// Bind lists the addresses to listen on, at least one, in the order
	// given.
	Bind []Bind
	// Backlog is the listen backlog in connections; 0 = the system default.
	Backlog int
	// MaxConnections is the most client connections open at once; 0 = no
	// limit.
	MaxConnections int
	// AdminBind is the admin API's address: "unix:PATH", a path, or
	// HOST:PORT; "" = a socket named after the pid in the runtime directory;
	// "off" = no admin API.
	AdminBind string
	// AdminToken is the bearer token callers of a TCP admin API from
	// other hosts must send; "" = such callers are refused.
	AdminToken string
	// ReusePort sets SO_REUSEPORT on the TCP listeners corral opens, so
	// that several processes can listen on one port and the kernel spreads
	// new connections among them.
	ReusePort bool
	// Umask holds the permission bits taken away from 0777 for the Unix
	// sockets corral creates, at most 0777; 0 lets every local user
	// connect. Given in octal with a leading 0 or 0o ("007", "0o22"), else
	// in decimal, as gunicorn reads it.
	Umask os.FileMode
	// ProxyProtocol makes every listener read a PROXY protocol (v1 or v2)
	// header from trusted peers (ForwardedAllowIPs and Unix-socket peers)
	// and refuse connections that send one from any other peer.
	ProxyProtocol bool
	// ForwardedAllowIPs are the peers trusted to tell who the client is:
	// IP addresses, CIDR prefixes, or "*" for every peer, parsed by
	// addrset.Parse. The zero set trusts no TCP peer.
	ForwardedAllowIPs addrset.Set

	// CertFile is the PEM certificate chain that turns on TLS for every
	// listener; "" = plain HTTP.
	CertFile string
	// KeyFile is the PEM private key of CertFile; "" = the key is in
	// CertFile.
	KeyFile string
	// CACerts is a PEM bundle of the authorities client certificates are
	// checked against; "" = none.
	CACerts string
	// CertReqs is whether clients must present a certificate signed by
	// CACerts: tls.NoClientCert, tls.VerifyClientCertIfGiven or
	// tls.RequireAndVerifyClientCert, given as "none", "optional" or
	// "required".
	CertReqs tls.ClientAuthType
	// H2C serves HTTP/2 without TLS (prior knowledge) on plain listeners,
	// beside HTTP/1.
	H2C bool
	// HTTP1 is who serves HTTP/1.x on plain listeners: "corral" (package
	// h1's fast path, which hands what it does not serve to net/http) or
	// "net/http".
	HTTP1 string

	// User and Group are the account (name or numeric id) corral switches
	// to after opening its sockets when started as root, and the workers
	// always run as; "" = the one corral was started as (Group "" = the
	// user's primary group).
	User  string
	Group string
	// AllowRoot lets the app run as root; without it corral refuses to run
	// as root unless User names another account.
	AllowRoot bool

	// Timeout is the hard limit on a worker's time for one request, after
	// which the worker is replaced; 0 = no limit.
	Timeout time.Duration
	// RouteTimeouts override Timeout for paths matching a pattern, given
	// as "PATTERN=DURATION" entries; the first match wins.
	RouteTimeouts []RouteTimeout
	// SlowRequest is the running time after which a request's Python stack
	// is logged once (it is not stopped); 0 = off.
	SlowRequest time.Duration
	// GracefulTimeout is how long running requests may go on at shutdown
	// or reload before their workers are killed; 0 = kill at once.
	GracefulTimeout time.Duration
	// KeepAlive is how long an idle client connection is kept open between
	// requests; 0 disables keep-alive.
	KeepAlive time.Duration
	// MaxQueue is the number of requests that may wait for a free worker;
	// more are refused with 503. 0 = none wait.
	MaxQueue int
	// QueueTimeout is the longest a request waits for a free worker before
	// it is refused with 503; 0 = no limit.
	QueueTimeout time.Duration
	// HeaderTimeout is the time a client has to send the request line and
	// headers; 0 = no limit.
	HeaderTimeout time.Duration
	// BodyTimeout is the longest idle time between reads of a request
	// body; 0 = no limit.
	BodyTimeout time.Duration
	// SendTimeout is the longest idle time between writes of a response;
	// 0 = no limit.
	SendTimeout time.Duration

	// LimitRequestLine is the longest request line in bytes, 1 to 8190.
	// Load turns a configured 0 into 8190.
	LimitRequestLine int
	// LimitRequestFields is the most header fields in a request, at least
	// 1. Load turns a configured 0 into as many as fit in a worker frame.
	LimitRequestFields int
	// LimitRequestFieldSize is the longest header field (name and value)
	// in bytes, at least 1. Load turns a configured 0 into as long as fits
	// in a worker frame. Together the three limits keep a request head
	// within the worker protocol's 1 MiB frame.
	LimitRequestFieldSize int
	// MaxBodySize is the largest request body in bytes; 0 = no limit.
	MaxBodySize int64

	// AccessLogFile is where the access log goes: a file path, "-" for
	// standard output, "" for no access log.
	AccessLogFile string
	// AccessLogFormat is "combined" or "json".
	AccessLogFormat string
	// AccessLogParts is --access-logformat (a gunicorn format) parsed;
	// nil = none given, AccessLogFormat applies.
	AccessLogParts []logformat.Part
	// RequestIDHeader is the header that carries request IDs (canonical
	// form); "" = request IDs off.
	RequestIDHeader string

	// Journal is the request journal's SQLite file; "" = no journal.
	Journal string
	// JournalMaxAge deletes journal rows older than this; 0 = never.
	JournalMaxAge time.Duration
	// JournalMaxSize bounds the journal's rows in bytes; 0 = no bound.
	JournalMaxSize int64
	// JournalFlushInterval is the journal's flush window.
	JournalFlushInterval time.Duration
	// ErrorLogFile is where corral's own log goes: a file path, or "-" for
	// standard error.
	ErrorLogFile string
	// LogLevel is "debug", "info", "warning", "error" or "critical"
	// (gunicorn's names, lower case); see SlogLevel.
	LogLevel string

	// StatsdHost is where statsd metrics go: HOST:PORT, HOST (port 8125)
	// or unix:PATH; "" = no statsd. StatsdPrefix is prepended to the
	// names (gunicorn adds the dot), DogstatsdTags appended as |#TAGS.
	StatsdHost    string
	StatsdPrefix  string
	DogstatsdTags string

	// Static lists the URL prefixes served from directories by corral
	// itself, before any worker, given as "PREFIX=DIR" entries; each
	// prefix once.
	Static []StaticMount
	// StaticMaxAge is the Cache-Control max-age of static files; 0 sends
	// no-cache (clients revalidate every time).
	StaticMaxAge time.Duration

	// NoGuard turns the request guard off: corral still works out client
	// identities but bans and limits nobody.
	NoGuard bool
	// StrictRoutes answers 404 from corral itself, without a worker, to
	// requests for paths outside the routes the app reported.
	StrictRoutes bool
	// StateDir is where corral keeps state across restarts (the ban
	// store); "" = the default described in StateDirectory.
	StateDir string
	// GuardFile is the [guard] table of the config file, defaults applied.
	GuardFile Guard
	// GuardStore is the store that the instances of a fleet share bans,
	// jail counts and rate limits through (docs/fleet.md): a redis://,
	// rediss:// or unix:// URL, from --guard-store, CORRAL_GUARD_STORE or
	// else the [guard] table's store; "" = none, each instance alone.
	GuardStore string

	// Warnings lists problems that did not stop Load, such as unknown
	// CORRAL_* environment variables. The caller should log them.
	Warnings []string

	cwd        string // the working directory given to Load
	bindSet    bool   // bind came from a flag, the environment or the file
	virtualEnv string // VIRTUAL_ENV from the environ given to Load

	// The options below as given, which the option table merges; Load
	// parses each into the exported field of the same name.
	forwardedAllowIPs []string
	bind              []string
	umask             string
	accessLogformat   string
	requestIDHeader   string
	certReqs          string
	routeTimeouts     []string
	static            []string
}

var (
	// ErrHelp is returned by Load when -h or --help was given; print Usage().
	ErrHelp = errors.New("help requested")
	// ErrVersion is returned by Load when --version was given.
	ErrVersion = errors.New("version requested")
	// ErrNoApp is wrapped in Load's error when no APP was given anywhere.
	ErrNoApp = errors.New("no APP given")
)

// Error is a bad setting: where it came from and what is wrong with it.
type Error struct {
	// Source names where the value came from, as the user wrote it:
	// "--workers", "CORRAL_WORKERS", `corral.toml: key "workers"`.
	Source string
	Err    error
}

func (e *Error) Error() string { return e.Source + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// AppDir is the directory the app runs in, absolute: Chdir resolved
// against the working directory given to Load, or that directory.
func (c *Config) AppDir() string { return c.abs(c.Chdir) }

// StateDirectory is the directory for state kept across restarts:
// StateDir if set, else systemd's StateDirectory ($STATE_DIRECTORY, the
// first if it lists several), else /var/lib/corral for root, else
// $XDG_STATE_HOME/corral, else ~/.local/state/corral, else a per-user
// directory under the system temporary directory. getenv is os.Getenv in
// production. It creates nothing.
func (c *Config) StateDirectory(getenv func(string) string) string {
	if c.StateDir != "" {
		return c.StateDir
	}
	if d := getenv("STATE_DIRECTORY"); d != "" {
		return filepath.SplitList(d)[0]
	}
	if os.Geteuid() == 0 {
		return "/var/lib/corral"
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "corral")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "corral")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("corral-state-%d", os.Geteuid()))
}

// BindSet reports whether the addresses to listen on were configured
// (flag, environment or file) rather than defaulted: without a configured
// bind, sockets passed by systemd replace the default address.
func (c *Config) BindSet() bool { return c.bindSet }

// LevelCritical is the slog level for gunicorn's "critical".
const LevelCritical = slog.LevelError + 4

// SlogLevel maps LogLevel to a slog level: debug, info, warning and error
// to the slog levels of those names, critical to LevelCritical. An unknown
// level maps to slog.LevelInfo.
func (c *Config) SlogLevel() slog.Level {
	switch strings.ToLower(c.LogLevel) {
	case "debug":
		return slog.LevelDebug
	case "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	case "critical":
		return LevelCritical
	}
	return slog.LevelInfo
}
