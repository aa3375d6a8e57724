package main

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"corral/internal/config"
	"corral/internal/guard"
	"corral/internal/journal"
)

// guardConfig builds the guard's configuration from corral's, which
// config.Load has parsed and checked.
func guardConfig(cfg *config.Config, static []string, log *slog.Logger) guard.Config {
	gf := cfg.GuardFile
	gc := guard.Config{
		Enabled:              !cfg.NoGuard,
		Trusted:              cfg.ForwardedAllowIPs,
		StrictRoutes:         cfg.StrictRoutes,
		Allow:                gf.Allow,
		Deny:                 gf.Deny,
		ResolveEvery:         gf.ResolveInterval,
		ClientRate:           guard.Limit{Rate: gf.Rate, Burst: gf.Burst},
		GlobalRate:           guard.Limit{Rate: gf.GlobalRate, Burst: gf.GlobalBurst},
		MaxConnsPerClient:    gf.MaxConnsPerClient,
		MaxInFlightPerClient: gf.MaxInFlightPerClient,
		Tarpit:               gf.Tarpit,
		MaxClients:           gf.MaxClients,
		LearnMax:             gf.LearnMax,
		Static:               static,
		Logger:               log,
	}
	for i := range guard.NumJails {
		j := gf.Jails[guard.JailName(i)]
		gc.Jails[i] = guard.Jail{MaxRetry: j.MaxRetry, FindTime: j.FindTime, BanTime: j.BanTime, Factor: j.Factor, MaxBanTime: j.MaxBanTime}
	}
	for _, r := range gf.Routes {
		gc.RouteLimits = append(gc.RouteLimits, guard.RouteLimit{Path: r.Path, Limit: guard.Limit{Rate: r.Rate, Burst: r.Burst}})
	}
	for _, c := range gf.Classes {
		gc.Classes = append(gc.Classes, guard.Class{Name: c.Name, Nets: c.CIDRs, Header: c.Header, Secret: c.Secret, Reserve: c.Reserve})
	}
	return gc
}

// openBanStore opens the ban store in the state directory; nil when the
// guard is off or the store cannot be opened (bans then live in memory,
// which the log says).
func openBanStore(cfg *config.Config, log *slog.Logger) *journal.Bans {
	if cfg.NoGuard {
		return nil
	}
	path := filepath.Join(cfg.StateDirectory(os.Getenv), "bans.db")
	store, err := journal.OpenBans(path, time.Now().Add(-48*time.Hour), log)
	if err != nil {
		log.Warn("ban store unavailable; bans will not survive a restart", "component", "guard", "error", err)
		return nil
	}
	log.Info("ban store open", "component", "guard", "path", path)
	return store
}

// banStore adapts the SQLite ban store to the guard's Store. The journal
// keeps its own row type so that it imports none of the server's packages
// (DESIGN.md, "Layout"). The two Ban types have the same fields, so each
// converts to the other: a field added to one and not the other fails to
// compile here instead of being dropped on the way to the disk.
type banStore struct{ db *journal.Bans }

var _ guard.Store = banStore{}

func (s banStore) Load(ctx context.Context) ([]guard.Ban, error) {
	rows, err := s.db.Load(ctx)
	if err != nil {
		return nil, err
	}
	bans := make([]guard.Ban, len(rows))
	for i, r := range rows {
		bans[i] = guard.Ban(r)
	}
	return bans, nil
}

func (s banStore) Put(b guard.Ban)                 { s.db.Put(journal.Ban(b)) }
func (s banStore) Delete(addr string)              { s.db.Delete(addr) }
func (s banStore) Flush(ctx context.Context) error { return s.db.Flush(ctx) }

// reserve turns the classes' shares of the worker threads into the pool's
// Reserve: index = class (the first class listed is the highest).
func reserve(classes []guard.Class, threads int) []int {
	if len(classes) == 0 {
		return nil
	}
	n := len(classes)
	out := make([]int, n+1)
	for i, c := range classes {
		if c.Reserve > 0 {
			out[n-i] = max(1, int(math.Ceil(c.Reserve*float64(threads))))
		}
	}
	return out
}
