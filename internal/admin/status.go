package admin

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"corral/internal/front"
	"corral/internal/guard"
	"corral/internal/listen"
	"corral/internal/pool"
)

// Status is the document served at /status.
type Status struct {
	Version   string              `json:"version"`
	Pid       int                 `json:"pid"`
	App       string              `json:"app"`
	Binds     []string            `json:"binds"`
	Started   time.Time           `json:"started"`
	UptimeSec float64             `json:"uptime_seconds"`
	Ready     bool                `json:"ready"`
	Reason    string              `json:"not_ready_reason,omitempty"` // why not ready
	Interface string              `json:"interface,omitempty"`        // "wsgi" or "asgi"
	Queued    int                 `json:"queued"`
	Workers   []pool.WorkerStatus `json:"workers"`
	// WebSockets counts the open WebSockets (ASGI apps only).
	WebSockets *front.WebSocketStats `json:"websockets,omitempty"`
	Guard      *guard.Stats          `json:"guard,omitempty"`           // nil = no guard
	Linger     *listen.LingerStats   `json:"lingering_close,omitempty"` // nil = not counted
}

// WriteStatus writes d for people, as `corral status` prints it.
func WriteStatus(w io.Writer, d *Status) error {
	ready := "ready"
	if !d.Ready {
		ready = "NOT READY: " + d.Reason
	}
	app := d.App
	if d.Interface == "asgi" {
		app += " (ASGI)"
	}
	fmt.Fprintf(w, "corral %s  pid %d  %s  up %s  queued %d\n  app %s  on %s\n",
		d.Version, d.Pid, ready, roundDur(time.Duration(d.UptimeSec*float64(time.Second))), d.Queued,
		app, strings.Join(d.Binds, ", "))
	if ws := d.WebSockets; ws != nil {
		fmt.Fprintf(w, "  websockets open %d  opened %d\n", ws.Open, ws.Opened)
	}
	if g := d.Guard; g != nil {
		state := "off"
		if g.Enabled {
			state = "on"
		}
		fmt.Fprintf(w, "  guard %s  routes %s (%d patterns, %d learned)  bans %d  blocked %d  refused %d  rate-limited %d\n",
			state, g.Routes, g.Patterns, g.Learned, g.Bans, g.BlockedByBans, g.RefusedConns, g.Limited)
		if g.Store != nil {
			writeStore(w, g.Store)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  WORKER\tPID\tSTATE\tIN FLIGHT\tSERVED\tRSS\tAGE\tCURRENT")
	for _, ws := range d.Workers {
		cur := "-"
		if c := ws.Current; c != nil {
			cur = fmt.Sprintf("%s %s (%s)", c.Method, c.Path, roundDur(time.Duration(c.ElapsedMS*float64(time.Millisecond))))
		}
		state, inflight := ws.State.String(), fmt.Sprint(ws.InFlight)
		if ws.LoopBlocked {
			state += " (loop blocked)"
		}
		if ws.WebSockets > 0 {
			inflight += fmt.Sprintf(" (%d ws)", ws.WebSockets)
		}
		fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%d\t%.1f MiB\t%s\t%s\n", ws.ID, ws.Pid, state, inflight,
			ws.Served, float64(ws.RSS)/(1<<20), roundDur(time.Duration(ws.AgeSec*float64(time.Second))), cur)
	}
	return tw.Flush()
}

// writeStore writes the guard's shared store: its URL (without the
// password), whether it answers, since when it does not, and what waits
// for it or was dropped.
func writeStore(w io.Writer, s *guard.SharedStats) {
	state := "up"
	if !s.Up {
		state = "DOWN"
		if s.DownSince != nil {
			state += fmt.Sprintf(" since %s (%s)", s.DownSince.UTC().Format(time.RFC3339),
				roundDur(time.Duration(s.DownSeconds*float64(time.Second))))
		}
	}
	fmt.Fprintf(w, "  guard store %s  %s  outages %d  pending bans %d  dropped updates %d  errors %d\n",
		s.URL, state, s.Outages, s.PendingBans, s.Dropped, s.Errors)
	if !s.Up && s.LastError != "" {
		fmt.Fprintf(w, "    last error: %s\n", s.LastError)
	}
}

// WriteBans writes bans for people, as `corral bans list` prints them,
// with the time left counted from now.
func WriteBans(w io.Writer, bans []guard.BanInfo, now time.Time) error {
	if len(bans) == 0 {
		_, err := fmt.Fprintln(w, "no bans")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tJAIL\tLEFT\tOFFENCES\tBLOCKED\tREASON")
	for _, b := range bans {
		left := "forever"
		if b.Until != nil {
			left = roundDur(b.Until.Sub(now))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", b.Addr, b.Jail, left, b.Offences, b.Blocked+b.Refused, b.Reason)
	}
	return tw.Flush()
}

// roundDur rounds d for display: to the minute from an hour, to a tenth
// of a second from a second, else to the millisecond.
func roundDur(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}
