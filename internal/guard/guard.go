// Package guard defends the application in front of the worker pool: it
// works out who a request comes from (client identity behind trusted
// proxies), answers allow- and deny-listed and banned clients, enforces
// rate and concurrency limits, checks the path against the app's routes,
// and after each response feeds fail2ban-style jails that ban abusive
// clients. It also picks each request's priority class.
//
// Order of checks per request, cheapest first: allow list, ban table,
// deny list, rate and concurrency limits, route check, dispatch; the jails
// see the response status afterwards. A banned client costs one map
// lookup and a canned answer, never a worker.
package guard

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"corral/internal/addrset"
	"corral/internal/front"
	"corral/internal/urlpath"
)

// Limit is a token bucket: Rate tokens per second, up to Burst. Rate 0
// means no limit; Burst 0 means max(1, Rate).
type Limit struct {
	Rate  float64
	Burst int
}

func (l Limit) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return max(1, int(math.Ceil(l.Rate)))
}

// RouteLimit is a per-client token bucket for the requests to some routes.
// Path is a path ("/login"), a prefix ending in "*" ("/api/*") or a route
// rule as the app declared it ("/user/<username>").
type RouteLimit struct {
	Path string
	Limit
}

func (rl *RouteLimit) matches(path, rule string) bool {
	if p, ok := strings.CutSuffix(rl.Path, "*"); ok {
		return strings.HasPrefix(path, p)
	}
	return rl.Path == path || rule != "" && rl.Path == rule
}

// Class is a priority class. Requests from Nets (addresses, CIDRs or *),
// or carrying Header with the value Secret, belong to it. Header is
// removed from every request before the app sees it, whatever its value.
type Class struct {
	Name    string
	Nets    addrset.Set
	Header  string
	Secret  string
	Reserve float64 // share of the worker threads kept for this class and higher, 0..1
}

// Config configures a Guard. The zero value identifies clients and does
// nothing else.
type Config struct {
	// Enabled turns the defences on; off, the guard only works out client
	// identities and priority classes.
	Enabled bool
	// Trusted are the peers whose forwarding headers count
	// (--forwarded-allow-ips); the zero set holds none. Peers on a Unix
	// socket always count.
	Trusted addrset.Set
	// StrictRoutes answers 404 from Go to requests for paths the app's
	// reported routes do not know, without a worker. It has no effect
	// while the routes are learned.
	StrictRoutes bool
	// Jails, indexed by JailProbe … JailRateLimit. MaxRetry 0 turns a jail off.
	Jails [NumJails]Jail
	// Remember is how long after a ban ends the client's offences still
	// escalate its next ban (default 24h).
	Remember time.Duration

	// Allow and Deny hold IP addresses, CIDRs, * and host names
	// (addrset.ParseHosts); the names are resolved by Start and again
	// every ResolveEvery (default 5m).
	Allow, Deny  addrset.Set
	ResolveEvery time.Duration
	// LookupHost resolves host names; nil = net.DefaultResolver.
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)

	ClientRate        Limit // per client
	GlobalRate        Limit // all clients together (allow-listed excepted)
	RouteLimits       []RouteLimit
	MaxConnsPerClient int // open connections of one address; 0 = no limit
	// Tarpit holds connections from banned and deny-listed addresses open,
	// unanswered, this long before closing them; 0 closes them at once.
	Tarpit               time.Duration
	MaxInFlightPerClient int // requests of one client in progress; 0 = no limit

	MaxClients int // per-client state kept (LRU), default 65536
	MaxBans    int // bans in force at once, default 1000000
	LearnMax   int // paths learned for apps without routes, default 10000

	// Shared is the store the instances of a fleet share bans, jail
	// windows and rate-limit buckets through; nil = this instance alone.
	// Start starts it; its owner closes it after Shutdown. The per-client
	// caps (connections, requests in flight) stay per instance.
	Shared Shared

	// Classes in priority order, highest first; requests in none are
	// class 0, below all of them.
	Classes []Class

	// ScriptName is the URL prefix the app is mounted under (SCRIPT_NAME):
	// the app's routes are matched below it, static prefixes as they are.
	ScriptName string
	Static     []string // URL prefixes served by corral itself: routes
	Logger     *slog.Logger
	Now        func() time.Time // for tests; nil = time.Now
}

// Guard is the request guard. Create with New, then Start; stop with
// Shutdown or Close.
type Guard struct {
	cfg     Config
	log     *slog.Logger
	logReq  func(r *http.Request, status int, size int64, d time.Duration) // SetLog
	now     func() time.Time
	allow   *list
	deny    *list
	clients *clients
	bans    *banTable
	learned *learned
	global  *bucket
	conns   *connCounts
	store   Store // set by Start, before the guard serves

	// With Config.Shared: the store, the queues towards it and the global
	// limit's requests admitted since the last report.
	shared        Shared
	suspects      suspects
	dirty         chan *client
	kick          chan struct{}
	globalPending atomic.Int64
	sharedDropped atomic.Int64
	sharedDone    chan struct{} // closed when share has returned
	syncq         chan *sharedReq
	syncDone      chan struct{} // closed when syncShared has returned

	routesMu  sync.Mutex
	routesRaw string
	matcher   atomic.Pointer[Matcher]
	extracted atomic.Bool // the app reported its routes

	writers sync.Pool

	denied      atomic.Int64 // requests refused by the deny list
	limited     atomic.Int64 // requests answered 429 by a limit
	strict404   atomic.Int64 // probes answered 404 by --strict-routes
	connRefused atomic.Int64 // connections closed at accept (deny list or per-client cap)
	held        atomic.Int64 // connections in the tarpit
	tarpitted   atomic.Int64 // connections put in the tarpit since the start

	life    sync.Mutex
	started bool // Start ran (the housekeeping runs or ran)
	stopped bool // Shutdown or Close ran
	// stopCtx is cancelled (stop) by Shutdown and Close: it ends the
	// housekeeping and cuts short a Start in progress.
	stopCtx context.Context
	stop    context.CancelFunc
	done    chan struct{} // closed when the housekeeping has returned
}

// ErrClosed is returned by Start after Shutdown or Close.
var ErrClosed = errors.New("guard: closed")

// New checks cfg and returns a Guard. Host names in the lists are not
// resolved until Start.
func New(cfg Config) (*Guard, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 65536
	}
	if cfg.MaxBans <= 0 {
		cfg.MaxBans = 1000000
	}
	if cfg.LearnMax <= 0 {
		cfg.LearnMax = 10000
	}
	if cfg.Remember <= 0 {
		cfg.Remember = 24 * time.Hour
	}
	if cfg.ResolveEvery <= 0 {
		cfg.ResolveEvery = 5 * time.Minute
	}
	for i := range cfg.Jails {
		cfg.Jails[i].Name = jailNames[i]
		if err := cfg.Jails[i].check(); err != nil {
			return nil, err
		}
	}
	log := cfg.Logger.With("component", "guard")
	allow := newList("allow", cfg.Allow, log)
	deny := newList("deny", cfg.Deny, log)
	for i := range cfg.Classes {
		c := &cfg.Classes[i]
		if c.Header != "" {
			c.Header = http.CanonicalHeaderKey(c.Header)
			if c.Secret == "" {
				return nil, fmt.Errorf("priority class %q: header %s needs a secret", c.Name, c.Header)
			}
		}
		if c.Reserve < 0 || c.Reserve > 1 {
			return nil, fmt.Errorf("priority class %q: reserve must be between 0 and 1, got %g", c.Name, c.Reserve)
		}
	}
	g := &Guard{
		cfg: cfg, log: log, now: cfg.Now, allow: allow, deny: deny,
		clients: newClients(cfg.MaxClients),
		bans:    newBanTable(cfg.MaxBans),
		learned: newLearned(cfg.LearnMax),
		conns:   newConnCounts(),
		done:    make(chan struct{}),
	}
	g.stopCtx, g.stop = context.WithCancel(context.Background())
	if cfg.Shared != nil && cfg.Enabled {
		g.shared = cfg.Shared
		g.dirty = make(chan *client, sharedDirtyQueue)
		g.kick = make(chan struct{}, 1)
		g.sharedDone = make(chan struct{})
		g.syncq = make(chan *sharedReq, sharedSyncQueue)
		g.syncDone = make(chan struct{})
	}
	if cfg.GlobalRate.Rate > 0 {
		g.global = newBucket(cfg.GlobalRate)
	}
	m, _ := Compile(nil, cfg.Static)
	g.matcher.Store(m)
	return g, nil
}

// Start loads the bans kept in store (nil = bans live in memory only),
// which from then on keeps every ban, resolves the host names of the lists
// and starts the housekeeping (unbans, re-resolving) and, with
// Config.Shared, the work with the fleet's store. Call it once, before
// the guard serves. A failed load is returned; the guard works anyway,
// without the old bans. Shutdown or Close while Start runs cancel its
// loading and resolving; after them Start does nothing and returns
// ErrClosed.
func (g *Guard) Start(ctx context.Context, store Store) error {
	g.life.Lock()
	switch {
	case g.stopped:
		g.life.Unlock()
		return ErrClosed
	case g.started:
		g.life.Unlock()
		return errors.New("guard: Start called twice")
	}
	g.started = true
	g.store = store
	g.life.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(g.stopCtx, cancel)()
	var err error
	if store != nil {
		err = g.load(ctx)
	}
	g.allow.resolve(ctx, g.cfg.LookupHost)
	g.deny.resolve(ctx, g.cfg.LookupHost)
	go g.housekeep()
	if g.shared != nil {
		g.shared.Start(sharedLocal{g})
		go g.share()
		go g.syncShared()
	}
	return err
}

// halt marks the guard stopped and cancels its background work. It
// returns whether Start ran, so the housekeeping must be waited for, and
// the store Start was given.
func (g *Guard) halt() (started bool, store Store) {
	g.life.Lock()
	defer g.life.Unlock()
	g.stopped = true
	g.stop()
	return g.started, g.store
}

// Shutdown stops the housekeeping (unbans, re-resolving host names) and
// the work with the shared store, waits for them to return, and flushes
// the writes queued in the store and in the shared store, within ctx: its
// deadline is the grace period. It returns ctx's error if the grace
// period ran out, else the stores'. The guard goes on answering requests
// from what it holds in memory. Shutdown does not close the stores: their
// owners do, after Shutdown. It is safe to call before Start, more than
// once, and with Close.
func (g *Guard) Shutdown(ctx context.Context) error {
	started, store := g.halt()
	if started {
		if err := g.wait(ctx); err != nil {
			return err
		}
	}
	var errs []error
	if store != nil {
		errs = append(errs, store.Flush(ctx))
	}
	if started && g.shared != nil {
		errs = append(errs, g.shared.Flush(ctx))
	}
	return errors.Join(errs...)
}

// wait waits for the background goroutines Start started, within ctx.
func (g *Guard) wait(ctx context.Context) error {
	for _, done := range []chan struct{}{g.done, g.sharedDone, g.syncDone} {
		if done == nil {
			continue
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close stops the housekeeping at once (a lookup in progress is
// cancelled) and waits for it to return, without flushing the store. The
// guard goes on answering requests from what it holds in memory. Close
// is safe to call before Start, more than once, and with Shutdown; it
// returns nil.
func (g *Guard) Close() error {
	if started, _ := g.halt(); started {
		_ = g.wait(context.Background())
	}
	return nil
}

func (g *Guard) housekeep() {
	defer close(g.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastResolve := g.now()
	for {
		select {
		case <-g.stopCtx.Done():
			return
		case <-t.C:
		}
		now := g.now()
		g.expire(now)
		g.suspects.expire(now)
		if now.Sub(lastResolve) >= g.cfg.ResolveEvery {
			lastResolve = now
			ctx, cancel := context.WithTimeout(g.stopCtx, 30*time.Second)
			g.allow.resolve(ctx, g.cfg.LookupHost)
			g.deny.resolve(ctx, g.cfg.LookupHost)
			cancel()
		}
	}
}

// SetRoutes gives the guard the routes a worker reported in HELLO (raw
// JSON, null when it could not tell). Every worker of one app reports the
// same; the matcher is recompiled only when they change (a reload).
func (g *Guard) SetRoutes(raw []byte) {
	g.routesMu.Lock()
	defer g.routesMu.Unlock()
	s := string(raw)
	if s == g.routesRaw && g.routesRaw != "" {
		return
	}
	g.routesRaw = s
	rs, err := ParseRoutes(raw)
	if err != nil {
		g.log.Warn("the app's routes could not be read; learning them from answers", "error", err)
		rs = nil
	}
	m, warnings := Compile(rs, g.cfg.Static)
	for _, w := range warnings {
		g.log.Warn(w)
	}
	g.matcher.Store(m)
	g.extracted.Store(rs != nil)
	if rs == nil {
		g.log.Info("routes unknown; learning them from the app's answers", "static_prefixes", len(g.cfg.Static), "strict_routes", false)
		return
	}
	g.log.Info("routes compiled", "framework", rs.Framework, "routes", len(rs.Routes), "prefixes", len(rs.Prefixes)+len(g.cfg.Static),
		"strict_routes", g.cfg.StrictRoutes)
}

// Wrap returns next behind the guard.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	g.writers.New = func() any { return &writer{} }
	return &handler{g: g, next: next}
}

type handler struct {
	g    *Guard
	next http.Handler
}

// Canned answers. The header value slices are shared and never modified.
var (
	hdrText    = []string{"text/plain; charset=utf-8"}
	hdrNosniff = []string{"nosniff"}
	hdrClose   = []string{"close"}
	retryOne   = []string{"1"}
	canned     = makeCanned(http.StatusForbidden, http.StatusNotFound, http.StatusTooManyRequests)
)

type cannedAnswer struct {
	body   []byte
	length []string
}

func makeCanned(codes ...int) map[int]cannedAnswer {
	m := make(map[int]cannedAnswer, len(codes))
	for _, code := range codes {
		b := []byte(strconv.Itoa(code) + " " + http.StatusText(code) + "\n")
		m[code] = cannedAnswer{body: b, length: []string{strconv.Itoa(len(b))}}
	}
	return m
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := h.g
	peer := PeerAddr(r.RemoteAddr)
	id := Identify(peer, r.Header, g.cfg.Trusted)
	if id.Forwarded {
		r.RemoteAddr = netip.AddrPortFrom(id.Addr, 0).String()
	}
	gw := g.writers.Get().(*writer)
	*gw = writer{Recorder: front.Recorder{ResponseWriter: w, Hook: gw}, scheme: id.Scheme, g: g}
	if g.logReq != nil {
		gw.req, gw.start = r, time.Now()
	}
	defer g.writers.Put(gw)
	if len(g.cfg.Classes) > 0 {
		gw.class = g.classify(id.Addr, r)
	}
	if !g.cfg.Enabled || !id.Addr.IsValid() {
		h.next.ServeHTTP(gw, r)
		return
	}
	key := Key(id.Addr)
	allowed := g.allow.contains(id.Addr)
	var c *client
	if !allowed {
		b := g.bans.active(key, g.now)
		if b == nil && g.shared != nil && g.suspects.has(key, g.now) {
			b = g.sharedBan(key)
		}
		if b != nil {
			b.blocked.Add(1)
			g.reject(gw, b.status, b.retryAfter(g.now()), !id.Forwarded)
			return
		}
		if g.deny.contains(id.Addr) {
			g.denied.Add(1)
			g.reject(gw, http.StatusForbidden, 0, !id.Forwarded)
			return
		}
	}
	m := g.matcher.Load()
	route, known := g.match(m, r.URL.Path)
	g.noteRoute(w, m, route, known, r.URL.Path)
	gw.m, gw.route = m, route
	if !allowed {
		var code, retry int
		if code, retry, c = g.limit(key, r.URL.Path, m.Rule(route)); code != 0 {
			g.limited.Add(1)
			g.reject(gw, code, retry, false)
			g.offend(key, JailRateLimit)
			return
		}
	}
	if !known && g.learned.has(r.URL.Path) {
		known = true
	}
	if !known && g.cfg.StrictRoutes && g.extracted.Load() && !wellKnown(r.URL.Path) {
		g.strict404.Add(1)
		if c != nil {
			g.release(c)
		}
		g.reject(gw, http.StatusNotFound, 0, false)
		if !allowed {
			g.offend(key, JailProbe, JailErrors)
		}
		return
	}
	if !allowed {
		// The jails see the answer's status before it goes out (see
		// writer.BeforeHeader), or in after if it never goes out.
		gw.jail, gw.key, gw.path, gw.known = true, key, r.URL.Path, known
	}
	defer g.after(gw, r, key, c, known, allowed)
	h.next.ServeHTTP(gw, r)
}

// match looks path up in m: as it is (static prefixes, and every route
// when the app is not mounted under a prefix), then below the mount point.
func (g *Guard) match(m *Matcher, path string) (int, bool) {
	route, known := m.Match(path)
	if known || g.cfg.ScriptName == "" {
		return route, known
	}
	if rest, ok := urlpath.Below(path, g.cfg.ScriptName); ok {
		if rest == "" {
			rest = "/"
		}
		return m.Match(rest)
	}
	return route, known
}

// after feeds the jails with the answer's status, learns paths and applies
// a ban the app asked for in its response. Deferred, so it runs when the
// handler aborts a response too.
func (g *Guard) after(gw *writer, r *http.Request, key netip.Addr, c *client, known, allowed bool) {
	if c != nil {
		g.release(c)
	}
	status := gw.Status()
	if gw.appBan > 0 && !allowed {
		g.ban(key, time.Duration(gw.appBan)*time.Second, "app", "X-Corral-Ban response header", http.StatusForbidden, 0, false)
	}
	if status == 0 {
		return
	}
	path := r.URL.Path
	if !known && status != http.StatusNotFound {
		// An answer other than 404 shows the path exists: learn it.
		known = true
		if g.learned.add(path) {
			g.log.Warn("learned-route table full; paths answered from now on are not learned", "paths", g.cfg.LearnMax)
		}
	}
	if !allowed && !gw.judged {
		g.judge(key, path, status, known)
	}
}

// judge feeds the jails with an answer's status: a probe (a path the app
// does not have), a 401 or 403 on a known route, any other 4xx. known
// says whether the route is known; an answer other than 404 shows that
// it exists.
func (g *Guard) judge(key netip.Addr, path string, status int, known bool) {
	known = known || status != http.StatusNotFound
	var jails [2]int
	n := 0
	switch {
	case !known:
		if !wellKnown(path) {
			jails[n] = JailProbe
			n++
		}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		jails[n] = JailAuth
		n++
	}
	if status >= 400 && status < 500 && status != http.StatusTooManyRequests {
		jails[n] = JailErrors
		n++
	}
	if n > 0 {
		g.offend(key, jails[:n]...)
	}
}

// wellKnown paths are fetched by browsers and crawlers on their own; a 404
// there is no sign of a scan.
func wellKnown(p string) bool {
	switch p {
	case "/favicon.ico", "/robots.txt", "/sitemap.xml", "/ads.txt", "/humans.txt":
		return true
	}
	return strings.HasPrefix(p, "/apple-touch-icon") || strings.HasPrefix(p, "/.well-known/")
}

// reject answers from Go. close asks the client to drop its connection,
// so its next attempt meets the ban at accept.
func (g *Guard) reject(w *writer, code, retryAfter int, close bool) {
	h := w.Header()
	h["Content-Type"] = hdrText
	a := canned[code]
	h["Content-Length"] = a.length
	h["X-Content-Type-Options"] = hdrNosniff
	switch {
	case retryAfter == 1:
		h["Retry-After"] = retryOne
	case retryAfter > 1:
		h["Retry-After"] = []string{strconv.Itoa(retryAfter)}
	}
	if close {
		h["Connection"] = hdrClose
	}
	w.ResponseWriter.WriteHeader(code)
	_, _ = w.ResponseWriter.Write(a.body)
	if g.logReq != nil && w.req != nil {
		g.logReq(w.req, code, int64(len(a.body)), time.Since(w.start))
	}
}

// SetLog makes the guard record the requests it answers itself (bans,
// deny lists, rate limits, strict 404s) with log, as the front records
// those it answers: the access log and the request journal see every
// request. nil = none. Call it before serving.
func (g *Guard) SetLog(log func(r *http.Request, status int, size int64, d time.Duration)) {
	g.logReq = log
}

// classify returns the priority class of a request (0 = default) and
// removes every class header from it.
func (g *Guard) classify(a netip.Addr, r *http.Request) int {
	class := 0
	n := len(g.cfg.Classes)
	for i := range g.cfg.Classes {
		c := &g.cfg.Classes[i]
		prio := n - i
		if c.Header != "" {
			if vs, ok := r.Header[c.Header]; ok {
				delete(r.Header, c.Header)
				if class == 0 && len(vs) == 1 && subtle.ConstantTimeCompare([]byte(vs[0]), []byte(c.Secret)) == 1 {
					class = prio
				}
			}
		}
		if class == 0 && a.IsValid() && c.Nets.Contains(a) {
			class = prio
		}
	}
	return class
}

// limit applies the token buckets and the in-flight cap. It returns the
// status to answer (0 = go on), the Retry-After seconds, and the client
// whose in-flight count was raised (nil if none: no per-client limit).
//
// With a shared store the buckets are copies of the fleet's, as of its
// last verdict, with the requests let through here since: the requests
// admitted are reported to the fleet's buckets in the next batch, and the
// answer sets the local bucket to the fleet's (see share). While the
// store is down, each bucket goes on alone.
func (g *Guard) limit(key netip.Addr, path, rule string) (int, int, *client) {
	now := g.now().UnixNano()
	shared := g.shared != nil && g.shared.Up()
	if g.global != nil {
		if ok, wait := g.global.allow(now); !ok {
			return http.StatusTooManyRequests, retryAfterSeconds(wait), nil
		}
		if shared && g.globalPending.Add(1) == 1 {
			g.kickShared()
		}
	}
	cr := g.cfg.ClientRate
	if cr.Rate <= 0 && len(g.cfg.RouteLimits) == 0 && g.cfg.MaxInFlightPerClient <= 0 {
		return 0, 0, nil
	}
	c := g.clients.get(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cr.Rate > 0 {
		if c.limiter == nil {
			c.limiter = newBucket(cr)
		}
		if ok, wait := c.limiter.allow(now); !ok {
			return http.StatusTooManyRequests, retryAfterSeconds(wait), nil
		}
		if shared {
			g.noteShared(c, sharedClientLimit)
		}
	}
	for i := range g.cfg.RouteLimits {
		rl := &g.cfg.RouteLimits[i]
		if !rl.matches(path, rule) {
			continue
		}
		if c.routes == nil {
			c.routes = make([]*bucket, len(g.cfg.RouteLimits))
		}
		if c.routes[i] == nil {
			c.routes[i] = newBucket(rl.Limit)
		}
		if ok, wait := c.routes[i].allow(now); !ok {
			return http.StatusTooManyRequests, retryAfterSeconds(wait), nil
		}
		if shared {
			g.noteShared(c, 1+i)
		}
	}
	if m := g.cfg.MaxInFlightPerClient; m > 0 {
		if c.inflight >= m {
			return http.StatusTooManyRequests, 1, nil
		}
		c.inflight++
		return 0, 0, c
	}
	return 0, 0, nil
}

func (g *Guard) release(c *client) {
	c.mu.Lock()
	c.inflight--
	c.mu.Unlock()
}

// Allowed reports whether a is on the allow list.
func (g *Guard) Allowed(a netip.Addr) bool { return g.allow.contains(a.Unmap()) }

// Stats are the guard's counters.
type Stats struct {
	Enabled          bool   `json:"enabled"`
	Routes           string `json:"routes"` // "extracted" or "learned"
	Patterns         int    `json:"patterns"`
	Learned          int    `json:"learned_paths"`
	Bans             int    `json:"bans"`
	Clients          int    `json:"clients_tracked"`
	Denied           int64  `json:"denied_requests"`
	Limited          int64  `json:"rate_limited_requests"`
	Strict404        int64  `json:"strict_route_404s"`
	RefusedConns     int64  `json:"refused_connections"` // closed at accept: bans, deny list, per-client cap
	BlockedByBans    int64  `json:"blocked_requests"`
	EvictedClients   uint64 `json:"evicted_clients"`
	ConnsPerClientOn bool   `json:"per_client_connection_cap"`
	// Store is the fleet's shared store; nil without one.
	Store *SharedStats `json:"store,omitempty"`
}

// Stats returns the guard's counters.
func (g *Guard) Stats() Stats {
	s := Stats{
		Enabled: g.cfg.Enabled, Routes: "learned", Patterns: g.matcher.Load().Patterns(), Learned: g.learned.len(),
		Clients: g.clients.len(), Denied: g.denied.Load(), Limited: g.limited.Load(), Strict404: g.strict404.Load(),
		RefusedConns: g.connRefused.Load(), ConnsPerClientOn: g.cfg.MaxConnsPerClient > 0,
	}
	if g.extracted.Load() {
		s.Routes = "extracted"
	}
	var refused int64
	s.Bans, s.BlockedByBans, refused = g.bans.counts()
	s.RefusedConns += refused
	for i := range g.clients.shards {
		sh := &g.clients.shards[i]
		sh.mu.Lock()
		s.EvictedClients += sh.evicted
		sh.mu.Unlock()
	}
	if g.shared != nil {
		st := g.shared.Stats()
		st.Dropped += g.sharedDropped.Load()
		s.Store = &st
	}
	return s
}

// writer records the status for the jails (its Recorder), removes
// X-Corral-Ban from the response and carries the client's scheme and class
// to the front. Its Hook is itself.
type writer struct {
	front.Recorder
	scheme string
	class  int
	appBan int // seconds asked for with X-Corral-Ban

	g *Guard

	// For the jails, set when the client is not allow-listed (jail):
	// judge gets the status before the header goes out (judged), so that
	// a ban the answer earns, shared with the fleet, is in the store
	// before the client can send its next request anywhere.
	jail   bool
	key    netip.Addr
	path   string
	known  bool
	judged bool

	// For ClientRoute: the routes route was matched with; nil = not
	// matched yet.
	m     *Matcher
	route int

	// For SetLog's function, when there is one.
	req   *http.Request
	start time.Time
}

// BeforeHeader takes X-Corral-Ban out of the response and keeps its value,
// and feeds the jails with code.
func (w *writer) BeforeHeader(h http.Header, code int) {
	if vs, ok := h["X-Corral-Ban"]; ok {
		delete(h, "X-Corral-Ban")
		if len(vs) > 0 {
			if n, err := strconv.Atoi(strings.TrimSpace(vs[0])); err == nil && n > 0 {
				w.appBan = n
			}
		}
	}
	if w.jail && !w.judged {
		w.judged = true
		w.g.judge(w.key, w.path, code, w.known)
	}
}

// ClientScheme is the scheme a trusted proxy reported, "" if none.
func (w *writer) ClientScheme() string { return w.scheme }

// ClientClass is the request's priority class (0 = default).
func (w *writer) ClientClass() int { return w.class }

// ClientRoute is the app's route rule that path matches, "" if none (the
// request journal's route column). The guard matched it already, unless
// it is off: then it is matched now.
func (w *writer) ClientRoute(path string) string {
	if w.m == nil {
		w.m = w.g.matcher.Load()
		w.route, _ = w.g.match(w.m, path)
	}
	return w.m.Rule(w.route)
}

// errAllowListed refuses to ban an allow-listed client.
var errAllowListed = errors.New("the address is allow-listed")
