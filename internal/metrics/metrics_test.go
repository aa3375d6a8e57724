package metrics

import (
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"corral/internal/front"
	"corral/internal/guard"
	"corral/internal/pool"
)

// noter is a handler in the guard's place: it tells the route it matched.
type noter struct {
	route string
	code  int
}

func (n noter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n.route != "-" {
		w.(front.RouteNoter).NoteRoute(n.route)
	}
	w.WriteHeader(n.code)
	_, _ = io.WriteString(w, "hello")
}

func serve(t testing.TB, h http.Handler, method, path string) {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	h.ServeHTTP(httptest.NewRecorder(), r)
}

func TestRequestLabels(t *testing.T) {
	m := New(Config{Route: func(p string) string {
		if p == "/fallback" {
			return "/<fallback>"
		}
		return ""
	}})
	serve(t, m.Wrap(noter{route: "/user/<name>", code: 200}), "GET", "/user/ann")
	serve(t, m.Wrap(noter{route: "/user/<name>", code: 200}), "GET", "/user/bob")
	serve(t, m.Wrap(noter{route: "", code: 404}), "GET", "/wp-login.php")
	serve(t, m.Wrap(noter{route: "-", code: 403}), "GET", "/fallback")
	serve(t, m.Wrap(noter{route: "-", code: 403}), "GET", "/other")
	serve(t, m.Wrap(noter{route: "/x", code: 200}), "BREW", "/x")
	serve(t, m.Wrap(noter{route: "/x", code: 200}), "PATCH", "/x")

	for _, tc := range []struct {
		route, method, code string
		want                float64
	}{
		{"/user/<name>", "GET", "200", 2},
		{Unmatched, "GET", "404", 1},
		{"/<fallback>", "GET", "403", 1},
		{Unmatched, "GET", "403", 1},
		{"/x", "OTHER", "200", 1},
		{"/x", "PATCH", "200", 1},
	} {
		got := testutil.ToFloat64(m.requests.WithLabelValues(tc.route, tc.method, tc.code))
		if got != tc.want {
			t.Errorf("corral_requests_total{route=%q,method=%q,code=%q} = %v, want %v", tc.route, tc.method, tc.code, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(m.bytesOut); got != 7*5 {
		t.Errorf("response bytes = %v, want %d", got, 7*5)
	}
	if got := m.inFlight.Load(); got != 0 {
		t.Errorf("in flight after the requests = %d, want 0", got)
	}
}

func TestRouteCap(t *testing.T) {
	m := New(Config{})
	for i := range MaxRoutes + 50 {
		m.observe("/r"+strconv.Itoa(i), "GET", 200, 0, time.Millisecond)
	}
	m.mu.RLock()
	n := len(m.routes)
	m.mu.RUnlock()
	if n != MaxRoutes+1 {
		t.Errorf("route labels = %d, want %d (the cap and %s)", n, MaxRoutes+1, OtherRoutes)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues(OtherRoutes, "GET", "200")); got != 50 {
		t.Errorf("requests counted under %s = %v, want 50", OtherRoutes, got)
	}
}

func TestCodeLabel(t *testing.T) {
	for _, tc := range []struct {
		code uint16
		want string
	}{{0, "0"}, {99, "other"}, {101, "101"}, {599, "599"}, {600, "other"}, {1000, "other"}} {
		if got := codeLabel(tc.code); got != tc.want {
			t.Errorf("codeLabel(%d) = %q, want %q", tc.code, got, tc.want)
		}
	}
}

func TestRestartReasons(t *testing.T) {
	m := New(Config{})
	for _, r := range []string{"crash", "heartbeat", "event loop blocked", "timeout", "reload", "max-rss", "what"} {
		m.Restarted(pool.Restart{Worker: 1, Pid: 10, Reason: r, At: time.Now()})
	}
	for reason, want := range map[string]float64{"crash": 1, "stuck": 2, "timeout": 1, "reload": 1, "max-rss": 1,
		"max-requests": 0, "max-lifetime": 0, "other": 1} {
		if got := testutil.ToFloat64(m.restarts.WithLabelValues(reason)); got != want {
			t.Errorf("restarts{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	l := m.Live()
	if len(l.Restarts) != 7 || l.Restarts[0].Reason != "what" {
		t.Errorf("live restarts = %+v, want 7, newest (what) first", l.Restarts)
	}
	if l.RestartCounts["stuck"] != 2 {
		t.Errorf("live restart counts = %v, want stuck 2", l.RestartCounts)
	}
}

func TestChunkedBodyCounted(t *testing.T) {
	m := New(Config{})
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.ReadAll(r.Body) }))
	r := httptest.NewRequest("POST", "/up", strings.NewReader("0123456789"))
	r.ContentLength = -1
	h.ServeHTTP(httptest.NewRecorder(), r)
	r = httptest.NewRequest("POST", "/up", strings.NewReader("abc"))
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got := testutil.ToFloat64(m.bytesIn); got != 13 {
		t.Errorf("request bytes = %v, want 13", got)
	}
}

func TestCollector(t *testing.T) {
	m := New(Config{})
	m.SetSource(Source{
		Pool: func() ([]pool.WorkerStatus, int) {
			return []pool.WorkerStatus{
				{ID: 1, Pid: 11, State: pool.StateBusy, RSS: 100, Served: 5},
				{ID: 2, Pid: 12, State: pool.StateDraining, RSS: 200, Served: 9},
				{ID: 2, Pid: 13, State: pool.StateReady, RSS: 300, Served: 1},
				{ID: 2, Pid: 14, State: pool.StateSpare, RSS: 400},
			}, 3
		},
		Guard: func() guard.Stats {
			return guard.Stats{Limited: 4, Store: &guard.SharedStats{Up: false}}
		},
		Jails: func() []guard.JailStat {
			return []guard.JailStat{{Jail: "probe", Bans: 2, Active: 1, Blocked: 7, Refused: 3}}
		},
		Tarpit:     func() (int64, int64) { return 1, 6 },
		WebSockets: func() front.WebSocketStats { return front.WebSocketStats{Open: 2, MessagesIn: 8} },
		Journal:    func() (uint64, uint64) { return 40, 2 },
	})
	want := `
# HELP corral_queue_depth Requests waiting in the pool's queue for a worker.
# TYPE corral_queue_depth gauge
corral_queue_depth 3
# HELP corral_worker_rss_bytes Resident memory of each worker slot's serving process.
# TYPE corral_worker_rss_bytes gauge
corral_worker_rss_bytes{worker="1"} 100
corral_worker_rss_bytes{worker="2"} 300
# HELP corral_workers Worker processes by state (busy: ready and running a request; spare: forked and loaded, waiting to take a slot over).
# TYPE corral_workers gauge
corral_workers{state="busy"} 1
corral_workers{state="draining"} 1
corral_workers{state="ready"} 1
corral_workers{state="spare"} 1
corral_workers{state="starting"} 0
corral_workers{state="stopping"} 0
# HELP corral_guard_bans_total Bans put in force on this instance, by jail (manual and app included; fleet bans too).
# TYPE corral_guard_bans_total counter
corral_guard_bans_total{jail="probe"} 2
# HELP corral_guard_banned_connections_total Connections closed at accept because of a ban, by the ban's jail.
# TYPE corral_guard_banned_connections_total counter
corral_guard_banned_connections_total{jail="probe"} 3
# HELP corral_guard_rate_limited_requests_total Requests answered 429 by a rate or concurrency limit.
# TYPE corral_guard_rate_limited_requests_total counter
corral_guard_rate_limited_requests_total 4
# HELP corral_guard_tarpitted_connections_total Refused connections held open in the tarpit before they were closed.
# TYPE corral_guard_tarpitted_connections_total counter
corral_guard_tarpitted_connections_total 6
# HELP corral_fleet_store_up 1 while the fleet's shared store answers, 0 while the guard works alone.
# TYPE corral_fleet_store_up gauge
corral_fleet_store_up 0
# HELP corral_journal_rows_total Rows of the request journal (--journal): written to the database, or dropped because its bounded buffer was full.
# TYPE corral_journal_rows_total counter
corral_journal_rows_total{outcome="dropped"} 2
corral_journal_rows_total{outcome="written"} 40
# HELP corral_websocket_messages_total Whole WebSocket messages relayed: in from clients to the app, out from the app to clients.
# TYPE corral_websocket_messages_total counter
corral_websocket_messages_total{direction="in"} 8
corral_websocket_messages_total{direction="out"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"corral_queue_depth", "corral_worker_rss_bytes", "corral_workers", "corral_guard_bans_total",
		"corral_guard_banned_connections_total", "corral_guard_rate_limited_requests_total",
		"corral_guard_tarpitted_connections_total", "corral_fleet_store_up", "corral_journal_rows_total",
		"corral_websocket_messages_total"); err != nil {
		t.Error(err)
	}
	// Every metric passes the registry's own consistency checks.
	if _, err := m.Registry().Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
}

func TestQuantile(t *testing.T) {
	// 100 requests: 50 within 1 ms, 40 more within 2.5 ms, 10 within 5 ms.
	cum := make([]uint64, len(DurationBuckets))
	for i, b := range DurationBuckets {
		switch {
		case b >= .005:
			cum[i] = 100
		case b >= .0025:
			cum[i] = 90
		case b >= .001:
			cum[i] = 50
		}
	}
	for _, tc := range []struct{ q, want float64 }{{.5, .001}, {.9, .0025}, {.25, .0005}, {.95, .00375}} {
		if got := quantile(tc.q, cum, 100); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := quantile(.5, cum, 0); !math.IsNaN(got) {
		t.Errorf("quantile of nothing = %v, want NaN", got)
	}
}

func TestLiveRates(t *testing.T) {
	m := New(Config{})
	m.observe("/a", "GET", 200, 0, 2*time.Millisecond)
	m.Live()
	// Make the sample look old, so the next call samples again.
	m.live.mu.Lock()
	m.live.samples[0].at = m.live.samples[0].at.Add(-2 * time.Second)
	m.live.mu.Unlock()
	for range 10 {
		m.observe("/a", "GET", 200, 0, 2*time.Millisecond)
	}
	l := m.Live()
	if len(l.Routes) != 1 || l.Routes[0].Route != "/a" || l.Routes[0].Total != 11 {
		t.Fatalf("routes = %+v, want /a with 11", l.Routes)
	}
	r := l.Routes[0]
	if r.Rate < 4 || r.Rate > 5.1 { // 10 requests over a bit more than 2 s
		t.Errorf("rate = %v, want about 5", r.Rate)
	}
	if r.P50 < 1 || r.P50 > 2.5 {
		t.Errorf("p50 = %v ms, want within the 1-2.5 ms bucket", r.P50)
	}
	if len(l.History) != 1 || l.History[0] != l.Rate {
		t.Errorf("history = %v, rate %v: want one entry equal to the rate", l.History, l.Rate)
	}
}

func TestStatsd(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := NewStatsd(StatsdConfig{Host: pc.LocalAddr().String(), Prefix: "shop..", Tags: "env:test,team:web"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := New(Config{Statsd: s})
	m.observe("/a", "GET", 201, 0, 1500*time.Microsecond)
	got := readLines(t, pc, 3)
	want := []string{
		"shop.gunicorn.request.duration:1.500|ms|#env:test,team:web",
		"shop.gunicorn.requests:1|c|@1.0|#env:test,team:web",
		"shop.gunicorn.request.status.201:1|c|@1.0|#env:test,team:web",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("statsd lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	s.SetWorkers(func() int { return 4 })
	if got := readLines(t, pc, 1); got[0] != "shop.gunicorn.workers:4|g|#env:test,team:web" {
		t.Errorf("workers gauge = %q", got[0])
	}
}

// readLines reads datagrams until it has n lines.
func readLines(t *testing.T, pc net.PacketConn, n int) []string {
	t.Helper()
	var lines []string
	buf := make([]byte, 64<<10)
	for len(lines) < n {
		_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %q: %v", lines, err)
		}
		if k > statsdPacket {
			t.Errorf("datagram of %d bytes, more than %d", k, statsdPacket)
		}
		lines = append(lines, strings.Split(string(buf[:k]), "\n")...)
	}
	return lines
}

func TestStatsdNeverBlocks(t *testing.T) {
	// Nobody listens: sends fail and are counted; requests go on.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	s, err := NewStatsd(StatsdConfig{Host: addr})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 * statsdQueue {
		s.request(time.Millisecond, 200)
	}
	s.Close()
	if s.Dropped() == 0 {
		t.Error("no metric counted as dropped")
	}
}

func TestStatsdAddress(t *testing.T) {
	for _, tc := range []struct{ in, network, addr string }{
		{"localhost:9125", "udp", "localhost:9125"},
		{"statsd", "udp", "statsd:8125"},
		{"[::1]:1", "udp", "[::1]:1"},
		{"unix:/run/statsd.sock", "unixgram", "/run/statsd.sock"},
		{"unix:///run/statsd.sock", "unixgram", "/run/statsd.sock"},
		{"host:0", "", ""},
		{"host:x", "", ""},
		{":8125", "", ""},
		{"unix:", "", ""},
	} {
		n, a, err := StatsdAddress(tc.in)
		if (err != nil) != (tc.network == "") || n != tc.network || a != tc.addr {
			t.Errorf("StatsdAddress(%q) = %q, %q, %v; want %q, %q", tc.in, n, a, err, tc.network, tc.addr)
		}
	}
	for in, want := range map[string]string{"": "", "app": "app.", "app.": "app.", "a.b...": "a.b."} {
		if got := StatsdPrefix(in); got != want {
			t.Errorf("StatsdPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkWrap is the cost a request pays for its metrics: the wrapper,
// its writer from a pool, the route noted by the handler inside, and the
// counters and histogram.
func BenchmarkWrap(b *testing.B) {
	m := New(Config{})
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(front.RouteNoter).NoteRoute("/user/<name>")
		w.WriteHeader(200)
	}))
	r := httptest.NewRequest("GET", "/user/ann", nil)
	w := discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkBare is the same handler without the metrics, to subtract.
func BenchmarkBare(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	r := httptest.NewRequest("GET", "/user/ann", nil)
	w := discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(p []byte) (int, error) { return len(p), nil }
func (d discard) WriteHeader(int)             {}

// flaskRoutes is a HELLO routes object like a small Flask app's.
const flaskRoutes = `{"framework":"flask","routes":[
 {"rule":"/","regex":"^/$","methods":["GET"],"endpoint":"index"},
 {"rule":"/user/<name>","regex":"^/user/(?P<name>[^/]+)$","methods":["GET"],"endpoint":"user"},
 {"rule":"/<int:year>","regex":"^/(?P<year>\\d+)$","methods":["GET"],"endpoint":"year"}],
 "prefixes":[],"warnings":[]}`

// benchGuard is a request through the guard (routes matched, a client
// tracked), with or without the metrics around it: the difference is what
// the metrics cost a request in place.
func benchGuard(b *testing.B, withMetrics bool) {
	g, err := guard.New(guard.Config{Enabled: true, Jails: guard.DefaultJails()})
	if err != nil {
		b.Fatal(err)
	}
	g.SetRoutes([]byte(flaskRoutes))
	var h http.Handler = g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	if withMetrics {
		h = New(Config{Route: g.Route}).Wrap(h)
	}
	r := httptest.NewRequest("GET", "/user/ann", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	w := discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func BenchmarkGuard(b *testing.B)            { benchGuard(b, false) }
func BenchmarkGuardWithMetrics(b *testing.B) { benchGuard(b, true) }

func TestStatsdLogCounters(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := NewStatsd(StatsdConfig{Host: pc.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	log := slog.New(s.LogHandler(slog.DiscardHandler)).With("component", "test")
	log.Info("not counted")
	log.Warn("counted")
	log.Error("counted too")
	got := readLines(t, pc, 2)
	if strings.Join(got, "\n") != "gunicorn.log.warning:1|c|@1.0\ngunicorn.log.error:1|c|@1.0" {
		t.Errorf("log counters: %q", got)
	}
}

func TestStatsdUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "statsd.sock")
	pc, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := NewStatsd(StatsdConfig{Host: "unix:" + path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.request(time.Millisecond, 404)
	got := readLines(t, pc, 3)
	if got[2] != "gunicorn.request.status.404:1|c|@1.0" {
		t.Errorf("lines over the Unix socket: %q", got)
	}
}
