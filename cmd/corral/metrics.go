package main

import (
	"log/slog"

	"corral/internal/config"
	"corral/internal/front"
	"corral/internal/guard"
	"corral/internal/journal"
	"corral/internal/metrics"
	"corral/internal/pool"
)

// newStatsd starts the statsd sender of --statsd-host; nil without one.
func newStatsd(cfg *config.Config, log *slog.Logger) (*metrics.Statsd, error) {
	if cfg.StatsdHost == "" {
		return nil, nil
	}
	return metrics.NewStatsd(metrics.StatsdConfig{
		Host: cfg.StatsdHost, Prefix: cfg.StatsdPrefix, Tags: cfg.DogstatsdTags, Logger: log,
	})
}

// metricsSource is what /metrics and the status page read at scrape time.
func metricsSource(p *pool.Pool, g *guard.Guard, fh *front.Handler, asgi bool, requests *journal.Requests) metrics.Source {
	src := metrics.Source{Pool: p.Status, Guard: g.Stats, Jails: g.JailStats, Tarpit: g.Tarpit}
	if asgi {
		src.WebSockets = fh.WebSocketStats
	}
	if requests != nil {
		src.Journal = func() (uint64, uint64) { return requests.Written(), requests.Dropped() }
	}
	return src
}
