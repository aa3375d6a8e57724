package main

import (
	"log/slog"
	"net/http"

	"corral/internal/config"
	"corral/internal/front"
	"corral/internal/static"
)

// staticMounts parses --static; relative directories are relative to the
// app directory (--chdir, itself relative to the working directory).
func staticMounts(cfg *config.Config) ([]static.Mount, error) {
	return static.ParseMounts(cfg.Static, cfg.Chdir)
}

// withStatic puts the static mounts in front of the application handler;
// with none it returns app unchanged. Static requests go to the access log
// like the application's.
func withStatic(app http.Handler, mounts []static.Mount, cfg *config.Config, access *front.AccessLog, log *slog.Logger) http.Handler {
	if len(mounts) == 0 {
		return app
	}
	scfg := static.Config{Mounts: mounts, MaxAge: cfg.StaticMaxAge, SendTimeout: cfg.SendTimeout, Next: app, Logger: log}
	if access != nil {
		scfg.Log = access.Log
	}
	for _, m := range mounts {
		log.Info("serving static files", "component", "static", "prefix", m.Prefix, "dir", m.Dir)
	}
	return static.New(scfg)
}
