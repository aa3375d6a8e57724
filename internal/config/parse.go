package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"corral/internal/addrset"
	"corral/internal/logformat"
)

// parseText parses the text of a flag or environment variable for o.
// For lists, split says whether commas separate entries.
func parseText(o *option, s string, split bool) (any, error) {
	switch o.kind {
	case kindInt:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("want %s, got %q", o.kind.want(), s)
		}
		return n, nil
	case kindBool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("want %s, got %q", o.kind.want(), s)
		}
		return b, nil
	case kindDuration:
		return parseDuration(s)
	case kindSize:
		return parseSize(s)
	case kindList:
		if !split {
			return []string{s}, nil
		}
		return splitList(s), nil
	default:
		return s, nil
	}
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty entries.
func splitList(s string) []string {
	out := []string{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parseTOML converts a value decoded from a config file for o.
func parseTOML(o *option, v any) (any, error) {
	bad := func() error { return fmt.Errorf("want %s, got %s", o.kind.want(), describe(v)) }
	switch o.kind {
	case kindString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case kindInt:
		if n, ok := v.(int64); ok {
			if n > math.MaxInt || n < math.MinInt {
				return nil, fmt.Errorf("%d is out of range", n)
			}
			return int(n), nil
		}
	case kindBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case kindDuration:
		switch x := v.(type) {
		case int64:
			return secondsDuration(float64(x), strconv.FormatInt(x, 10))
		case float64:
			return secondsDuration(x, strconv.FormatFloat(x, 'g', -1, 64))
		case string:
			return parseDuration(x)
		}
	case kindSize:
		switch x := v.(type) {
		case int64:
			return x, nil
		case string:
			return parseSize(x)
		}
	case kindList:
		switch x := v.(type) {
		case string:
			return parseText(o, x, o.split)
		case []any:
			out := make([]string, 0, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("want %s, got %s at index %d", o.kind.want(), describe(e), i)
				}
				out = append(out, s)
			}
			return out, nil
		case map[string]any:
			if !o.table {
				break
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			out := make([]string, 0, len(x))
			for _, k := range keys {
				var s string
				switch e := x[k].(type) {
				case string:
					s = e
				case int64:
					s = strconv.FormatInt(e, 10)
				case float64:
					s = strconv.FormatFloat(e, 'g', -1, 64)
				case bool:
					s = strconv.FormatBool(e)
				default:
					return nil, fmt.Errorf("key %q: want a string, got %s", k, describe(e))
				}
				out = append(out, k+"="+s)
			}
			return out, nil
		}
	}
	return nil, bad()
}

// describe names a decoded TOML value for error messages: `string "four"`.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("string %q", x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		return "float " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return fmt.Sprintf("boolean %t", x)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return "a date or time" // the only other TOML values
	}
}

// parseDuration parses a duration: a bare number of seconds ("30", "0.5")
// or a Go duration ("500ms", "2m", "1h30m"). Negative values parse; Load
// refuses them.
func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(t, 64); err == nil && isDecimal(t) {
		return secondsDuration(f, s)
	}
	d, err := time.ParseDuration(t)
	if err != nil || t == "" {
		return 0, fmt.Errorf("want %s, got %q", kindDuration.want(), s)
	}
	return d, nil
}

// isDecimal reports whether s is a plain decimal number (no exponent, hex,
// Inf or NaN, which strconv.ParseFloat also accepts).
func isDecimal(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if s == "" || s == "." {
		return false
	}
	dot := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
		case r == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return true
}

func secondsDuration(sec float64, text string) (time.Duration, error) {
	ns := sec * float64(time.Second)
	if math.IsNaN(ns) || ns >= math.MaxInt64 || ns <= math.MinInt64 {
		return 0, fmt.Errorf("duration %s is out of range", text)
	}
	return time.Duration(math.Round(ns)), nil
}

// sizeUnit returns the multiplier of a size suffix (any case); all are
// binary.
func sizeUnit(suffix string) (int64, bool) {
	switch strings.ToLower(suffix) {
	case "", "b":
		return 1, true
	case "k", "kib":
		return 1 << 10, true
	case "m", "mib":
		return 1 << 20, true
	case "g", "gib":
		return 1 << 30, true
	}
	return 0, false
}

// parseSize parses a size in bytes: a whole number, optionally followed by
// K, M or G (also KiB, MiB, GiB, any case), all binary multiples: "64K" is
// 65536.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	mult, ok := sizeUnit(strings.TrimSpace(t[i:]))
	if i == 0 || !ok {
		return 0, fmt.Errorf("want %s, got %q", kindSize.want(), s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is out of range", s)
	}
	return n * mult, nil
}

// Bind is a listen address, parsed.
type Bind struct {
	// Network is "tcp", "unix", "fd" or "systemd".
	Network string
	// Address is HOST:PORT for tcp (HOST empty for all interfaces, IPv6
	// in brackets), the socket path for unix, the descriptor number for fd
	// and the FileDescriptorName for systemd.
	Address string
	// FD is the descriptor number for "fd", else 0.
	FD int
}

// String is the address in the form --bind takes: HOST:PORT, unix:PATH,
// fd://N or systemd:NAME.
func (b Bind) String() string {
	switch b.Network {
	case "unix", "systemd":
		return b.Network + ":" + b.Address
	case "fd":
		return "fd://" + b.Address
	}
	return b.Address
}

// parseBind parses a listen address without opening it. Accepted:
// HOST:PORT, [IPV6]:PORT, :PORT, unix:PATH (also unix://PATH), fd://N and
// systemd:NAME; a tcp:// prefix is ignored, as gunicorn does.
func parseBind(s string) (Bind, error) {
	const forms = "want HOST:PORT, [IPV6]:PORT, :PORT, unix:PATH, fd://N or systemd:NAME"
	switch {
	case strings.HasPrefix(s, "unix:"):
		path := strings.TrimPrefix(strings.TrimPrefix(s, "unix:"), "//")
		if path == "" || strings.ContainsRune(path, 0) {
			return Bind{}, fmt.Errorf("bind %q: want unix:PATH with a socket path", s)
		}
		return Bind{Network: "unix", Address: path}, nil
	case strings.HasPrefix(s, "fd://"):
		n, err := strconv.Atoi(s[len("fd://"):])
		if err != nil || n < 0 || !isDigits(s[len("fd://"):]) {
			return Bind{}, fmt.Errorf("bind %q: want fd://N with a descriptor number", s)
		}
		return Bind{Network: "fd", Address: strconv.Itoa(n), FD: n}, nil
	case strings.HasPrefix(s, "systemd:"):
		name := s[len("systemd:"):]
		if name == "" || len(name) > 255 {
			return Bind{}, fmt.Errorf("bind %q: want systemd:NAME with the socket unit's FileDescriptorName", s)
		}
		for _, r := range name {
			if r <= ' ' || r > '~' || r == ':' {
				return Bind{}, fmt.Errorf("bind %q: a FileDescriptorName is printable ASCII without spaces or ':'", s)
			}
		}
		return Bind{Network: "systemd", Address: name}, nil
	}
	addr := strings.TrimPrefix(s, "tcp://")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if !strings.Contains(addr, ":") {
			return Bind{}, fmt.Errorf("bind %q: missing port (%s)", s, forms)
		}
		return Bind{}, fmt.Errorf("bind %q: %s", s, forms)
	}
	if p, err := strconv.Atoi(port); err != nil || !isDigits(port) || p > 65535 {
		return Bind{}, fmt.Errorf("bind %q: port %q is not a number from 0 to 65535", s, port)
	}
	if host != "" && !validHost(host) {
		return Bind{}, fmt.Errorf("bind %q: %q is not an IP address or host name", s, host)
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(addr, "[") {
		return Bind{}, fmt.Errorf("bind %q: put an IPv6 address in brackets: [%s]:%s", s, host, port)
	}
	return Bind{Network: "tcp", Address: net.JoinHostPort(host, port)}, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// validHost accepts an IP address (with an optional IPv6 zone) or a DNS name.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}

// Checks used by the option table.

func intRange(lo, hi int) func(any) error {
	return func(v any) error {
		n := v.(int)
		if n < lo {
			return fmt.Errorf("must be at least %d, got %d", lo, n)
		}
		if hi > 0 && n > hi {
			return fmt.Errorf("must be at most %d, got %d", hi, n)
		}
		return nil
	}
}

// each applies check to every entry of a list.
func each(check func(string) error) func(any) error {
	return func(v any) error {
		for _, s := range v.([]string) {
			if err := check(s); err != nil {
				return err
			}
		}
		return nil
	}
}

func checkEnvEntry(s string) error {
	k, _, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if strings.ContainsRune(s, 0) {
		return fmt.Errorf("%q contains a NUL byte", s)
	}
	return nil
}

// StaticMount is one --static entry: a URL prefix served from a
// directory.
type StaticMount struct {
	// Prefix is a clean URL path below /, without a trailing slash:
	// "/static".
	Prefix string
	// Dir is the directory, absolute: a relative DIR is taken relative to
	// Chdir, itself relative to the working directory given to Load.
	// Whether it exists is checked when the server starts.
	Dir string
}

// parseStatic parses the --static entries. Dir is left as given; Load
// makes it absolute.
func parseStatic(v any) (any, error) {
	specs := v.([]string)
	out := make([]StaticMount, 0, len(specs))
	seen := make(map[string]bool, len(specs))
	for _, s := range specs {
		m, err := parseStaticMount(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		if seen[m.Prefix] {
			return nil, fmt.Errorf("%q: prefix %s is mounted twice", s, m.Prefix)
		}
		seen[m.Prefix] = true
		out = append(out, m)
	}
	return out, nil
}

// parseStaticMount parses one "PREFIX=DIR" entry. The prefix loses a
// trailing slash and must then be a clean URL path below /.
func parseStaticMount(s string) (StaticMount, error) {
	prefix, dir, ok := strings.Cut(s, "=")
	if !ok || dir == "" {
		return StaticMount{}, errors.New("want PREFIX=DIR, like /static=static")
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return StaticMount{}, errors.New("the prefix / would hide the application; mount a path such as /static")
	}
	if !strings.HasPrefix(prefix, "/") || path.Clean(prefix) != prefix || strings.ContainsAny(prefix, "\\?#\x00") {
		return StaticMount{}, errors.New("the prefix must be a clean URL path starting with /, like /static")
	}
	return StaticMount{Prefix: prefix, Dir: dir}, nil
}

// parseBinds parses --bind: at least one address.
func parseBinds(v any) (any, error) {
	specs := v.([]string)
	if len(specs) == 0 {
		return nil, errors.New("no address to listen on")
	}
	binds := make([]Bind, 0, len(specs))
	for _, s := range specs {
		b, err := parseBind(s)
		if err != nil {
			return nil, err
		}
		binds = append(binds, b)
	}
	return binds, nil
}

// parseTrusted parses --forwarded-allow-ips.
func parseTrusted(v any) (any, error) {
	s, err := addrset.Parse(v.([]string))
	if err != nil {
		return nil, fmt.Errorf("trusted proxy %w", err)
	}
	return s, nil
}

// parseUmask parses a umask as gunicorn does: octal with a leading 0 or
// 0o (007, 0o22), else decimal. It is at most 0777.
func parseUmask(s string) (os.FileMode, error) {
	t := strings.TrimSpace(s)
	base := 10
	switch {
	case strings.HasPrefix(t, "0o"), strings.HasPrefix(t, "0O"):
		t, base = t[2:], 8
	case len(t) > 1 && t[0] == '0':
		t, base = t[1:], 8
	}
	n, err := strconv.ParseUint(t, base, 32)
	if err != nil || !isDigits(t) || n > 0o777 {
		return 0, fmt.Errorf("umask %q: want permission bits from 0 to 0777, in octal like 007 or 0o22", s)
	}
	return os.FileMode(n), nil
}

// parseUmaskOption parses --umask.
func parseUmaskOption(v any) (any, error) { return parseUmask(v.(string)) }

// parseCertReqs turns --cert-reqs, one of its choices, into the
// tls.ClientAuthType it stands for.
func parseCertReqs(v any) (any, error) {
	switch v.(string) {
	case "none":
		return tls.NoClientCert, nil
	case "optional":
		return tls.VerifyClientCertIfGiven, nil
	case "required":
		return tls.RequireAndVerifyClientCert, nil
	}
	return nil, fmt.Errorf("want none, optional or required, got %q", v)
}

// checkAccount accepts a user or group name or a numeric id; whether it
// exists is checked when corral starts, on the machine it runs on.
func checkAccount(v any) error {
	s := v.(string)
	if strings.ContainsAny(s, ":\x00\n") || strings.TrimSpace(s) != s {
		return fmt.Errorf("%q is not a user or group name", s)
	}
	return nil
}

// asgiWorkerClasses are the ASGI worker classes of gunicorn and uvicorn
// (lower case) that mean --interface asgi.
var asgiWorkerClasses = []string{
	"asgi",
	"uvicorn.workers.uvicornworker", "uvicorn.workers.uvicornh11worker",
	"uvicorn_worker.uvicornworker", "uvicorn_worker.uvicornh11worker",
}

// ASGIWorkerClass reports whether class is an ASGI worker class.
func ASGIWorkerClass(class string) bool {
	return slices.Contains(asgiWorkerClasses, strings.ToLower(strings.TrimSpace(class)))
}

func checkWorkerClass(v any) error {
	s := v.(string)
	switch strings.ToLower(s) {
	case "sync", "gthread":
		return nil
	case "gevent", "eventlet", "tornado", "gaiohttp", "ggevent", "geventwebsocket.gunicorn.workers.geventwebsocketworker":
		return fmt.Errorf("worker class %q: corral runs apps in its own Python workers and has no %s worker; "+
			"use --threads N to run N requests at once in each worker (slow clients never hold a worker: corral buffers them), "+
			"or serve an ASGI app (--worker-connections)", s, s)
	}
	if ASGIWorkerClass(s) {
		return nil
	}
	return fmt.Errorf("worker class %q: corral runs apps in its own workers and accepts sync, gthread, or an ASGI class "+
		"(asgi, uvicorn.workers.UvicornWorker, uvicorn.workers.UvicornH11Worker); use --threads or --worker-connections for concurrency", s)
}

func positive(v any) error {
	if d, ok := v.(time.Duration); ok && d <= 0 {
		return fmt.Errorf("must be more than 0, got %v", d)
	}
	return nil
}

// RouteTimeout is one --route-timeout entry.
type RouteTimeout struct {
	// Pattern starts with / or *; * matches any run of characters,
	// slashes included.
	Pattern string
	// Timeout replaces --timeout for the paths Pattern matches; 0 keeps
	// --timeout.
	Timeout time.Duration
}

// parseRouteTimeout parses "PATTERN=DURATION".
func parseRouteTimeout(s string) (RouteTimeout, error) {
	i := strings.LastIndexByte(s, '=')
	if i <= 0 {
		return RouteTimeout{}, fmt.Errorf("want PATTERN=DURATION (like '/reports/*=120s'), got %q", s)
	}
	pattern, dur := s[:i], s[i+1:]
	if !strings.HasPrefix(pattern, "/") && !strings.HasPrefix(pattern, "*") {
		return RouteTimeout{}, fmt.Errorf("%q: PATTERN must start with / or *", s)
	}
	d, err := parseDuration(dur)
	if err != nil {
		return RouteTimeout{}, fmt.Errorf("%q: %w", s, err)
	}
	if d < 0 {
		return RouteTimeout{}, fmt.Errorf("%q: must not be negative", s)
	}
	return RouteTimeout{Pattern: pattern, Timeout: d}, nil
}

// parseRouteTimeouts parses the --route-timeout entries, in order.
func parseRouteTimeouts(v any) (any, error) {
	specs := v.([]string)
	out := make([]RouteTimeout, 0, len(specs))
	for _, s := range specs {
		rt, err := parseRouteTimeout(s)
		if err != nil {
			return nil, err
		}
		out = append(out, rt)
	}
	return out, nil
}

// checkStatsdHost accepts --statsd-host as gunicorn does: HOST:PORT,
// HOST (the port is 8125) or unix:PATH.
func checkStatsdHost(v any) error {
	s := v.(string)
	if s == "" {
		return nil
	}
	if p, ok := strings.CutPrefix(s, "unix:"); ok {
		if strings.TrimPrefix(p, "//") == "" {
			return errors.New("unix: needs a socket path")
		}
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(s, ":") {
			return fmt.Errorf("%q: want HOST:PORT, HOST or unix:PATH", s)
		}
		host, port = s, "8125"
	}
	if host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: the port must be a number from 1 to 65535", s)
	}
	return nil
}

// parseAccessLogformat parses --access-logformat; "" = none.
func parseAccessLogformat(v any) (any, error) {
	s := v.(string)
	if s == "" {
		return []logformat.Part(nil), nil
	}
	return logformat.Parse(s)
}

// parseRequestIDHeader checks --request-id-header: a header name (letters,
// digits and dashes), or off.
func parseRequestIDHeader(v any) (any, error) {
	s := v.(string)
	if strings.EqualFold(s, "off") {
		return "", nil
	}
	if s == "" {
		return nil, errors.New("want a header name such as X-Request-ID, or off")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return nil, fmt.Errorf("want a header name of letters, digits and dashes (such as X-Request-ID), or off; got %q", s)
		}
	}
	return http.CanonicalHeaderKey(s), nil
}
