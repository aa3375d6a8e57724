package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"corral/internal/addrset"
)

// Guard holds the [guard] table of the config file: the request guard's
// jails, lists, limits and priority classes (docs/guard.md). The switches
// that matter on the command line (--guard, --strict-routes,
// --forwarded-allow-ips, --state-dir) are ordinary options.
type Guard struct {
	// Allow holds the IP addresses, CIDRs and host names that are never
	// banned or limited (addrset.ParseHosts). Default: loopback.
	Allow addrset.Set
	// Deny holds the IP addresses, CIDRs and host names refused with 403
	// (and their connections closed at accept); * with an allow list lets
	// in the allow-listed clients only.
	Deny addrset.Set
	// ResolveInterval is how often host names in Allow and Deny are
	// resolved again.
	ResolveInterval time.Duration

	// Rate and Burst are the token bucket of each client (requests per
	// second); GlobalRate and GlobalBurst of all clients together. Rate
	// 0 = no limit; Burst 0 = max(1, Rate).
	Rate, GlobalRate   float64
	Burst, GlobalBurst int
	// MaxConnsPerClient caps the open connections of one address;
	// MaxInFlightPerClient the requests of one client in progress. 0 = no cap.
	MaxConnsPerClient    int
	MaxInFlightPerClient int
	// Tarpit is how long connections from banned and deny-listed
	// addresses are held open, unanswered, before they are closed.
	Tarpit time.Duration
	// MaxClients bounds the per-client state kept (least recently seen
	// clients are forgotten first); LearnMax the paths learned from an app
	// that reports no routes.
	MaxClients int
	LearnMax   int

	// Jails by name: probe, auth, errors, ratelimit.
	Jails map[string]Jail
	// Routes are per-client rate limits for some routes.
	Routes []RouteLimit
	// Classes are the priority classes, highest first.
	Classes []Class

	// Store is the fleet's shared store ("store"; --guard-store and
	// CORRAL_GUARD_STORE win over it): a URL that checkStoreURL accepts,
	// "" = none. StoreTimeout bounds each call to it; StorePrefix starts
	// its keys, so that fleets that must not share bans can share a
	// Redis.
	Store        string
	StoreTimeout time.Duration
	StorePrefix  string
}

// Jail is one jail's settings. MaxRetry 0 turns it off.
type Jail struct {
	MaxRetry   int
	FindTime   time.Duration
	BanTime    time.Duration
	Factor     float64 // escalation: ban time multiplier per repeat offence
	MaxBanTime time.Duration
}

// RouteLimit is a per-client token bucket for requests to Path: a path,
// a prefix ending in "*", or a route rule as the app declares it.
type RouteLimit struct {
	Path  string
	Rate  float64
	Burst int
}

// Class is a priority class.
type Class struct {
	Name string
	// CIDRs are the clients in the class: IP addresses, CIDRs or *
	// (addrset.Parse; no host names).
	CIDRs   addrset.Set
	Header  string
	Secret  string
	Reserve float64 // share of the worker threads, 0..1
}

// JailNames are the jails, in documentation order.
var JailNames = []string{"probe", "auth", "errors", "ratelimit"}

// DefaultGuard returns the [guard] settings used when the file sets none.
func DefaultGuard() Guard {
	return Guard{
		Allow:           addrset.MustParse("127.0.0.0/8", "::1"),
		ResolveInterval: 5 * time.Minute,
		Tarpit:          10 * time.Second,
		StoreTimeout:    5 * time.Millisecond,
		StorePrefix:     "corral",
		MaxClients:      65536,
		LearnMax:        10000,
		Jails: map[string]Jail{
			"probe":     {MaxRetry: 10, FindTime: 10 * time.Minute, BanTime: 10 * time.Minute, Factor: 2, MaxBanTime: 24 * time.Hour},
			"auth":      {MaxRetry: 10, FindTime: 10 * time.Minute, BanTime: 10 * time.Minute, Factor: 2, MaxBanTime: 24 * time.Hour},
			"errors":    {MaxRetry: 60, FindTime: time.Minute, BanTime: 10 * time.Minute, Factor: 2, MaxBanTime: 24 * time.Hour},
			"ratelimit": {MaxRetry: 50, FindTime: time.Minute, BanTime: 5 * time.Minute, Factor: 2, MaxBanTime: 24 * time.Hour},
		},
	}
}

// tomlTable reads one table of the config file with typed errors that
// name the key's full path and the file.
type tomlTable struct {
	m       map[string]any
	path    string // "guard.jails.probe"
	display string // "corral.toml"
	errs    *[]error
	used    map[string]bool
}

func newTable(m map[string]any, path, display string, errs *[]error) *tomlTable {
	return &tomlTable{m: m, path: path, display: display, errs: errs, used: map[string]bool{}}
}

// get finds key, spelled with - or _.
func (t *tomlTable) get(key string) (any, string, bool) {
	for k, v := range t.m {
		if normName(k) == normName(key) {
			t.used[k] = true
			return v, k, true
		}
	}
	return nil, "", false
}

// spelled returns key as the file spells it (with - or _), or key if
// the file does not set it.
func (t *tomlTable) spelled(key string) string {
	for k := range t.m {
		if normName(k) == normName(key) {
			return k
		}
	}
	return key
}

func (t *tomlTable) fail(key string, err error) {
	*t.errs = append(*t.errs, &Error{Source: fmt.Sprintf("%s: key %q", t.display, t.path+"."+key), Err: err})
}

func (t *tomlTable) int(key string, dst *int, lo, hi int) {
	v, k, ok := t.get(key)
	if !ok {
		return
	}
	n, isInt := v.(int64)
	switch {
	case !isInt:
		t.fail(k, fmt.Errorf("want an integer, got %s", describe(v)))
	case n < int64(lo) || hi > 0 && n > int64(hi):
		if hi > 0 {
			t.fail(k, fmt.Errorf("want %d to %d, got %d", lo, hi, n))
		} else {
			t.fail(k, fmt.Errorf("must be at least %d, got %d", lo, n))
		}
	default:
		*dst = int(n)
	}
}

func (t *tomlTable) float(key string, dst *float64, lo, hi float64) {
	v, k, ok := t.get(key)
	if !ok {
		return
	}
	var f float64
	switch x := v.(type) {
	case int64:
		f = float64(x)
	case float64:
		f = x
	default:
		t.fail(k, fmt.Errorf("want a number, got %s", describe(v)))
		return
	}
	if math.IsNaN(f) || f < lo || f > hi {
		t.fail(k, fmt.Errorf("want a number from %g to %g, got %g", lo, hi, f))
		return
	}
	*dst = f
}

func (t *tomlTable) duration(key string, dst *time.Duration) {
	v, k, ok := t.get(key)
	if !ok {
		return
	}
	d, err := parseTOML(&option{kind: kindDuration}, v)
	if err != nil {
		t.fail(k, err)
		return
	}
	if d.(time.Duration) < 0 {
		t.fail(k, fmt.Errorf("must not be negative, got %s", d))
		return
	}
	*dst = d.(time.Duration)
}

func (t *tomlTable) str(key string, dst *string) {
	v, k, ok := t.get(key)
	if !ok {
		return
	}
	s, isStr := v.(string)
	if !isStr {
		t.fail(k, fmt.Errorf("want a string, got %s", describe(v)))
		return
	}
	*dst = s
}

// addrs reads a list of addresses (a comma-separated string or an array
// of strings) into an address set; hosts says whether host names may be
// among them.
func (t *tomlTable) addrs(key string, dst *addrset.Set, hosts bool) {
	v, k, ok := t.get(key)
	if !ok {
		return
	}
	l, err := parseTOML(&option{kind: kindList, split: true}, v)
	if err != nil {
		t.fail(k, err)
		return
	}
	parse := addrset.Parse
	if hosts {
		parse = addrset.ParseHosts
	}
	s, err := parse(l.([]string))
	if err != nil {
		t.fail(k, err)
		return
	}
	*dst = s
}

// table returns the sub-table key, nil if absent or not a table.
func (t *tomlTable) table(key string) *tomlTable {
	v, k, ok := t.get(key)
	if !ok {
		return nil
	}
	m, isTable := v.(map[string]any)
	if !isTable {
		t.fail(k, fmt.Errorf("want a table, got %s", describe(v)))
		return nil
	}
	return newTable(m, t.path+"."+k, t.display, t.errs)
}

// tables returns the array of tables key ([[guard.routes]]).
func (t *tomlTable) tables(key string) []*tomlTable {
	v, k, ok := t.get(key)
	if !ok {
		return nil
	}
	var out []*tomlTable
	add := func(i int, e any) bool {
		m, isTable := e.(map[string]any)
		if !isTable {
			t.fail(k, fmt.Errorf("want an array of tables, got %s at index %d", describe(e), i))
			return false
		}
		out = append(out, newTable(m, fmt.Sprintf("%s.%s[%d]", t.path, k, i), t.display, t.errs))
		return true
	}
	switch x := v.(type) {
	case []map[string]any:
		for i, e := range x {
			add(i, e)
		}
	case []any:
		for i, e := range x {
			if !add(i, e) {
				return nil
			}
		}
	default:
		t.fail(k, fmt.Errorf("want an array of tables, got %s", describe(v)))
	}
	return out
}

// done reports the keys nobody asked for.
func (t *tomlTable) done(known ...string) {
	var unknown []string
	for k := range t.m {
		if !t.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		msg := "unknown key"
		best, bestDist := "", 3
		for _, cand := range known {
			if d := distance(normName(strings.ToLower(k)), normName(cand)); d < bestDist {
				best, bestDist = cand, d
			}
		}
		if best != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", best)
		}
		t.fail(k, errors.New(msg))
	}
}

// parseGuard reads the [guard] table into g, which holds the defaults.
func parseGuard(v any, display string, g *Guard) []error {
	var errs []error
	m, ok := v.(map[string]any)
	if !ok {
		return []error{&Error{Source: fmt.Sprintf("%s: key %q", display, "guard"), Err: fmt.Errorf("want a table, got %s", describe(v))}}
	}
	t := newTable(m, "guard", display, &errs)
	t.addrs("allow", &g.Allow, true)
	t.addrs("deny", &g.Deny, true)
	t.duration("resolve-interval", &g.ResolveInterval)
	t.float("rate", &g.Rate, 0, 1e9)
	t.int("burst", &g.Burst, 0, 1<<30)
	t.float("global-rate", &g.GlobalRate, 0, 1e9)
	t.int("global-burst", &g.GlobalBurst, 0, 1<<30)
	t.int("max-conns-per-client", &g.MaxConnsPerClient, 0, 0)
	t.int("max-inflight-per-client", &g.MaxInFlightPerClient, 0, 0)
	t.duration("tarpit", &g.Tarpit)
	t.int("max-clients", &g.MaxClients, 1, 1<<24)
	t.int("learn-max", &g.LearnMax, 1, 1<<24)
	t.str("store", &g.Store)
	if err := checkStoreURL(g.Store); err != nil {
		t.fail(t.spelled("store"), err)
	}
	t.duration("store-timeout", &g.StoreTimeout)
	if g.StoreTimeout < time.Millisecond || g.StoreTimeout > 10*time.Second {
		t.fail(t.spelled("store-timeout"), fmt.Errorf("want a duration from 1ms to 10s, got %s", g.StoreTimeout))
	}
	t.str("store-prefix", &g.StorePrefix)
	if g.StorePrefix == "" || strings.ContainsAny(g.StorePrefix, "{} \t\n") {
		t.fail(t.spelled("store-prefix"), fmt.Errorf("want a non-empty prefix without spaces or braces, got %q", g.StorePrefix))
	}
	if jt := t.table("jails"); jt != nil {
		jails := map[string]Jail{}
		for k, j := range g.Jails {
			jails[k] = j
		}
		for _, name := range JailNames {
			st := jt.table(name)
			if st == nil {
				continue
			}
			j := jails[name]
			st.int("maxretry", &j.MaxRetry, 0, 10000)
			st.duration("findtime", &j.FindTime)
			st.duration("bantime", &j.BanTime)
			st.float("factor", &j.Factor, 1, 1000)
			st.duration("max-bantime", &j.MaxBanTime)
			st.done("maxretry", "findtime", "bantime", "factor", "max-bantime")
			if j.MaxRetry > 0 && (j.FindTime <= 0 || j.BanTime <= 0) {
				st.fail("maxretry", errors.New("a jail that is on needs a positive findtime and bantime"))
			}
			jails[name] = j
		}
		jt.done(JailNames...)
		g.Jails = jails
	}
	for _, rt := range t.tables("routes") {
		var r RouteLimit
		rt.str("path", &r.Path)
		rt.float("rate", &r.Rate, 0, 1e9)
		rt.int("burst", &r.Burst, 0, 1<<30)
		rt.done("path", "rate", "burst")
		switch {
		case !strings.HasPrefix(r.Path, "/"):
			rt.fail("path", fmt.Errorf("want a URL path starting with /, got %q", r.Path))
		case r.Rate <= 0:
			rt.fail("rate", errors.New("want a positive number of requests per second"))
		}
		g.Routes = append(g.Routes, r)
	}
	for _, ct := range t.tables("classes") {
		var c Class
		ct.str("name", &c.Name)
		ct.addrs("cidrs", &c.CIDRs, false)
		ct.str("header", &c.Header)
		ct.str("secret", &c.Secret)
		ct.float("reserve", &c.Reserve, 0, 1)
		ct.done("name", "cidrs", "header", "secret", "reserve")
		if c.Header != "" && c.Secret == "" {
			ct.fail("secret", errors.New("a class chosen by header needs a secret"))
		}
		if c.Header == "" && len(c.CIDRs.Entries()) == 0 {
			ct.fail("cidrs", errors.New("a class needs cidrs or a header"))
		}
		g.Classes = append(g.Classes, c)
	}
	t.done("allow", "deny", "resolve-interval", "rate", "burst", "global-rate", "global-burst",
		"max-conns-per-client", "max-inflight-per-client", "tarpit", "max-clients", "learn-max", "jails", "routes", "classes",
		"store", "store-timeout", "store-prefix")
	return errs
}

// checkStoreURL checks the URL of a shared guard store: redis://HOST:PORT/DB
// (the port and the database are optional), rediss:// the same over TLS,
// unix:///PATH. "" is no store. Errors never repeat the URL, which may
// hold a password.
func checkStoreURL(s string) error {
	if s == "" {
		return nil
	}
	const want = "want redis://[USER:PASSWORD@]HOST:PORT/DB, rediss://... or unix:///PATH"
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%s: the URL does not parse", want)
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Hostname() == "" {
			return fmt.Errorf("%s: the URL has no host", want)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%s: bad port %q", want, p)
			}
		}
		if db := strings.Trim(u.Path, "/"); db != "" {
			if n, err := strconv.Atoi(db); err != nil || n < 0 {
				return fmt.Errorf("%s: the database %q is not a number", want, db)
			}
		}
		q := u.Query()
		if (q.Has("ca") || q.Has("cert") || q.Has("key")) && u.Scheme != "rediss" {
			return errors.New("ca, cert and key are for a TLS store: rediss://")
		}
		if q.Has("cert") != q.Has("key") {
			return errors.New("a client certificate needs both cert and key")
		}
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("%s: the URL has no socket path (unix:///run/redis/redis.sock)", want)
		}
	default:
		return fmt.Errorf("%s: the scheme is %q", want, u.Scheme)
	}
	return nil
}
