// Package systemd tells the service manager how the server is doing, by
// the sd_notify protocol: ready, reloading, stopping, a one-line status,
// and the watchdog's keep-alive pings. Outside systemd (NOTIFY_SOCKET is
// not set) every call does nothing.
//
// Socket activation, which hands corral its listening sockets, belongs to
// package listen, which owns the sockets.
package systemd

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Notifier sends state changes to systemd, on the socket NOTIFY_SOCKET
// names when each message is sent. Safe for concurrent use.
type Notifier struct {
	log *slog.Logger
}

// New returns a Notifier that logs failures to send, at debug level, to
// log (nil = discarded): a notification is advice, never a reason to
// stop.
func New(log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{log: log.With("component", "systemd")}
}

// Ready says the service is up (again, after Reloading), with a status
// line.
func (n *Notifier) Ready(status string) { n.send("READY=1\nSTATUS=" + status) }

// Reloading says the service is reloading its configuration or code; it
// ends with the next Ready.
func (n *Notifier) Reloading(status string) {
	n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d\nSTATUS=%s", monotonicUsec(), status))
}

// Stopping says the service is shutting down.
func (n *Notifier) Stopping(status string) { n.send("STOPPING=1\nSTATUS=" + status) }

// Status replaces the status line systemctl status shows.
func (n *Notifier) Status(status string) { n.send("STATUS=" + status) }

func (n *Notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Debug("sd_notify failed", "error", err)
	}
}

// Watchdog pings systemd's watchdog (WatchdogSec=) until ctx ends, at
// half the interval systemd asked for, each time after alive returns:
// alive proves the server is not wedged (corral takes the pool's lock),
// so a server stuck in it stops pinging and systemd restarts it. Without
// a watchdog for this process (WATCHDOG_USEC unset, or WATCHDOG_PID
// another process's) it returns at once. It blocks: run it in its own
// goroutine. While alive blocks, Watchdog neither pings nor returns.
func (n *Notifier) Watchdog(ctx context.Context, alive func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Debug("watchdog settings unreadable; not pinging", "error", err)
		return
	}
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			alive()
			n.send("WATCHDOG=1")
		}
	}
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
