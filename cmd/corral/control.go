package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"corral/internal/pool"
	"corral/internal/systemd"
	"corral/internal/watch"
	"corral/internal/worker"
)

// control runs the server between start-up and shutdown: it answers
// SIGHUP (rolling reload of the workers; TLS certificates watch SIGHUP on
// their own), SIGTTIN/SIGTTOU (one worker more or fewer), the --reload
// file watcher, and keeps systemd informed.
type control struct {
	pool    *pool.Pool
	log     *slog.Logger
	systemd *systemd.Notifier

	mu sync.Mutex // one reload at a time
}

// newControl returns the control of pool p; log is the server's logger,
// without a component.
func newControl(p *pool.Pool, log *slog.Logger) *control {
	return &control{pool: p, log: log.With("component", "master"), systemd: systemd.New(log)}
}

// run handles signals until SIGTERM or SIGINT, which it returns.
func (c *control) run(ctx context.Context, sigs <-chan os.Signal) os.Signal {
	c.systemd.Ready(c.status())
	watchdogCtx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	// Taking the pool's lock proves the master is not wedged.
	go c.systemd.Watchdog(watchdogCtx, func() { c.pool.Ready() })
	statusTick := time.NewTicker(10 * time.Second)
	defer statusTick.Stop()
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				c.reload(ctx, "SIGHUP")
			case syscall.SIGTTIN:
				c.pool.AddWorker()
			case syscall.SIGTTOU:
				c.pool.RemoveWorker()
			default:
				c.systemd.Stopping("shutting down")
				return sig
			}
		case <-statusTick.C:
			c.systemd.Status(c.status())
		}
	}
}

// reload replaces every worker with one running freshly imported code,
// one at a time. If the new code does not load, the old workers keep
// serving and the traceback is logged once.
func (c *control) reload(ctx context.Context, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log.Info("reloading", "trigger", why)
	c.systemd.Reloading("reloading")
	start := time.Now()
	err := c.pool.Reload(ctx)
	var be *worker.BootError
	switch {
	case errors.As(err, &be):
		c.log.Error("reload failed: the new code does not load; the running workers keep serving",
			"error", be.Err, "traceback", be.Traceback)
	case err != nil:
		c.log.Error("reload failed; the running workers keep serving", "error", err)
	default:
		c.log.Info("reloaded", "workers", c.pool.Workers(), "took", time.Since(start).Round(time.Millisecond))
	}
	c.systemd.Ready(c.status())
}

// watchFiles reloads whenever the app's source files change (--reload).
func (c *control) watchFiles(ctx context.Context, dir string, extra []string) {
	err := watch.Run(ctx, watch.Config{
		Files:    c.pool.AppFiles,
		Globs:    extra,
		Dir:      dir,
		Logger:   c.log,
		OnChange: func(changed string) { c.reload(ctx, "changed "+changed) },
	})
	if err != nil {
		c.log.Error("--reload cannot watch files", "error", err)
	}
}

func (c *control) status() string {
	ws, queued := c.pool.Status()
	busy, ready := 0, 0
	for _, w := range ws {
		if w.State == pool.StateReady || w.State == pool.StateBusy {
			ready++
		}
		busy += w.InFlight
	}
	return fmt.Sprintf("%d workers ready, %d requests in flight, %d queued", ready, busy, queued)
}
