// Package metrics owns corral's metrics: the Prometheus registry served at
// /metrics on the admin listener, the per-request counting (Wrap, the
// outermost HTTP handler), the scrape-time collector that reads the pool,
// the guard and the WebSockets where their state already is, the statsd
// sender (gunicorn's metric names) and the short history the live status
// page draws.
//
// Every label is bounded: a route label is a rule of the app (as `corral
// routes` prints it), a prefix or static mount, or Unmatched, and at most
// MaxRoutes of them; methods outside the standard ones share "OTHER";
// status codes outside 100-599 share "other".
package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"corral/internal/front"
	"corral/internal/guard"
	"corral/internal/pool"
)

// Unmatched is the route label of requests for paths that belong to no
// route the app reported (and of every request when its routes are
// unknown): one label value, so probes for random paths cannot grow the
// series.
const Unmatched = "(unmatched)"

// OtherRoutes is the route label once MaxRoutes route labels are in use.
const OtherRoutes = "(other)"

// MaxRoutes bounds the route label's values (reloads may bring new rules).
const MaxRoutes = 500

// DurationBuckets are the request and queue-wait histograms' buckets, in
// seconds: from a fast cached answer to a slow report.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Restart reasons, as corral_worker_restarts_total's reason label.
var restartReasons = []string{"crash", "timeout", "stuck", "max-requests", "max-lifetime", "max-rss", "reload"}

// reasonLabel maps the pool's reason for replacing a worker to the
// reason label: a worker that stopped answering heartbeats, or whose
// event loop stayed blocked, is stuck.
func reasonLabel(r string) string {
	switch r {
	case "heartbeat", "event loop blocked", "stuck":
		return "stuck"
	}
	for _, known := range restartReasons {
		if r == known {
			return r
		}
	}
	return "other"
}

// Source is what the scrape-time collector and the status page read. Every
// field may be nil (that part is then not reported). The functions are
// called from scrapes, concurrently.
type Source struct {
	// Pool is the workers and the number of queued requests (pool.Status).
	Pool func() ([]pool.WorkerStatus, int)
	// Guard is the guard's counters; Jails its counts per jail; Tarpit
	// the connections held in the tarpit now and put there in total.
	Guard  func() guard.Stats
	Jails  func() []guard.JailStat
	Tarpit func() (held, total int64)
	// WebSockets are the front's WebSocket counters (ASGI apps).
	WebSockets func() front.WebSocketStats
	// Journal is the request journal's rows written and dropped (--journal).
	Journal func() (written, dropped uint64)
}

// Config configures Metrics.
type Config struct {
	// Route maps a path to its route label for the requests the guard did
	// not match (guard off, or refused before matching): guard.Route. ""
	// means Unmatched. nil = every such request is Unmatched.
	Route   func(path string) string
	Source  Source
	Version string  // corral's version, for corral_build_info
	Statsd  *Statsd // nil = no statsd
	Logger  *slog.Logger
}

// Metrics counts requests and serves the registry. Create it with New.
type Metrics struct {
	cfg Config
	reg *prometheus.Registry

	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	QueueWait prometheus.Histogram // for pool.Config.QueueWait
	restarts  *prometheus.CounterVec
	bytesIn   prometheus.Counter
	bytesOut  prometheus.Counter
	inFlight  atomic.Int64

	mu     sync.RWMutex
	series map[seriesKey]prometheus.Counter
	routes map[string]*route

	writers sync.Pool
	live    live
}

type seriesKey struct {
	route  string
	method uint8
	code   uint16
}

// route is one route label's series.
type route struct {
	name     string
	duration prometheus.Observer
	hist     prometheus.Histogram // the same, read by the status page
	count    atomic.Int64
}

// New makes the metrics and registers them, with Go's runtime and process
// collectors, in a registry of their own.
func New(cfg Config) *Metrics {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		cfg: cfg, reg: prometheus.NewRegistry(),
		series: map[seriesKey]prometheus.Counter{}, routes: map[string]*route{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corral_requests_total",
			Help: "HTTP requests answered, by route (the app's rule), method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "corral_request_duration_seconds",
			Help:    "Time from the request's head to the end of its answer, by route.",
			Buckets: DurationBuckets,
		}, []string{"route"}),
		QueueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "corral_queue_wait_seconds",
			Help:    "Time requests waited in the pool's queue for a worker (0 for those dispatched at once).",
			Buckets: DurationBuckets,
		}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corral_worker_restarts_total",
			Help: "Workers replaced, by reason: crash, timeout, stuck, max-requests, max-lifetime, max-rss, reload.",
		}, []string{"reason"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "corral_request_bytes_total",
			Help: "Request body bytes received (as declared by Content-Length, or counted when chunked).",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "corral_response_bytes_total",
			Help: "Response body bytes sent.",
		}),
	}
	m.writers.New = func() any { return &writer{} }
	for _, r := range restartReasons {
		m.restarts.WithLabelValues(r)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "corral_build_info",
		Help:        "corral's version and the Go version it was built with; always 1.",
		ConstLabels: prometheus.Labels{"version": cfg.Version, "goversion": runtime.Version()},
	})
	build.Set(1)
	inflight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "corral_requests_in_flight",
		Help: "HTTP requests being answered now.",
	}, func() float64 { return float64(m.inFlight.Load()) })
	m.reg.MustRegister(m.requests, m.duration, m.QueueWait, m.restarts, m.bytesIn, m.bytesOut,
		build, inflight, &collector{m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Statsd != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "corral_statsd_dropped_total",
			Help: "statsd metrics dropped because the send buffer was full or a send failed.",
		}, func() float64 { return float64(cfg.Statsd.Dropped()) }))
	}
	return m
}

// SetSource sets what the collector and the status page read. Call it
// before Handler or Live serve anything: the server's parts are built
// after the metrics they report to.
func (m *Metrics) SetSource(src Source) { m.cfg.Source = src }

// Handler serves the registry in Prometheus's text format (or OpenMetrics
// when asked).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(m.cfg.Logger.With("component", "metrics").Handler(), slog.LevelWarn),
		EnableOpenMetrics: true,
	})
}

// Registry is the registry Handler serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Restarted counts a worker replacement (pool.Config.OnRestart) and keeps
// it for the status page.
func (m *Metrics) Restarted(r pool.Restart) {
	reason := reasonLabel(r.Reason)
	m.restarts.WithLabelValues(reason).Inc()
	m.live.restarted(r)
}

// methods are the method label's values; every other method is "OTHER".
var methods = [...]string{"OTHER", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}

func methodIndex(s string) uint8 {
	for i := 1; i < len(methods); i++ {
		if s == methods[i] {
			return uint8(i)
		}
	}
	return 0
}

// codeLabel spells a status code; codes outside 100-599 are "other", and
// 0 (no answer written: the client went away or the handler aborted) is
// "0".
func codeLabel(c uint16) string {
	switch {
	case c == 0:
		return "0"
	case c < 100 || c > 599:
		return "other"
	}
	return strconv.Itoa(int(c))
}

// observe counts one answered request.
func (m *Metrics) observe(routeName, method string, status int, out int64, d time.Duration) {
	if routeName == "" {
		routeName = Unmatched
	}
	code := uint16(status)
	if status < 0 || status > 999 {
		code = 1000
	}
	key := seriesKey{routeName, methodIndex(method), code}
	m.mu.RLock()
	c := m.series[key]
	rt := m.routes[routeName]
	m.mu.RUnlock()
	if c == nil || rt == nil {
		c, rt = m.newSeries(key)
	}
	c.Inc()
	rt.count.Add(1)
	rt.duration.Observe(d.Seconds())
	if out > 0 {
		m.bytesOut.Add(float64(out))
	}
	if s := m.cfg.Statsd; s != nil {
		s.request(d, status)
	}
}

// newSeries makes (or finds) the series of key, folding the route into
// OtherRoutes when MaxRoutes are in use.
func (m *Metrics) newSeries(key seriesKey) (prometheus.Counter, *route) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rt := m.routes[key.route]
	if rt == nil {
		if len(m.routes) >= MaxRoutes {
			key.route = OtherRoutes
			rt = m.routes[key.route]
		}
		if rt == nil {
			h := m.duration.WithLabelValues(key.route)
			rt = &route{name: key.route, duration: h, hist: h.(prometheus.Histogram)}
			m.routes[key.route] = rt
		}
	}
	c := m.series[key]
	if c == nil {
		c = m.requests.WithLabelValues(key.route, methods[key.method], codeLabel(key.code))
		m.series[key] = c
	}
	return c, rt
}

// Wrap returns next with every request counted. It is the outermost
// handler, so it sees the guard's refusals and static files too. The
// guard, inside it, tells the route it matched (front.RouteNoter); for
// the requests it did not match, Config.Route is asked.
func (m *Metrics) Wrap(next http.Handler) http.Handler {
	return handlerFunc{m: m, next: next}
}

type handlerFunc struct {
	m    *Metrics
	next http.Handler
}

func (h handlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.m
	start := time.Now()
	mw := m.writers.Get().(*writer)
	*mw = writer{Recorder: front.Recorder{ResponseWriter: w}}
	m.inFlight.Add(1)
	switch {
	case r.ContentLength > 0:
		m.bytesIn.Add(float64(r.ContentLength))
	case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
		// Chunked: count what is read (an allocation, for these only).
		r.Body = &countingBody{ReadCloser: r.Body, n: m.bytesIn}
	}
	path, method := r.URL.Path, r.Method
	defer func() {
		// Deferred, so a handler that aborts (http.ErrAbortHandler) is
		// counted too; its panic goes on to net/http.
		m.inFlight.Add(-1)
		rt := mw.route
		if !mw.noted {
			rt = ""
			if m.cfg.Route != nil {
				rt = m.cfg.Route(path)
			}
		}
		m.observe(rt, method, mw.Status(), mw.Bytes(), time.Since(start))
		*mw = writer{}
		m.writers.Put(mw)
	}()
	h.next.ServeHTTP(mw, r)
}

// writer records the answer and the route the guard matched.
type writer struct {
	front.Recorder
	route string
	noted bool
}

// NoteRoute keeps the route the guard matched (front.RouteNoter).
func (w *writer) NoteRoute(rule string) { w.route, w.noted = rule, true }

// countingBody counts the bytes read from a chunked request body.
type countingBody struct {
	ReadCloser io.ReadCloser
	n          prometheus.Counter
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.n.Add(float64(n))
	}
	return n, err
}

func (b *countingBody) Close() error { return b.ReadCloser.Close() }
