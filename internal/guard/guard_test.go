package guard

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"corral/internal/addrset"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// app answers like the Flask example: 404 for unknown paths, 401 on
// /login, and whatever ?status= asks for; it counts the calls it gets.
type app struct {
	mu    sync.Mutex
	calls int
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	if s := r.URL.Query().Get("ban"); s != "" {
		w.Header().Set("X-Corral-Ban", s)
	}
	switch {
	case r.URL.Query().Get("status") != "":
		n, _ := strconv.Atoi(r.URL.Query().Get("status"))
		w.WriteHeader(n)
	case r.URL.Path == "/login":
		w.WriteHeader(http.StatusUnauthorized)
	case r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/user/") || r.URL.Path == "/2024":
		_, _ = w.Write([]byte("ok"))
	default:
		http.NotFound(w, r)
	}
}

func (a *app) n() int { a.mu.Lock(); defer a.mu.Unlock(); return a.calls }

type rig struct {
	g     *Guard
	h     http.Handler
	app   *app
	clock *clock
}

// hosts parses a list that may hold host names.
func hosts(t *testing.T, entries ...string) addrset.Set {
	t.Helper()
	s, err := addrset.ParseHosts(entries)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newRig(t *testing.T, mod func(*Config)) *rig {
	return newRigStore(t, nil, mod)
}

func newRigStore(t *testing.T, store Store, mod func(*Config)) *rig {
	t.Helper()
	ck := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg := Config{Enabled: true, Jails: DefaultJails(), Now: ck.now,
		Trusted: addrset.MustParse("10.0.0.1")}
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	a := &app{}
	return &rig{g: g, h: g.Wrap(a), app: a, clock: ck}
}

func (r *rig) do(remote, method, target string, hdr http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = remote
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	return w
}

func TestProbesBanAfterMaxRetry(t *testing.T) {
	r := newRig(t, nil)
	r.g.SetRoutes(nil) // learned mode
	scanner, user := "192.0.2.66:1000", "192.0.2.7:2000"
	for i := range 30 {
		r.do(scanner, "GET", fmt.Sprintf("/probe%d", i), nil)
		if w := r.do(user, "GET", "/", nil); w.Code != 200 {
			t.Fatalf("legit request %d: %d", i, w.Code)
		}
	}
	// The legit user made 30 calls; the scanner at most maxretry.
	if got := r.app.n() - 30; got != 10 {
		t.Errorf("scanner requests that reached the app = %d, want 10", got)
	}
	w := r.do(scanner, "GET", "/", nil)
	if w.Code != 403 || w.Header().Get("Connection") != "close" {
		t.Errorf("banned client: %d, Connection %q", w.Code, w.Header().Get("Connection"))
	}
	bans := r.g.Bans()
	if len(bans) != 1 || bans[0].Addr != "192.0.2.66" || bans[0].Jail != "probe" || bans[0].Blocked != 21 {
		t.Fatalf("bans = %+v", bans)
	}
	// Expiry, then escalation: the second ban lasts twice as long.
	r.clock.add(11 * time.Minute)
	r.g.expire(r.clock.now())
	if w := r.do(scanner, "GET", "/", nil); w.Code != 200 {
		t.Fatalf("after expiry: %d", w.Code)
	}
	for i := range 10 {
		r.do(scanner, "GET", fmt.Sprintf("/again%d", i), nil)
	}
	bans = r.g.Bans()
	if len(bans) != 1 || bans[0].Offences != 2 || bans[0].Until.Sub(bans[0].Since) != 20*time.Minute {
		t.Fatalf("second ban = %+v", bans)
	}
}

func TestKnownPathsAndWellKnownAreNotProbes(t *testing.T) {
	r := newRig(t, nil)
	r.g.SetRoutes(nil)
	c := "192.0.2.8:1"
	for range 20 {
		r.do(c, "GET", "/favicon.ico", nil)
		r.do(c, "GET", "/user/x", nil)
	}
	if len(r.g.Bans()) != 0 {
		t.Errorf("banned for favicon and known paths: %+v", r.g.Bans())
	}
}

func TestStrictRoutes(t *testing.T) {
	r := newRig(t, func(c *Config) { c.StrictRoutes = true })
	r.g.SetRoutes([]byte(`{"framework":"flask","routes":[{"rule":"/","regex":"^/$"},{"rule":"/login","regex":"^/login$"}],"prefixes":[]}`))
	if w := r.do("192.0.2.9:1", "GET", "/.env", nil); w.Code != 404 || r.app.n() != 0 {
		t.Errorf("strict probe: %d, app calls %d", w.Code, r.app.n())
	}
	if w := r.do("192.0.2.9:1", "GET", "/", nil); w.Code != 200 {
		t.Errorf("known route: %d", w.Code)
	}
	// Without extracted routes strict mode cannot tell: the app answers.
	r.g.SetRoutes([]byte("null"))
	if w := r.do("192.0.2.9:1", "GET", "/.env", nil); w.Code != 404 || r.app.n() != 2 {
		t.Errorf("learned mode: %d, app calls %d", w.Code, r.app.n())
	}
}

// TestStrictRoutesBelowScriptName: an app mounted under SCRIPT_NAME has
// its routes matched below the mount point.
func TestStrictRoutesBelowScriptName(t *testing.T) {
	r := newRig(t, func(c *Config) { c.StrictRoutes = true; c.ScriptName = "/mount" })
	r.g.SetRoutes([]byte(`{"framework":"flask","routes":[{"rule":"/","regex":"^/$"},{"rule":"/login","regex":"^/login$"}],"prefixes":[]}`))
	for _, path := range []string{"/mount", "/mount/", "/mount/login"} {
		if w := r.do("192.0.2.9:1", "GET", path, nil); w.Code == 404 && r.app.n() == 0 {
			t.Errorf("GET %s under the mount: strict 404 from the guard", path)
		}
	}
	before := r.app.n()
	for _, path := range []string{"/mount/.env", "/mountx/login"} {
		if w := r.do("192.0.2.9:1", "GET", path, nil); w.Code != 404 {
			t.Errorf("GET %s: %d, want a strict 404", path, w.Code)
		}
	}
	if r.app.n() != before {
		t.Errorf("probes reached the app: %d calls, want %d", r.app.n(), before)
	}
}

func TestAuthJail(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Jails[JailAuth].MaxRetry = 5 })
	r.g.SetRoutes([]byte(`{"framework":"flask","routes":[{"rule":"/login","regex":"^/login$"}]}`))
	for range 5 {
		if w := r.do("192.0.2.10:1", "POST", "/login", nil); w.Code != 401 {
			t.Fatalf("login: %d", w.Code)
		}
	}
	if w := r.do("192.0.2.10:1", "POST", "/login", nil); w.Code != 403 {
		t.Errorf("after 5 failed logins: %d", w.Code)
	}
	if b := r.g.Bans(); len(b) != 1 || b[0].Jail != "auth" {
		t.Errorf("bans = %+v", b)
	}
}

func TestSpoofedForwardingCannotFrame(t *testing.T) {
	r := newRig(t, nil)
	victim := http.Header{"X-Forwarded-For": {"198.51.100.99"}}
	for i := range 20 {
		r.do("192.0.2.11:1", "GET", fmt.Sprintf("/x%d", i), victim)
	}
	b := r.g.Bans()
	if len(b) != 1 || b[0].Addr != "192.0.2.11" {
		t.Fatalf("bans = %+v, want only the spoofer", b)
	}
	// Through the trusted proxy the real client is banned, not the proxy.
	for i := range 20 {
		r.do("10.0.0.1:5", "GET", fmt.Sprintf("/y%d", i), http.Header{"X-Forwarded-For": {"198.51.100.5"}})
	}
	if w := r.do("10.0.0.1:5", "GET", "/", http.Header{"X-Forwarded-For": {"198.51.100.5"}}); w.Code != 403 || w.Header().Get("Connection") == "close" {
		t.Errorf("forwarded banned client: %d, Connection %q (the proxy's connection must stay)", w.Code, w.Header().Get("Connection"))
	}
	if w := r.do("10.0.0.1:5", "GET", "/", http.Header{"X-Forwarded-For": {"198.51.100.6"}}); w.Code != 200 {
		t.Errorf("another client through the same proxy: %d", w.Code)
	}
}

func TestRateLimits(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.ClientRate = Limit{Rate: 1, Burst: 3}
		c.RouteLimits = []RouteLimit{{Path: "/login", Limit: Limit{Rate: 0.1, Burst: 1}}}
	})
	c := "192.0.2.12:1"
	for i := range 3 {
		if w := r.do(c, "GET", "/", nil); w.Code != 200 {
			t.Fatalf("request %d in the burst: %d", i, w.Code)
		}
	}
	w := r.do(c, "GET", "/", nil)
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Errorf("over the rate: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	r.clock.add(2 * time.Second)
	if w := r.do(c, "GET", "/", nil); w.Code != 200 {
		t.Errorf("after refill: %d", w.Code)
	}
	r.clock.add(10 * time.Second)
	r.do(c, "POST", "/login", nil)
	w = r.do(c, "POST", "/login", nil)
	if w.Code != 429 || w.Header().Get("Retry-After") != "10" {
		t.Errorf("route limit: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestRateLimitJailAnswers429(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.GlobalRate = Limit{Rate: 1, Burst: 1}
		c.Jails[JailRateLimit].MaxRetry = 3
	})
	for range 5 {
		r.do("192.0.2.13:1", "GET", "/", nil)
	}
	b := r.g.Bans()
	if len(b) != 1 || b[0].Status != 429 {
		t.Fatalf("bans = %+v", b)
	}
	r.clock.add(time.Hour) // the global bucket refills; the ban still runs
	r.clock.add(-59 * time.Minute)
	w := r.do("192.0.2.13:1", "GET", "/", nil)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Errorf("rate-limit ban: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestInFlightCap(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxInFlightPerClient = 1 })
	release := make(chan struct{})
	entered := make(chan struct{})
	r.h = r.g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/slow" {
			close(entered)
			<-release
		}
	}))
	done := make(chan int)
	go func() { done <- r.do("192.0.2.14:1", "GET", "/slow", nil).Code }()
	<-entered
	if w := r.do("192.0.2.14:2", "GET", "/", nil); w.Code != 429 {
		t.Errorf("second request in flight: %d", w.Code)
	}
	if w := r.do("192.0.2.15:1", "GET", "/", nil); w.Code != 200 {
		t.Errorf("another client: %d", w.Code)
	}
	close(release)
	<-done
	if w := r.do("192.0.2.14:2", "GET", "/", nil); w.Code != 200 {
		t.Errorf("after the first finished: %d", w.Code)
	}
}

func TestAllowAndDenyLists(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Allow = hosts(t, "192.0.2.0/28", "friend.test")
		c.Deny = hosts(t, "198.51.100.0/24", "2001:db8::/32")
		c.ClientRate = Limit{Rate: 1, Burst: 1}
		c.LookupHost = func(_ context.Context, h string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("203.0.113.50")}, nil
		}
	})
	for i := range 30 {
		if w := r.do("192.0.2.1:1", "GET", fmt.Sprintf("/scan%d", i), nil); w.Code != 404 {
			t.Fatalf("allow-listed client limited or banned: %d", w.Code)
		}
		if w := r.do("203.0.113.50:1", "GET", fmt.Sprintf("/scan%d", i), nil); w.Code != 404 {
			t.Fatalf("allow-listed host name: %d", w.Code)
		}
	}
	if w := r.do("198.51.100.3:1", "GET", "/", nil); w.Code != 403 {
		t.Errorf("deny-listed: %d", w.Code)
	}
	if w := r.do("[2001:db8::5]:1", "GET", "/", nil); w.Code != 403 {
		t.Errorf("deny-listed IPv6: %d", w.Code)
	}
	if _, err := r.g.Ban("192.0.2.1", time.Hour, "manual", ""); err == nil {
		t.Error("banned an allow-listed address")
	}
	if _, err := addrset.ParseHosts([]string{"not a host!"}); err == nil {
		t.Error("bad list entry accepted")
	}
}

func TestAppBanHeader(t *testing.T) {
	r := newRig(t, nil)
	w := r.do("192.0.2.16:1", "GET", "/?ban=60", nil)
	if w.Code != 200 || w.Header().Get("X-Corral-Ban") != "" {
		t.Errorf("response: %d, X-Corral-Ban %q leaked", w.Code, w.Header().Get("X-Corral-Ban"))
	}
	b := r.g.Bans()
	if len(b) != 1 || b[0].Jail != "app" || b[0].Until.Sub(b[0].Since) != time.Minute {
		t.Fatalf("bans = %+v", b)
	}
	r.g.AppBan("192.0.2.17", 30, "too many signups")
	if w := r.do("192.0.2.17:9", "GET", "/", nil); w.Code != 403 {
		t.Errorf("corral.ban(): %d", w.Code)
	}
	if ok, err := r.g.Unban("192.0.2.17", "test"); !ok || err != nil {
		t.Errorf("Unban = %v, %v", ok, err)
	}
	if w := r.do("192.0.2.17:9", "GET", "/", nil); w.Code != 200 {
		t.Errorf("after unban: %d", w.Code)
	}
}

// TestWriterHeaderPaths: the jails see the final status, not an interim
// 103, and X-Corral-Ban is taken out whichever call writes the header.
func TestWriterHeaderPaths(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Jails[JailAuth].MaxRetry = 3 })
	r.g.SetRoutes([]byte(`{"framework":"flask","routes":[{"rule":"/login","regex":"^/login$"},{"rule":"/f","regex":"^/f$"}]}`))
	h := r.g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/f" {
			w.Header().Set("X-Corral-Ban", "60")
			_, _ = io.Copy(w, strings.NewReader("file")) // ReadFrom, implicit 200
			return
		}
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	do := func(remote, target string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", target, nil)
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for range 3 {
		do("192.0.2.20:1", "/login")
	}
	if w := do("192.0.2.20:1", "/login"); w.Code != 403 {
		t.Errorf("after 3 answers 103 then 401: %d, want 403", w.Code)
	}
	w := do("192.0.2.21:1", "/f")
	if w.Code != 200 || w.Body.String() != "file" || w.Header().Get("X-Corral-Ban") != "" {
		t.Errorf("response: %d %q, X-Corral-Ban %q", w.Code, w.Body.String(), w.Header().Get("X-Corral-Ban"))
	}
	var jails []string
	for _, b := range r.g.Bans() {
		jails = append(jails, b.Jail)
	}
	if want := []string{"auth", "app"}; !slices.Equal(slices.Sorted(slices.Values(jails)), slices.Sorted(slices.Values(want))) {
		t.Errorf("bans in jails %q, want %q", jails, want)
	}
}

func TestClasses(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Classes = []Class{
			{Name: "ops", Header: "X-Ops-Token", Secret: "s3cret"},
			{Name: "office", Nets: addrset.MustParse("192.0.2.0/24")},
		}
	})
	var gotClass int
	var leaked string
	r.h = r.g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		gotClass = w.(interface{ ClientClass() int }).ClientClass()
		leaked = req.Header.Get("X-Ops-Token")
	}))
	cases := []struct {
		remote string
		hdr    http.Header
		want   int
	}{
		{"198.51.100.1:1", nil, 0},
		{"198.51.100.1:1", http.Header{"X-Ops-Token": {"s3cret"}}, 2},
		{"198.51.100.1:1", http.Header{"X-Ops-Token": {"guess"}}, 0},
		{"192.0.2.5:1", nil, 1},
		{"192.0.2.5:1", http.Header{"X-Ops-Token": {"s3cret"}}, 2},
	}
	for _, c := range cases {
		r.do(c.remote, "GET", "/", c.hdr)
		if gotClass != c.want || leaked != "" {
			t.Errorf("%s %v: class %d (want %d), header seen by app %q", c.remote, c.hdr, gotClass, c.want, leaked)
		}
	}
}

func TestClientTableBounded(t *testing.T) {
	cs := newClients(64)
	for i := range 10000 {
		cs.get(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if n := cs.len(); n > 64 {
		t.Errorf("%d clients kept, cap 64", n)
	}
	// The most recent survive.
	last := netip.AddrFrom4([4]byte{10, 0, byte(9999 >> 8), byte(9999 & 0xff)})
	if cs.peek(last) == nil {
		t.Error("the most recent client was evicted")
	}
}

func TestSpoofedFloodBoundsMemory(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxClients = 256; c.ClientRate = Limit{Rate: 100} })
	for i := range 5000 {
		r.do(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255), "GET", fmt.Sprintf("/p%d", i), nil)
	}
	if n := r.g.clients.len(); n > 256 {
		t.Errorf("%d clients tracked, cap 256", n)
	}
}

func TestJailEscalationCap(t *testing.T) {
	j := Jail{Name: "x", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Minute, Factor: 3, MaxBanTime: time.Hour}
	if err := j.check(); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{time.Minute, 3 * time.Minute, 9 * time.Minute, 27 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := j.banTime(i + 1); got != w {
			t.Errorf("offence %d: %v, want %v", i+1, got, w)
		}
	}
	if got := j.banTime(10000); got != time.Hour {
		t.Errorf("offence 10000: %v", got)
	}
	bad := []Jail{{MaxRetry: -1}, {MaxRetry: 3}, {MaxRetry: 3, FindTime: 1}, {MaxRetry: 3, FindTime: 1, BanTime: 1, Factor: 0.5}}
	for _, b := range bad {
		if b.check() == nil {
			t.Errorf("jail %+v accepted", b)
		}
	}
}

func TestWindowSlides(t *testing.T) {
	var w window
	base := int64(1e12)
	find := int64(10 * time.Second)
	for i := range 3 {
		w.add(base+int64(i)*int64(4*time.Second), find, 3)
	}
	// Events at 0s, 4s, 8s; a fourth at 12s sees 4s, 8s, 12s within 10s.
	if n := w.add(base+int64(12*time.Second), find, 3); n != 3 {
		t.Errorf("count = %d, want 3", n)
	}
	if n := w.add(base+int64(40*time.Second), find, 3); n != 1 {
		t.Errorf("after a pause: %d, want 1", n)
	}
}

// memStore is a Store in memory, as a second store (a shared one, such as
// Redis) would implement it.
type memStore struct {
	mu      sync.Mutex
	bans    map[string]Ban
	flushes int
}

func newMemStore() *memStore { return &memStore{bans: map[string]Ban{}} }

func (m *memStore) Load(context.Context) ([]Ban, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Ban, 0, len(m.bans))
	for _, b := range m.bans {
		out = append(out, b)
	}
	return out, nil
}

func (m *memStore) Put(b Ban) { m.mu.Lock(); m.bans[b.Addr] = b; m.mu.Unlock() }

func (m *memStore) Delete(addr string) { m.mu.Lock(); delete(m.bans, addr); m.mu.Unlock() }

func (m *memStore) Flush(context.Context) error {
	m.mu.Lock()
	m.flushes++
	m.mu.Unlock()
	return nil
}

// TestStorePersistence: the bans a guard puts in its store are those the
// next guard restores. cmd/corral tests the same with the SQLite store.
func TestStorePersistence(t *testing.T) {
	st := newMemStore()
	r := newRigStore(t, st, func(c *Config) { c.Now = time.Now })
	if _, err := r.g.Ban("192.0.2.20", time.Hour, "manual", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.g.Ban("2001:db8:1:2::99", 0, "manual", "forever"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.g.Ban("192.0.2.21", time.Hour, "manual", "lifted"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.g.Unban("192.0.2.21", "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.g.Shutdown(context.Background()); err != nil || st.flushes != 1 {
		t.Fatalf("Shutdown: %v, %d flushes; want the store flushed once", err, st.flushes)
	}
	b := st.bans["192.0.2.20"]
	if len(st.bans) != 2 || b.Jail != "manual" || b.Reason != "test" || b.Offences != 1 || b.Status != 403 ||
		b.Until.Sub(b.Since) != time.Hour || !st.bans["2001:db8:1:2::/64"].Until.IsZero() {
		t.Fatalf("stored bans = %+v", st.bans)
	}
	r2 := newRigStore(t, st, func(c *Config) { c.Now = time.Now })
	got := r2.g.Bans()
	if len(got) != 2 || got[0].Addr != "192.0.2.20" || got[1].Addr != "2001:db8:1:2::/64" || got[1].Until != nil {
		t.Fatalf("restored bans = %+v", got)
	}
	if w := r2.do("[2001:db8:1:2:ffff::1]:1", "GET", "/", nil); w.Code != 403 {
		t.Errorf("another address of the banned /64: %d", w.Code)
	}
}

func TestGuardOffOnlyIdentifies(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Enabled = false })
	var remote, scheme string
	r.h = r.g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		remote = req.RemoteAddr
		scheme = w.(interface{ ClientScheme() string }).ClientScheme()
		http.NotFound(w, req)
	}))
	for i := range 30 {
		r.do("10.0.0.1:1", "GET", fmt.Sprintf("/x%d", i), http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}})
	}
	if remote != "198.51.100.1:0" || scheme != "https" || len(r.g.Bans()) != 0 {
		t.Errorf("remote %q scheme %q bans %d", remote, scheme, len(r.g.Bans()))
	}
}

// BenchmarkGuardCommonPath is a request from a client in good standing to
// a known route, with 10,000 bans in force and 100 route patterns.
func BenchmarkGuardCommonPath(b *testing.B) {
	g, err := New(Config{Enabled: true, Jails: DefaultJails()})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		g.ban(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), time.Hour, "manual", "bench", 403, 0, false)
	}
	benchCommonPath(b, g)
}

// benchCommonPath measures the request of BenchmarkGuardCommonPath on g.
func benchCommonPath(b *testing.B, g *Guard) {
	raw := `{"framework":"flask","routes":[`
	for i, r := range hundredRoutes().Routes {
		if i > 0 {
			raw += ","
		}
		raw += fmt.Sprintf(`{"rule":%q,"regex":%q}`, r.Rule, r.Regex)
	}
	g.SetRoutes([]byte(raw + "]}"))
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	req := httptest.NewRequest("GET", "/section42/item/1234", nil)
	req.RemoteAddr = "192.0.2.1:5555"
	w := &nullWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nullWriter) WriteHeader(int)             {}

func TestListenerClosesBannedAtAccept(t *testing.T) {
	for _, tarpit := range []time.Duration{0, 300 * time.Millisecond} {
		g, err := New(Config{Enabled: true, Jails: DefaultJails(), Tarpit: tarpit})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Ban("127.0.0.1", time.Hour, "manual", "test"); err != nil {
			t.Fatal(err)
		}
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l := g.Listener(raw)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
				t.Error("a banned connection was accepted")
			}
		}()
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := c.Read(make([]byte, 10))
		held := time.Since(t0)
		c.Close()
		raw.Close()
		if n != 0 || held < tarpit || held > tarpit+2*time.Second {
			t.Errorf("tarpit %v: read %d bytes, connection closed after %v", tarpit, n, held)
		}
		if b := g.Bans(); len(b) != 1 || b[0].Refused != 1 {
			t.Errorf("bans = %+v, want one refused connection", b)
		}
	}
}
