package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"corral/internal/pool"
)

// collector reports, at scrape time, what other components already keep:
// the pool's workers and queue, the guard's counters, the WebSockets. No
// request pays for these.
type collector struct{ m *Metrics }

var (
	descQueue = prometheus.NewDesc("corral_queue_depth",
		"Requests waiting in the pool's queue for a worker.", nil, nil)
	descWorkers = prometheus.NewDesc("corral_workers",
		"Worker processes by state (busy: ready and running a request; spare: forked and loaded, waiting to take a slot over).",
		[]string{"state"}, nil)
	descRSS = prometheus.NewDesc("corral_worker_rss_bytes",
		"Resident memory of each worker slot's serving process.", []string{"worker"}, nil)
	descServed = prometheus.NewDesc("corral_worker_requests",
		"Requests the serving process of each worker slot has answered since it started.", []string{"worker"}, nil)

	descBans = prometheus.NewDesc("corral_guard_bans_total",
		"Bans put in force on this instance, by jail (manual and app included; fleet bans too).", []string{"jail"}, nil)
	descBansActive = prometheus.NewDesc("corral_guard_bans_active",
		"Bans in force, by jail.", []string{"jail"}, nil)
	descBanned = prometheus.NewDesc("corral_guard_banned_requests_total",
		"Requests refused because of a ban, by the ban's jail.", []string{"jail"}, nil)
	descBannedConns = prometheus.NewDesc("corral_guard_banned_connections_total",
		"Connections closed at accept because of a ban, by the ban's jail.", []string{"jail"}, nil)
	descLimited = prometheus.NewDesc("corral_guard_rate_limited_requests_total",
		"Requests answered 429 by a rate or concurrency limit.", nil, nil)
	descDenied = prometheus.NewDesc("corral_guard_denied_requests_total",
		"Requests refused by the deny list.", nil, nil)
	descStrict = prometheus.NewDesc("corral_guard_strict_route_404s_total",
		"Requests for unknown paths answered 404 by --strict-routes.", nil, nil)
	descRefused = prometheus.NewDesc("corral_guard_refused_connections_total",
		"Connections closed at accept: bans, the deny list and the per-client connection cap.", nil, nil)
	descTarpit = prometheus.NewDesc("corral_guard_tarpitted_connections_total",
		"Refused connections held open in the tarpit before they were closed.", nil, nil)
	descTarpitHeld = prometheus.NewDesc("corral_guard_tarpit_connections",
		"Connections held in the tarpit now.", nil, nil)
	descStoreUp = prometheus.NewDesc("corral_fleet_store_up",
		"1 while the fleet's shared store answers, 0 while the guard works alone.", nil, nil)

	descJournalRows = prometheus.NewDesc("corral_journal_rows_total",
		"Rows of the request journal (--journal): written to the database, or dropped because its bounded buffer was full.",
		[]string{"outcome"}, nil)

	descWSOpen = prometheus.NewDesc("corral_websocket_connections",
		"WebSocket connections open now.", nil, nil)
	descWSTotal = prometheus.NewDesc("corral_websocket_connections_total",
		"WebSocket connections accepted.", nil, nil)
	descWSMsgs = prometheus.NewDesc("corral_websocket_messages_total",
		"Whole WebSocket messages relayed: in from clients to the app, out from the app to clients.",
		[]string{"direction"}, nil)
)

// workerStates are the corral_workers state label's values, all reported
// (0 included) so a dashboard's series do not come and go.
var workerStates = []pool.State{pool.StateStarting, pool.StateReady, pool.StateBusy, pool.StateDraining,
	pool.StateStopping, pool.StateSpare}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueue, descWorkers, descRSS, descServed, descBans, descBansActive,
		descBanned, descBannedConns, descLimited, descDenied, descStrict, descRefused, descTarpit, descTarpitHeld,
		descStoreUp, descJournalRows, descWSOpen, descWSTotal, descWSMsgs} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	src := &c.m.cfg.Source
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if src.Pool != nil {
		workers, queued := src.Pool()
		gauge(descQueue, float64(queued))
		n := map[pool.State]int{}
		for _, w := range workers {
			n[w.State]++
		}
		for _, s := range workerStates {
			gauge(descWorkers, float64(n[s]), s.String())
		}
		for id, w := range servingBySlot(workers) {
			label := strconv.Itoa(id)
			gauge(descRSS, float64(w.RSS), label)
			gauge(descServed, float64(w.Served), label)
		}
	}
	if src.Guard != nil {
		g := src.Guard()
		counter(descLimited, float64(g.Limited))
		counter(descDenied, float64(g.Denied))
		counter(descStrict, float64(g.Strict404))
		counter(descRefused, float64(g.RefusedConns))
		if g.Store != nil {
			up := 0.0
			if g.Store.Up {
				up = 1
			}
			gauge(descStoreUp, up)
		}
	}
	if src.Jails != nil {
		for _, j := range src.Jails() {
			counter(descBans, float64(j.Bans), j.Jail)
			gauge(descBansActive, float64(j.Active), j.Jail)
			counter(descBanned, float64(j.Blocked), j.Jail)
			counter(descBannedConns, float64(j.Refused), j.Jail)
		}
	}
	if src.Tarpit != nil {
		held, total := src.Tarpit()
		counter(descTarpit, float64(total))
		gauge(descTarpitHeld, float64(held))
	}
	if src.Journal != nil {
		written, dropped := src.Journal()
		counter(descJournalRows, float64(written), "written")
		counter(descJournalRows, float64(dropped), "dropped")
	}
	if src.WebSockets != nil {
		ws := src.WebSockets()
		gauge(descWSOpen, float64(ws.Open))
		counter(descWSTotal, float64(ws.Opened))
		counter(descWSMsgs, float64(ws.MessagesIn), "in")
		counter(descWSMsgs, float64(ws.MessagesOut), "out")
	}
}

// servingBySlot picks one process per worker slot: the one serving (ready
// or busy), else the first listed. While a worker is replaced its slot
// has two processes, and a scrape may hold one series per label set.
// Spares are counted in corral_workers only.
func servingBySlot(workers []pool.WorkerStatus) map[int]pool.WorkerStatus {
	out := make(map[int]pool.WorkerStatus, len(workers))
	for _, w := range workers {
		if w.State == pool.StateSpare {
			continue
		}
		cur, ok := out[w.ID]
		serving := w.State == pool.StateReady || w.State == pool.StateBusy
		curServing := ok && (cur.State == pool.StateReady || cur.State == pool.StateBusy)
		if !ok || (serving && !curServing) {
			out[w.ID] = w
		}
	}
	return out
}
