package main

import (
	"log/slog"
	"net/http"

	"corral/internal/config"
	"corral/internal/static"
)

// staticMounts checks that the directories of --static exist.
func staticMounts(cfg *config.Config) ([]static.Mount, error) {
	mounts := make([]static.Mount, len(cfg.Static))
	for i, m := range cfg.Static {
		mounts[i] = static.Mount(m)
	}
	return mounts, static.CheckMounts(mounts)
}

// withStatic puts the static mounts in front of the application handler;
// with none it returns app unchanged. Static requests go to the access log
// like the application's.
func withStatic(app http.Handler, mounts []static.Mount, cfg *config.Config, logf static.LogFunc, log *slog.Logger) http.Handler {
	if len(mounts) == 0 {
		return app
	}
	scfg := static.Config{Mounts: mounts, MaxAge: cfg.StaticMaxAge, SendTimeout: cfg.SendTimeout, Next: app, Logger: log, Log: logf}
	for _, m := range mounts {
		log.Info("serving static files", "component", "static", "prefix", m.Prefix, "dir", m.Dir)
	}
	return static.New(scfg)
}
