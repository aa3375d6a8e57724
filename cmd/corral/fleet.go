package main

import (
	"log/slog"

	"corral/internal/config"
	"corral/internal/fleet"
)

// newFleet makes the fleet's shared guard store that --guard-store (or
// the [guard] table's store) names; nil when there is none, or when the
// guard is off. It connects later: Check, once privileges are dropped.
func newFleet(cfg *config.Config, log *slog.Logger) (*fleet.Store, error) {
	if cfg.GuardStore == "" {
		return nil, nil
	}
	if cfg.NoGuard {
		log.Warn("the guard is off (--no-guard): its shared store is not used", "component", "guard",
			"store", fleet.Redact(cfg.GuardStore))
		return nil, nil
	}
	return fleet.New(fleet.Config{URL: cfg.GuardStore, Prefix: cfg.GuardFile.StorePrefix,
		Timeout: cfg.GuardFile.StoreTimeout, Logger: log})
}
