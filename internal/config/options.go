package config

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"corral/internal/proto"
)

// kind is the type of an option's value. It decides how text (flags,
// environment variables) and TOML values are parsed, and which Config field
// type the option writes to.
type kind int

const (
	kindString   kind = iota // string
	kindInt                  // int
	kindBool                 // bool; a flag without a value means true
	kindDuration             // time.Duration; a bare number is seconds
	kindSize                 // int64 bytes; suffixes K, M, G (binary)
	kindList                 // []string; flags repeat, env vars use commas
)

// want describes the kind for "want X, got Y" messages.
func (k kind) want() string {
	switch k {
	case kindInt:
		return "an integer"
	case kindBool:
		return "true or false"
	case kindDuration:
		return "a duration (seconds, or like 500ms, 2m)"
	case kindSize:
		return "a size (bytes, or like 64K, 100M, 1G)"
	case kindList:
		return "a list of strings"
	default:
		return "a string"
	}
}

// group orders options in --help and in the reference documentation.
type group int

const (
	groupApp group = iota
	groupWorkers
	groupASGI
	groupListen
	groupTLS
	groupPrivileges
	groupLimits
	groupLog
	groupMetrics
	groupStatic
	groupGuard
	groupCount
)

func (g group) String() string {
	switch g {
	case groupApp:
		return "Application"
	case groupWorkers:
		return "Workers"
	case groupASGI:
		return "ASGI & WebSockets"
	case groupListen:
		return "Listening"
	case groupTLS:
		return "TLS & HTTP/2"
	case groupPrivileges:
		return "Privileges"
	case groupLimits:
		return "Timeouts & limits"
	case groupLog:
		return "Logging"
	case groupMetrics:
		return "Metrics"
	case groupStatic:
		return "Static files"
	case groupGuard:
		return "Guard"
	}
	return "group(" + strconv.Itoa(int(g)) + ")"
}

// option defines one setting. Its flag (--name), environment variable
// (CORRAL_NAME), config-file key (name, with - or _), default, validation
// and help text all come from this one definition.
type option struct {
	name  string // long flag name; also the config-file key and the env var name
	short string // one-letter flag, or ""
	kind  kind
	group group
	arg   string // placeholder for the value in --help, e.g. "N"
	def   string // default, in flag syntax; "" = the zero value
	// defFunc computes a default that depends on the machine; defText is
	// then what --help and the docs show instead of the value.
	defFunc func() string
	defText string
	help    string

	// field returns a pointer to the Config field the option sets: *string,
	// *int, *bool, *time.Duration, *int64 (sizes) or *[]string (lists).
	field func(*Config) any

	positional bool     // set by the APP argument rather than a flag
	noFile     bool     // may not be set in a config file
	split      bool     // list: flag values may also be comma-separated
	table      bool     // list of KEY=VALUE: a TOML table is accepted too
	choices    []string // string: the accepted values (matched ignoring case)

	// check validates the final value (after all sources are merged); nil
	// accepts anything that parsed. Numbers are also checked to be >= 0.
	check func(v any) error
	// typed, when not nil, returns a pointer to the Config field that holds
	// the value parsed (field then holds it as given, for the sources to
	// merge), and parse validates the final value and returns the parsed
	// form, in one step; its error is reported like check's. Set both or
	// neither.
	typed func(*Config) any
	parse func(v any) (any, error)
}

// envName is the environment variable that sets the option.
func (o *option) envName() string {
	return "CORRAL_" + strings.ToUpper(strings.NewReplacer("-", "_").Replace(o.name))
}

// flagName is how --help spells the option: "-w, --workers", or "APP".
func (o *option) flagName() string {
	switch {
	case o.positional:
		return strings.ToUpper(o.name)
	case o.short != "":
		return "-" + o.short + ", --" + o.name
	default:
		return "--" + o.name
	}
}

// defaultText is the default as --help shows it, "" if there is none.
func (o *option) defaultText() string {
	if o.defText != "" {
		return o.defText
	}
	return o.def
}

// normName folds the spellings of an option name: "max_body_size",
// "max-body-size" and "limit-request-field_size" compare equal to the name.
func normName(s string) string {
	return strings.ReplaceAll(s, "_", "-")
}

// lookup returns the option whose normalised name is name, or nil.
func lookup(table []option, name string) *option {
	n := normName(name)
	for i := range table {
		if normName(table[i].name) == n {
			return &table[i]
		}
	}
	return nil
}

// Limits of the request head. The worker protocol caps a frame's payload
// (proto.MaxPayload, docs/PROTOCOL.md); the REQUEST frame carries the whole environ, in which
// the request target appears up to three times (REQUEST_URI, RAW_URI,
// PATH_INFO plus QUERY_STRING) and each header field gains its CGI name
// ("HTTP_" and two NUL separators). headReserve is left for the constant
// CGI keys and the frame's own fields.
const (
	frameLimit       = proto.MaxPayload
	headReserve      = 16 << 10
	fieldOverhead    = 8
	maxRequestLine   = 8190  // as gunicorn
	maxRequestFields = 32768 // as gunicorn
	// defaultFieldSize is used when both limit-request-fields and
	// limit-request-field_size are 0.
	defaultFieldSize = 8190
)

// headBytes is the worst-case size of a request head in a REQUEST frame.
func headBytes(line, fields, fieldSize int) int64 {
	return headReserve + 3*int64(line) + int64(fields)*(int64(fieldSize)+fieldOverhead)
}

// options is the table of every setting, in --help order within each group.
// It is never modified. To add a setting: add a field to Config and one
// entry here; flags, env vars, file keys, --help and the docs follow.
var options = []option{
	// Application
	{
		name: "app", kind: kindString, group: groupApp, positional: true,
		help:  "The WSGI application: MODULE:NAME (myproject.wsgi:application), MODULE:FACTORY() (app:create_app()) or a path to a .py file. Required.",
		field: func(c *Config) any { return &c.App },
	},
	{
		name: "config", short: "c", kind: kindString, group: groupApp, arg: "FILE", noFile: true,
		defText: "corral.toml or pyproject.toml",
		help:    "Read settings from this TOML file (relative to the current directory; it must exist). Without it, corral.toml in the current directory is read if present, else the [tool.corral] table of pyproject.toml.",
		field:   func(c *Config) any { return &c.ConfigFile },
	},
	{
		name: "chdir", kind: kindString, group: groupApp, arg: "DIR",
		help:  "Change to this directory before loading the app (relative to the current directory).",
		field: func(c *Config) any { return &c.Chdir },
	},
	{
		name: "pythonpath", kind: kindList, group: groupApp, arg: "DIR[,DIR...]", split: true,
		help:  "Directories to put in front of sys.path, in order. Repeatable; commas separate entries too.",
		field: func(c *Config) any { return &c.PythonPath },
	},
	{
		name: "python", kind: kindString, group: groupApp, arg: "PATH",
		defText: "virtualenv's, else python3",
		help:    "Python interpreter for the workers: a path, or a command looked up on PATH. By default the Python of the virtual environment corral is installed in (pip install corral-server), else the active virtual environment's, else .venv/bin/python in the app directory (after --chdir), else python3 from PATH.",
		field:   func(c *Config) any { return &c.Python },
	},
	{
		name: "env", short: "e", kind: kindList, group: groupApp, arg: "KEY=VALUE", table: true,
		help:  "Set an environment variable for the workers. Repeatable. In a config file, an array of \"KEY=VALUE\" strings or a table.",
		check: each(checkEnvEntry),
		field: func(c *Config) any { return &c.Env },
	},

	// Workers
	{
		name: "workers", short: "w", kind: kindInt, group: groupWorkers, arg: "N",
		defFunc: func() string { return strconv.Itoa(runtime.NumCPU()) },
		defText: "number of CPUs",
		help:    "Number of Python worker processes running the app (at least 1).",
		check:   intRange(1, 0),
		field:   func(c *Config) any { return &c.Workers },
	},
	{
		name: "threads", kind: kindInt, group: groupWorkers, arg: "N", def: "1",
		help:  "Threads per worker: how many requests one worker runs at once (at least 1).",
		check: intRange(1, 0),
		field: func(c *Config) any { return &c.Threads },
	},
	{
		name: "worker-class", short: "k", kind: kindString, group: groupWorkers, arg: "CLASS", def: "sync",
		help:  "Accepted for gunicorn compatibility. sync or gthread: --threads decides the concurrency. asgi, uvicorn.workers.UvicornWorker or uvicorn.workers.UvicornH11Worker (and uvicorn_worker's): the app is ASGI (--interface asgi) and --worker-connections decides the concurrency. gevent and eventlet are refused.",
		check: checkWorkerClass,
		field: func(c *Config) any { return &c.WorkerClass },
	},

	{
		name: "boot-timeout", kind: kindDuration, group: groupWorkers, arg: "DURATION", def: "60s",
		help:  "Longest a worker may take to import the app and report ready. At start-up, corral exits with the traceback when no worker gets there.",
		field: func(c *Config) any { return &c.BootTimeout },
		check: positive,
	},
	{
		name: "preload", kind: kindBool, group: groupWorkers,
		help:  "Load the app once, in a template process (a zygote), and fork the workers from it, as gunicorn --preload and uWSGI do: a replacement worker starts in milliseconds instead of re-importing the app, and workers share the app's memory until they write to it. The app must not open connections or start threads at import time (they would be shared by every worker). A reload starts a new zygote with the new code.",
		field: func(c *Config) any { return &c.Preload },
	},
	{
		name: "stuck-after", kind: kindDuration, group: groupWorkers, arg: "DURATION", def: "5s",
		help:  "When a worker's request has run longer than this and 20 times what its route usually takes, give the worker's slot a fresh worker at once and let the stuck one finish (or reach --timeout) on the side, so one hung call does not take a worker's capacity for the whole --timeout. For an ASGI worker: when its event loop has been blocked this long. 0 = never.",
		field: func(c *Config) any { return &c.StuckAfter },
	},
	{
		name: "max-stuck", kind: kindInt, group: groupWorkers, arg: "N",
		defText: "--workers",
		help:    "Most stuck workers set aside at once (each is a process until its request ends). 0 = as many as --workers.",
		field:   func(c *Config) any { return &c.MaxStuck },
	},
	{
		name: "warmup-path", kind: kindString, group: groupWorkers, arg: "PATH",
		help:  "Send each new worker one GET for this path before it takes traffic, so lazy imports and caches are warm. Empty = none.",
		field: func(c *Config) any { return &c.WarmupPath },
		check: func(v any) error {
			if s := v.(string); s != "" && !strings.HasPrefix(s, "/") {
				return fmt.Errorf("want a path starting with /, got %q", s)
			}
			return nil
		},
	},
	{
		name: "max-requests", kind: kindInt, group: groupWorkers, arg: "N",
		help:  "Replace a worker after it has served this many requests (the new one is ready before the old one stops). 0 = never.",
		field: func(c *Config) any { return &c.MaxRequests },
	},
	{
		name: "max-requests-jitter", kind: kindInt, group: groupWorkers, arg: "N",
		help:  "Add a random 0..N to each worker's --max-requests, so workers do not all recycle at once.",
		field: func(c *Config) any { return &c.MaxRequestsJitter },
	},
	{
		name: "max-lifetime", kind: kindDuration, group: groupWorkers, arg: "DURATION",
		help:  "Replace a worker after it has run this long. 0 = never.",
		field: func(c *Config) any { return &c.MaxLifetime },
	},
	{
		name: "max-lifetime-jitter", kind: kindDuration, group: groupWorkers, arg: "DURATION",
		help:  "Add a random 0..DURATION to each worker's --max-lifetime.",
		field: func(c *Config) any { return &c.MaxLifetimeJitter },
	},
	{
		name: "max-rss", kind: kindInt, group: groupWorkers, arg: "MIB",
		help:  "Replace a worker whose resident memory exceeds this many MiB (checked every second). 0 = never.",
		field: func(c *Config) any { return &c.MaxRSS },
	},
	{
		name: "reload", kind: kindBool, group: groupWorkers,
		help:  "Development: when a source file of the app changes, restart the workers (rolling, like SIGHUP).",
		field: func(c *Config) any { return &c.Reload },
	},
	{
		name: "reload-extra", kind: kindList, group: groupWorkers, arg: "GLOB", split: true,
		help:  "With --reload, also watch files matching this glob (relative to the app directory), e.g. 'templates/*.html'. Repeatable.",
		field: func(c *Config) any { return &c.ReloadExtra },
	},
	// ASGI & WebSockets
	{
		name: "interface", kind: kindString, group: groupASGI, arg: "INTERFACE", def: "auto",
		choices: []string{"auto", "asgi", "wsgi"},
		help:    "What the app is: auto (each worker looks: an async def function, or an object with an async __call__ method, is ASGI 3; a class with one is ASGI 2; anything else is WSGI), asgi or wsgi. An ASGI --worker-class means asgi. See docs/asgi.md.",
		field:   func(c *Config) any { return &c.Interface },
	},
	{
		name: "worker-connections", kind: kindInt, group: groupASGI, arg: "N", def: "1000",
		help:  "ASGI: requests (HTTP and WebSocket) one worker runs at once, in its event loop (gunicorn's name). Beyond, requests wait in corral's queue (--max-queue, --queue-timeout). WSGI workers use --threads instead.",
		check: intRange(1, 0),
		field: func(c *Config) any { return &c.WorkerConnections },
	},
	{
		name: "lifespan", kind: kindString, group: groupASGI, arg: "MODE", def: "auto",
		choices: []string{"auto", "on", "off"},
		help:    "ASGI lifespan events, as uvicorn's --lifespan: on runs startup in each worker before it takes requests (a failed startup stops corral with the app's message) and shutdown when it exits; auto does the same but serves an app that does not support lifespan without it; off never runs them.",
		field:   func(c *Config) any { return &c.Lifespan },
	},
	{
		name: "ws-max-size", kind: kindSize, group: groupASGI, arg: "SIZE", def: "16M",
		help: "Largest WebSocket message a client may send (after decompression); a larger one closes the socket with 1009. At least 1.",
		check: func(v any) error {
			if v.(int64) < 1 {
				return errors.New("must be at least 1 byte")
			}
			return nil
		},
		field: func(c *Config) any { return &c.WSMaxSize },
	},
	{
		name: "ws-ping-interval", kind: kindDuration, group: groupASGI, arg: "DURATION", def: "20s",
		help:  "Send each WebSocket client a ping this often (corral answers the client's pings itself, always). 0 = never.",
		field: func(c *Config) any { return &c.WSPingInterval },
	},
	{
		name: "ws-ping-timeout", kind: kindDuration, group: groupASGI, arg: "DURATION", def: "20s",
		help:  "Close a WebSocket with 1011 when the client has not answered a ping within this time. 0 = wait forever.",
		field: func(c *Config) any { return &c.WSPingTimeout },
	},
	{
		name: "ws-per-message-deflate", kind: kindBool, group: groupASGI, def: "true",
		help:  "Offer WebSocket compression (permessage-deflate, without context takeover so an idle socket holds no compressor) to clients that ask for it. --ws-per-message-deflate=false turns it off.",
		field: func(c *Config) any { return &c.WSPerMessageDeflate },
	},

	// Listening
	{
		name: "bind", short: "b", kind: kindList, group: groupListen, arg: "ADDRESS", def: "127.0.0.1:8000",
		help:  "Address to listen on. Repeatable. HOST:PORT, [IPV6]:PORT, :PORT (all interfaces), unix:PATH, fd://N (an inherited descriptor) or systemd:NAME (a socket-activated descriptor by name).",
		field: func(c *Config) any { return &c.bind },
		typed: func(c *Config) any { return &c.Bind },
		parse: parseBinds,
	},
	{
		name: "backlog", kind: kindInt, group: groupListen, arg: "N", def: "2048",
		help:  "Listen backlog: connections the kernel holds before corral accepts them (the system's somaxconn caps it). 0 = the system default.",
		field: func(c *Config) any { return &c.Backlog },
	},
	{
		name: "admin-bind", kind: kindString, group: groupListen, arg: "ADDRESS",
		defText: "RUNTIME_DIR/PID.sock",
		help:    "Address of the admin API (status, health and readiness probes): unix:PATH, a path, or HOST:PORT (on TCP, callers from other hosts need --admin-token). Never served on the public listener. By default a socket named after corral's pid in the runtime directory ($RUNTIME_DIRECTORY, else $XDG_RUNTIME_DIR/corral, else /run/corral for root, else a per-user temporary directory), which is where 'corral status' looks. off = no admin API.",
		field:   func(c *Config) any { return &c.AdminBind },
	},
	{
		name: "admin-token", kind: kindString, group: groupListen, arg: "TOKEN",
		help: "Bearer token for an admin API on TCP: callers on a loopback address need none, callers from other hosts must send 'Authorization: Bearer TOKEN' " +
			"(without --admin-token they are refused, except /healthz, /readyz and the status page's HTML). " +
			"Prefer CORRAL_ADMIN_TOKEN or the config file to the command line, which other local users can read. No effect on a Unix socket, whose file mode protects it.",
		field: func(c *Config) any { return &c.AdminToken },
	},
	{
		name: "max-connections", kind: kindInt, group: groupListen, arg: "N", def: "10000",
		help:  "Most client connections open at once, over every --bind address; more wait in the backlog. 0 = no limit.",
		field: func(c *Config) any { return &c.MaxConnections },
	},
	{
		name: "reuse-port", kind: kindBool, group: groupListen,
		help:  "Set SO_REUSEPORT on the TCP sockets corral opens, so several corral instances can listen on the same port and the kernel spreads new connections among them. A stopping instance hands over its queued connections; set the sysctl net.ipv4.tcp_migrate_req=1 to also move connections caught mid-handshake.",
		field: func(c *Config) any { return &c.ReusePort },
	},
	{
		name: "umask", short: "m", kind: kindString, group: groupListen, arg: "MASK", def: "0",
		help:  "Permission bits (octal: 007, 0o22) taken away from the Unix sockets corral creates, as gunicorn's --umask: 0 lets every local user connect (as on a loopback port), 007 only the socket's owner and group. Sockets are owned by --user and --group when those are given.",
		field: func(c *Config) any { return &c.umask },
		typed: func(c *Config) any { return &c.Umask },
		parse: parseUmaskOption,
	},
	{
		name: "proxy-protocol", kind: kindBool, group: groupListen,
		help:  "Read a PROXY protocol header (v1 or v2, as HAProxy's send-proxy and send-proxy-v2 write) at the start of each connection from a trusted peer (--forwarded-allow-ips, and any peer on a Unix socket); the client address it names becomes REMOTE_ADDR. The header is optional from trusted peers; a connection from any other peer that sends one is closed.",
		field: func(c *Config) any { return &c.ProxyProtocol },
	},
	{
		name: "forwarded-allow-ips", kind: kindList, group: groupListen, arg: "ADDRS", def: "127.0.0.1,::1", split: true,
		help:  "Proxies trusted to tell the client's address: comma-separated IP addresses and CIDR prefixes (10.0.0.0/8), or * for every peer. Peers on a Unix socket are always trusted. Repeatable.",
		field: func(c *Config) any { return &c.forwardedAllowIPs },
		typed: func(c *Config) any { return &c.ForwardedAllowIPs },
		parse: parseTrusted,
	},

	// TLS & HTTP/2
	{
		name: "certfile", kind: kindString, group: groupTLS, arg: "FILE",
		help:  "PEM certificate (with its chain) that turns on TLS for every listener, with HTTP/2 negotiated by ALPN. TLS 1.2 and newer only. The certificate and key are read again when their files change and on SIGHUP, without dropping connections; the files must stay readable by --user.",
		field: func(c *Config) any { return &c.CertFile },
	},
	{
		name: "keyfile", kind: kindString, group: groupTLS, arg: "FILE",
		defText: "the key in --certfile",
		help:    "PEM private key of --certfile.",
		field:   func(c *Config) any { return &c.KeyFile },
	},
	{
		name: "ca-certs", kind: kindString, group: groupTLS, arg: "FILE",
		help:  "PEM bundle of the certificate authorities client certificates are checked against (see --cert-reqs). Reloaded with the certificate.",
		field: func(c *Config) any { return &c.CACerts },
	},
	{
		name: "cert-reqs", kind: kindString, group: groupTLS, arg: "MODE", def: "none",
		choices: []string{"none", "optional", "required"},
		help:    "Client certificates: none (not asked for), optional (checked against --ca-certs when given) or required (a handshake without a valid one fails).",
		field:   func(c *Config) any { return &c.certReqs },
		typed:   func(c *Config) any { return &c.CertReqs },
		parse:   parseCertReqs,
	},
	{
		name: "h2c", kind: kindBool, group: groupTLS,
		help:  "Also serve HTTP/2 without TLS (prior knowledge, as a proxy such as HAProxy with proto h2 speaks it) on plain listeners. For use behind a proxy; browsers speak HTTP/2 only over TLS.",
		field: func(c *Config) any { return &c.H2C },
	},
	{
		name: "http1", kind: kindString, group: groupTLS, arg: "SERVER", def: "corral",
		choices: []string{"corral", "net/http"},
		help:    "Who serves HTTP/1.x on plain listeners: corral (its own fast path for requests without a body, which hands every other connection to Go's net/http, with the same answers and a fifth to a third less of the master's CPU per request) or net/http (Go's server for everything, as before). TLS listeners always use net/http. See docs/http.md.",
		field:   func(c *Config) any { return &c.HTTP1 },
	},

	// Privileges
	{
		name: "user", short: "u", kind: kindString, group: groupPrivileges, arg: "USER",
		help:  "Run the workers as this user (name or numeric id). Started as root, corral opens its sockets first, then switches to this user (and --group) itself before it starts any worker.",
		check: checkAccount,
		field: func(c *Config) any { return &c.User },
	},
	{
		name: "group", short: "g", kind: kindString, group: groupPrivileges, arg: "GROUP",
		defText: "the user's primary group",
		help:    "Group (name or numeric id) to run as with --user.",
		check:   checkAccount,
		field:   func(c *Config) any { return &c.Group },
	},
	{
		name: "allow-root", kind: kindBool, group: groupPrivileges,
		help:  "Let the app run as root. Without it corral refuses to start as root unless --user names another account.",
		field: func(c *Config) any { return &c.AllowRoot },
	},

	// Timeouts & limits
	{
		name: "timeout", short: "t", kind: kindDuration, group: groupLimits, arg: "DURATION", def: "30s",
		help:  "Hard limit on the time a worker spends on one request; past it the request fails and the worker is replaced. For an ASGI app the request gets 504 and its task is cancelled, the worker goes on; the limit ends once the response has started (a stream such as SSE runs as long as its client stays) and WebSockets are exempt; a blocked event loop gets its worker replaced after this long. 0 = no limit.",
		field: func(c *Config) any { return &c.Timeout },
	},
	{
		name: "route-timeout", kind: kindList, group: groupLimits, arg: "PATTERN=DURATION",
		help:  "Override --timeout for request paths matching PATTERN, where * matches anything (slashes too), e.g. '/reports/*=120s'. Repeatable; the first match wins.",
		field: func(c *Config) any { return &c.routeTimeouts },
		typed: func(c *Config) any { return &c.RouteTimeouts },
		parse: parseRouteTimeouts,
	},
	{
		name: "slow-request", kind: kindDuration, group: groupLimits, arg: "DURATION",
		help:  "Log the Python stack of a request once it has run this long, with its method and path; the request goes on (ASGI: the request is logged, without a stack: a waiting coroutine is on no thread's stack; blocked event loops are reported by themselves). 0 = off.",
		field: func(c *Config) any { return &c.SlowRequest },
	},
	{
		name: "graceful-timeout", kind: kindDuration, group: groupLimits, arg: "DURATION", def: "30s",
		help:  "On shutdown or reload, how long running requests may go on before their workers are killed. 0 = kill at once.",
		field: func(c *Config) any { return &c.GracefulTimeout },
	},
	{
		name: "keep-alive", kind: kindDuration, group: groupLimits, arg: "DURATION", def: "60s",
		help:  "How long an idle client connection stays open waiting for its next request. 0 disables keep-alive.",
		field: func(c *Config) any { return &c.KeepAlive },
	},
	{
		name: "max-queue", kind: kindInt, group: groupLimits, arg: "N", def: "1024",
		help:  "Requests that may wait for a free worker; more are refused with 503. 0 = none wait.",
		field: func(c *Config) any { return &c.MaxQueue },
	},
	{
		name: "queue-timeout", kind: kindDuration, group: groupLimits, arg: "DURATION", def: "10s",
		help:  "Longest a request waits for a free worker before it is refused with 503. 0 = no limit.",
		field: func(c *Config) any { return &c.QueueTimeout },
	},
	{
		name: "header-timeout", kind: kindDuration, group: groupLimits, arg: "DURATION", def: "10s",
		help:  "Time a client has to send the request line and headers. 0 = no limit.",
		field: func(c *Config) any { return &c.HeaderTimeout },
	},
	{
		name: "body-timeout", kind: kindDuration, group: groupLimits, arg: "DURATION", def: "60s",
		help:  "Longest idle time between two reads of a request body. 0 = no limit.",
		field: func(c *Config) any { return &c.BodyTimeout },
	},
	{
		name: "send-timeout", kind: kindDuration, group: groupLimits, arg: "DURATION", def: "60s",
		help:  "Longest idle time between two writes of a response. 0 = no limit.",
		field: func(c *Config) any { return &c.SendTimeout },
	},
	{
		name: "limit-request-line", kind: kindInt, group: groupLimits, arg: "BYTES", def: "4094",
		help:  fmt.Sprintf("Longest request line (method, target and version) in bytes, at most %d. 0 = %d.", maxRequestLine, maxRequestLine),
		check: intRange(0, maxRequestLine),
		field: func(c *Config) any { return &c.LimitRequestLine },
	},
	{
		name: "limit-request-fields", kind: kindInt, group: groupLimits, arg: "N", def: "100",
		help:  fmt.Sprintf("Most header fields in a request, at most %d. 0 = as many as fit in a worker frame.", maxRequestFields),
		check: intRange(0, maxRequestFields),
		field: func(c *Config) any { return &c.LimitRequestFields },
	},
	{
		name: "limit-request-field_size", kind: kindInt, group: groupLimits, arg: "BYTES", def: "8190",
		help:  "Longest header field (name and value) in bytes. 0 = as long as fits in a worker frame.",
		check: intRange(0, frameLimit),
		field: func(c *Config) any { return &c.LimitRequestFieldSize },
	},
	{
		name: "max-body-size", kind: kindSize, group: groupLimits, arg: "SIZE", def: "100M",
		help:  "Largest request body; a larger one is refused with 413. 0 = no limit.",
		field: func(c *Config) any { return &c.MaxBodySize },
	},

	// Logging
	{
		name: "access-logfile", kind: kindString, group: groupLog, arg: "FILE",
		defText: "off",
		help:    "Write the access log to this file; - for standard output. Empty = no access log.",
		field:   func(c *Config) any { return &c.AccessLogFile },
	},
	{
		name: "access-log-format", kind: kindString, group: groupLog, arg: "FORMAT", def: "combined",
		choices: []string{"combined", "json"},
		help:    "combined (the Apache/nginx format) or json (one object per line).",
		field:   func(c *Config) any { return &c.AccessLogFormat },
	},
	{
		name: "access-logformat", kind: kindString, group: groupLog, arg: "FORMAT",
		help: "A gunicorn access log format, which replaces --access-log-format: " + "`" + `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"` + "`" + ` is gunicorn's default. ` +
			"Every gunicorn atom works, with %({header}i)s, %({header}o)s and %({variable}e)s; an unknown one prints -, as gunicorn. See docs/observability.md.",
		field: func(c *Config) any { return &c.accessLogformat },
		typed: func(c *Config) any { return &c.AccessLogParts },
		parse: parseAccessLogformat,
	},
	{
		name: "request-id-header", kind: kindString, group: groupLog, arg: "NAME", def: "X-Request-ID",
		help:  "The header that carries request IDs: taken from trusted proxies (--forwarded-allow-ips), else made by corral; passed to the app (HTTP_X_REQUEST_ID), written to the access log and the journal, and sent back in the response unless the app sends its own. off = no request IDs (and no header added).",
		field: func(c *Config) any { return &c.requestIDHeader },
		typed: func(c *Config) any { return &c.RequestIDHeader },
		parse: parseRequestIDHeader,
	},
	{
		name: "journal", kind: kindString, group: groupLog, arg: "PATH",
		defText: "off",
		help:    "Record every request in this SQLite database (WAL mode; a table named requests), written in batches off the request path; corral journal top|slow|errors|clients reads it. Litestream can replicate it: see docs/deploy.md.",
		field:   func(c *Config) any { return &c.Journal },
	},
	{
		name: "journal-max-age", kind: kindDuration, group: groupLog, arg: "DURATION", def: "168h",
		help:  "Delete journal rows older than this (checked every minute). 0 = keep them.",
		field: func(c *Config) any { return &c.JournalMaxAge },
	},
	{
		name: "journal-max-size", kind: kindSize, group: groupLog, arg: "SIZE", def: "1G",
		help:  "Delete the oldest journal rows while the rows take more than this (checked every minute); freed pages go back to the file system. 0 = no limit.",
		field: func(c *Config) any { return &c.JournalMaxSize },
	},
	{
		name: "journal-flush-interval", kind: kindDuration, group: groupLog, arg: "DURATION", def: "1s",
		help: "The journal's flush window: rows are committed in one transaction at least this often, so a crash loses at most the last window.",
		check: func(v any) error {
			if v.(time.Duration) <= 0 {
				return errors.New("must be more than 0")
			}
			return nil
		},
		field: func(c *Config) any { return &c.JournalFlushInterval },
	},
	{
		name: "error-logfile", kind: kindString, group: groupLog, arg: "FILE", def: "-",
		help:  "Write corral's own log to this file; - for standard error.",
		field: func(c *Config) any { return &c.ErrorLogFile },
	},
	{
		name: "log-level", kind: kindString, group: groupLog, arg: "LEVEL", def: "info",
		choices: []string{"debug", "info", "warning", "error", "critical"},
		help:    "Least severe messages to log: debug, info, warning, error or critical.",
		field:   func(c *Config) any { return &c.LogLevel },
	},

	// Metrics (Prometheus /metrics and the status page are on the admin
	// listener; these are gunicorn's statsd options)
	{
		name: "statsd-host", kind: kindString, group: groupMetrics, arg: "ADDRESS",
		defText: "off",
		help: "Send gunicorn's statsd metrics (gunicorn.requests, gunicorn.request.duration, gunicorn.request.status.CODE, gunicorn.workers, gunicorn.log.*) " +
			"over UDP to HOST:PORT (port 8125 if left out), or to a Unix datagram socket with unix:PATH. Sends never block requests: when the buffer is full, metrics are dropped and counted.",
		field: func(c *Config) any { return &c.StatsdHost },
		check: checkStatsdHost,
	},
	{
		name: "statsd-prefix", kind: kindString, group: groupMetrics, arg: "PREFIX",
		help:  "Prefix for the statsd metric names, as gunicorn's: a dot is added when it does not end with one (app → app.gunicorn.requests).",
		field: func(c *Config) any { return &c.StatsdPrefix },
	},
	{
		name: "dogstatsd-tags", kind: kindString, group: groupMetrics, arg: "TAGS",
		help:  "Comma-separated DogStatsD tags (env:prod,service:shop) appended to every statsd metric as |#TAGS, as gunicorn does.",
		field: func(c *Config) any { return &c.DogstatsdTags },
	},

	// Static files
	{
		name: "static", kind: kindList, group: groupStatic, arg: "PREFIX=DIR", table: true,
		help: "Serve the files in DIR under the URL prefix PREFIX (like /static=static), from corral itself: no worker is involved. " +
			"A relative DIR is relative to --chdir, else to the current directory. Repeatable. GET and HEAD only; " +
			"directories answer with their index.html or 404, dotfiles and paths leaving DIR with 404. " +
			"In a config file, an array of \"PREFIX=DIR\" strings or a table.",
		field: func(c *Config) any { return &c.static },
		typed: func(c *Config) any { return &c.Static },
		parse: parseStatic,
	},
	{
		name: "static-max-age", kind: kindDuration, group: groupStatic, arg: "DURATION", def: "1h",
		help:  "How long clients and caches may reuse a static file without asking again (Cache-Control: public, max-age). 0 = always revalidate (no-cache), which the ETag makes cheap.",
		field: func(c *Config) any { return &c.StaticMaxAge },
	},

	// Guard
	{
		name: "no-guard", kind: kindBool, group: groupGuard,
		help: "Turn the request guard off: no jails, bans, limits or route checks (client identity behind trusted proxies still applies). " +
			"The guard's jails, lists, limits and priority classes are set in the [guard] table of the config file; see docs/guard.md.",
		field: func(c *Config) any { return &c.NoGuard },
	},
	{
		name: "strict-routes", kind: kindBool, group: groupGuard,
		help:  "Answer 404 from corral, without a worker, to requests for paths outside the routes the app reported (Flask, Django). No effect on apps whose routes corral learns from answers.",
		field: func(c *Config) any { return &c.StrictRoutes },
	},
	{
		name: "state-dir", kind: kindString, group: groupGuard, arg: "DIR",
		defText: "see below",
		help:    "Directory for state kept across restarts: the ban store (bans.db, SQLite). By default systemd's StateDirectory ($STATE_DIRECTORY), else /var/lib/corral for root, else $XDG_STATE_HOME/corral, else ~/.local/state/corral.",
		field:   func(c *Config) any { return &c.StateDir },
	},
	{
		name: "guard-store", kind: kindString, group: groupGuard, arg: "URL", noFile: true,
		defText: "none",
		help: "Share bans, jail counts and rate limits with the other corral instances of a fleet through Redis or Valkey: " +
			"redis://[USER:PASSWORD@]HOST:PORT/DB, rediss://...[?ca=FILE&cert=FILE&key=FILE] (TLS) or unix:///PATH?db=N. In a config file, store in the [guard] table. " +
			"Only answers that count against a jail, and requests of clients near a jail's threshold, wait for the store (one call within store_timeout), " +
			"and corral keeps serving with its own guard while it is down; see docs/fleet.md.",
		check: func(v any) error { return checkStoreURL(v.(string)) },
		field: func(c *Config) any { return &c.GuardStore },
	},
}
