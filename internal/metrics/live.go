package metrics

import (
	"math"
	"sort"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"corral/internal/pool"
)

// The live status page polls Live every second. Live samples the per-route
// counters and histograms at most once per liveEvery, whoever asks, and
// keeps liveSamples of them: rates come from the last two samples,
// percentiles from the bucket counts of the last liveWindow samples, the
// charts from all of them. No sampling happens while nobody looks.
const (
	liveEvery    = 900 * time.Millisecond
	liveSamples  = 60
	liveWindow   = 10
	liveRestarts = 20 // recent restarts kept for the page
)

// Live is the document the status page draws, besides the admin status.
type Live struct {
	// Rate is requests per second over the last sample interval; History
	// the rates of the samples kept, oldest first.
	Rate     float64        `json:"rate"`
	History  []float64      `json:"history"`
	InFlight int64          `json:"in_flight"`
	Routes   []LiveRoute    `json:"routes"`
	Restarts []pool.Restart `json:"restarts"` // newest first
	// Restarts by reason since the start.
	RestartCounts map[string]int64 `json:"restart_counts"`
}

// LiveRoute is one route's line on the status page. Percentiles are in
// milliseconds over the last liveWindow samples (about 10 s), estimated
// from the histogram's buckets as Prometheus's histogram_quantile does; -1
// when there was no request.
type LiveRoute struct {
	Route   string    `json:"route"`
	Total   int64     `json:"total"`
	Rate    float64   `json:"rate"`
	P50     float64   `json:"p50_ms"`
	P90     float64   `json:"p90_ms"`
	P99     float64   `json:"p99_ms"`
	History []float64 `json:"history"` // rates, oldest first
}

type liveSample struct {
	at     time.Time
	routes map[string]routeSample
}

type routeSample struct {
	count   uint64
	buckets []uint64 // cumulative, per DurationBuckets
}

type live struct {
	mu       sync.Mutex
	samples  []liveSample // oldest first, at most liveSamples
	restarts []pool.Restart
	counts   map[string]int64
}

func (l *live) restarted(r pool.Restart) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = map[string]int64{}
	}
	l.counts[reasonLabel(r.Reason)]++
	l.restarts = append(l.restarts, r)
	if len(l.restarts) > liveRestarts {
		l.restarts = append(l.restarts[:0:0], l.restarts[len(l.restarts)-liveRestarts:]...)
	}
}

// Live samples if the last sample is older than liveEvery and returns the
// page's document.
func (m *Metrics) Live() Live {
	now := time.Now()
	m.mu.RLock()
	routes := make([]*route, 0, len(m.routes))
	for _, r := range m.routes {
		routes = append(routes, r)
	}
	m.mu.RUnlock()

	l := &m.live
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.samples); n == 0 || now.Sub(l.samples[n-1].at) >= liveEvery {
		s := liveSample{at: now, routes: make(map[string]routeSample, len(routes))}
		for _, r := range routes {
			var d dto.Metric
			if err := r.hist.Write(&d); err != nil || d.Histogram == nil {
				continue
			}
			rs := routeSample{count: d.Histogram.GetSampleCount()}
			for _, b := range d.Histogram.Bucket {
				rs.buckets = append(rs.buckets, b.GetCumulativeCount())
			}
			s.routes[r.name] = rs
		}
		l.samples = append(l.samples, s)
		if len(l.samples) > liveSamples {
			l.samples = append(l.samples[:0], l.samples[len(l.samples)-liveSamples:]...)
		}
	}
	doc := Live{InFlight: m.inFlight.Load(), RestartCounts: map[string]int64{}}
	for _, r := range restartReasons {
		doc.RestartCounts[r] = l.counts[r]
	}
	for i := len(l.restarts) - 1; i >= 0; i-- {
		doc.Restarts = append(doc.Restarts, l.restarts[i])
	}
	// Rates per interval between consecutive samples.
	doc.History = make([]float64, 0, len(l.samples))
	perRoute := map[string][]float64{}
	for i := 1; i < len(l.samples); i++ {
		a, b := l.samples[i-1], l.samples[i]
		dt := b.at.Sub(a.at).Seconds()
		total := 0.0
		for name, rb := range b.routes {
			d := float64(rb.count - a.routes[name].count)
			total += d
			h := perRoute[name]
			if h == nil {
				h = make([]float64, i-1, len(l.samples))
			}
			perRoute[name] = append(h, d/dt)
		}
		for name, h := range perRoute { // routes without requests in this interval
			if len(h) < i {
				perRoute[name] = append(h, 0)
			}
		}
		doc.History = append(doc.History, total/dt)
	}
	if n := len(doc.History); n > 0 {
		doc.Rate = doc.History[n-1]
	}
	last := l.samples[len(l.samples)-1]
	first := l.samples[max(0, len(l.samples)-1-liveWindow)]
	for name, rs := range last.routes {
		lr := LiveRoute{Route: name, Total: int64(rs.count), History: perRoute[name], P50: -1, P90: -1, P99: -1}
		if h := lr.History; len(h) > 0 {
			lr.Rate = h[len(h)-1]
		}
		if lr.History == nil {
			lr.History = []float64{}
		}
		old := first.routes[name]
		if len(l.samples) == 1 {
			old = routeSample{}
		}
		if rs.count > old.count {
			delta := make([]uint64, len(rs.buckets))
			for i := range rs.buckets {
				var o uint64
				if i < len(old.buckets) {
					o = old.buckets[i]
				}
				delta[i] = rs.buckets[i] - o
			}
			n := rs.count - old.count
			lr.P50 = quantile(0.5, delta, n) * 1000
			lr.P90 = quantile(0.9, delta, n) * 1000
			lr.P99 = quantile(0.99, delta, n) * 1000
		}
		doc.Routes = append(doc.Routes, lr)
	}
	sort.Slice(doc.Routes, func(i, j int) bool {
		if doc.Routes[i].Rate != doc.Routes[j].Rate {
			return doc.Routes[i].Rate > doc.Routes[j].Rate
		}
		return doc.Routes[i].Route < doc.Routes[j].Route
	})
	return doc
}

// quantile estimates the q-quantile in seconds from cumulative bucket
// counts over DurationBuckets and the total count n, interpolating
// linearly inside the bucket as histogram_quantile does. Past the last
// bucket it answers the last bound.
func quantile(q float64, cum []uint64, n uint64) float64 {
	if n == 0 {
		return math.NaN()
	}
	rank := q * float64(n)
	lower, below := 0.0, uint64(0)
	for i, c := range cum {
		if i >= len(DurationBuckets) {
			break
		}
		upper := DurationBuckets[i]
		if float64(c) >= rank {
			in := c - below
			if in == 0 {
				return upper
			}
			return lower + (upper-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = upper, c
	}
	return DurationBuckets[len(DurationBuckets)-1]
}
