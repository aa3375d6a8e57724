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

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"corral/internal/pool"
	"corral/internal/watch"
	"corral/internal/worker"
)

// control runs the server between start-up and shutdown: it answers
// SIGHUP (rolling reload of the workers; TLS certificates watch SIGHUP on
// their own), SIGTTIN/SIGTTOU (one worker more or fewer), the --reload
// file watcher, and keeps systemd informed.
type control struct {
	pool   *pool.Pool
	log    *slog.Logger
	notify func(state string) // sd_notify; a no-op outside systemd

	mu sync.Mutex // one reload at a time
}

func newControl(p *pool.Pool, log *slog.Logger) *control {
	return &control{pool: p, log: log, notify: func(state string) {
		if _, err := daemon.SdNotify(false, state); err != nil {
			log.Debug("sd_notify failed", "error", err)
		}
	}}
}

// run handles signals until SIGTERM or SIGINT, which it returns.
func (c *control) run(ctx context.Context, sigs <-chan os.Signal) os.Signal {
	c.notify("READY=1\nSTATUS=" + c.status())
	stopWatchdog := c.watchdog()
	defer stopWatchdog()
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
				c.notify("STOPPING=1\nSTATUS=shutting down")
				return sig
			}
		case <-statusTick.C:
			c.notify("STATUS=" + c.status())
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
	c.notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d\nSTATUS=reloading", monotonicUsec()))
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
	c.notify("READY=1\nSTATUS=" + c.status())
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

// watchdog pings systemd's watchdog at half its interval while the pool's
// lock can be taken (a wedged master stops pinging and gets restarted).
func (c *control) watchdog() (stop func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				c.pool.Ready() // takes the pool lock: proves the master is not wedged
				c.notify("WATCHDOG=1")
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
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

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants
// with RELOADING=1.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1e3
}
