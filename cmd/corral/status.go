package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"corral/internal/admin"
	"corral/internal/front"
	"corral/internal/guard"
	"corral/internal/pool"
)

// statusDoc is what the admin API serves at /status.
type statusDoc struct {
	Version   string              `json:"version"`
	Pid       int                 `json:"pid"`
	App       string              `json:"app"`
	Binds     []string            `json:"binds"`
	Started   time.Time           `json:"started"`
	UptimeSec float64             `json:"uptime_seconds"`
	Ready     bool                `json:"ready"`
	Reason    string              `json:"not_ready_reason,omitempty"`
	Interface string              `json:"interface,omitempty"` // "wsgi" or "asgi"
	Queued    int                 `json:"queued"`
	Workers   []pool.WorkerStatus `json:"workers"`
	// WebSockets counts the open WebSockets (ASGI apps only).
	WebSockets *front.WebSocketStats `json:"websockets,omitempty"`
	Guard      *guard.Stats          `json:"guard,omitempty"`
	Linger     *front.LingerStats    `json:"lingering_close,omitempty"`
}

// adminSource adapts the running server to admin.Source.
type adminSource struct {
	pool    *pool.Pool
	guard   *guard.Guard
	linger  *front.Linger
	front   *front.Handler
	asgi    bool
	app     string
	binds   []string
	started time.Time
}

func (a *adminSource) Status() any {
	ws, q := a.pool.Status()
	ok, why := a.pool.Ready()
	doc := statusDoc{
		Version: version, Pid: os.Getpid(), App: a.app, Binds: a.binds, Started: a.started,
		UptimeSec: time.Since(a.started).Seconds(), Ready: ok, Reason: why, Queued: q, Workers: ws,
	}
	doc.Interface = "wsgi"
	if a.asgi {
		doc.Interface = "asgi"
		if a.front != nil {
			st := a.front.WebSocketStats()
			doc.WebSockets = &st
		}
	}
	if a.guard != nil {
		st := a.guard.Stats()
		doc.Guard = &st
	}
	if a.linger != nil {
		st := a.linger.Stats()
		doc.Linger = &st
	}
	return doc
}

func (a *adminSource) Ready() (bool, string) { return a.pool.Ready() }

// runStatus is `corral status`: the status of one server (--admin-bind) or
// of every corral of this user found in the runtime directory.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("corral status", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("admin-bind", "", "admin API address of the server (default: every server in the runtime directory)")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: corral status [--admin-bind ADDRESS] [--json]\n\n"+
			"Print the state of running corral servers. Exit status: 0 when every server\n"+
			"found is ready, 3 when one is not ready (starting, draining, no worker),\n"+
			"1 when one cannot be reached, so it can serve as a health check.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return exitOK
		}
		return exitConfig
	}
	addrs := []string{*addr}
	if *addr == "" {
		dir := admin.RuntimeDir(os.Getenv)
		addrs = admin.Sockets(dir)
		if len(addrs) == 0 {
			fmt.Fprintf(stderr, "corral status: no running corral found in %s (use --admin-bind)\n", dir)
			return exitFail
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code := exitOK
	for i, a := range addrs {
		st, body, err := admin.Get(ctx, a, "/status")
		if err == nil && st != http.StatusOK {
			err = fmt.Errorf("admin API at %s answered %d", a, st)
		}
		if err != nil {
			fmt.Fprintf(stderr, "corral status: %v\n", err)
			code = exitFail
			continue
		}
		var doc statusDoc
		if err := json.Unmarshal(body, &doc); err != nil {
			fmt.Fprintf(stderr, "corral status: %s: %v\n", a, err)
			code = exitFail
			continue
		}
		if !doc.Ready && code == exitOK {
			code = exitNotReady
		}
		if *asJSON {
			stdout.Write(body)
			continue
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printStatus(stdout, &doc)
	}
	return code
}

func printStatus(w io.Writer, d *statusDoc) {
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
	tw.Flush()
}

func roundDur(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}
