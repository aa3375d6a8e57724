package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"corral/internal/admin"
	"corral/internal/config"
	"corral/internal/front"
	"corral/internal/guard"
	"corral/internal/listen"
	"corral/internal/pool"
)

// adminSource adapts the running server to admin.Source.
type adminSource struct {
	pool    *pool.Pool
	guard   *guard.Guard
	linger  *listen.Linger
	front   *front.Handler
	asgi    bool
	app     string
	binds   []string
	started time.Time
}

func (a *adminSource) Status() admin.Status {
	ws, q := a.pool.Status()
	ok, why := a.pool.Ready()
	doc := admin.Status{
		Version: corralVersion(), Pid: os.Getpid(), App: a.app, Binds: a.binds, Started: a.started,
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

// bindStrings spells the binds as /status shows them.
func bindStrings(binds []config.Bind) []string {
	out := make([]string, len(binds))
	for i, b := range binds {
		out[i] = b.String()
	}
	return out
}

// banSource adapts the guard to the admin API.
type banSource struct{ g *guard.Guard }

func (b banSource) List() []guard.BanInfo { return b.g.Bans() }

func (b banSource) Ban(addr string, d time.Duration, reason string) (string, error) {
	return b.g.Ban(addr, d, "manual", reason)
}

func (b banSource) Unban(addr string) (bool, error) { return b.g.Unban(addr, "the admin API") }

// adminAddrs is the servers a client subcommand talks to: the one at
// addr, else every corral of this user in the runtime directory. It
// reports on stderr when there is none.
func adminAddrs(cmd, addr string, stderr io.Writer) []string {
	if addr != "" {
		return []string{addr}
	}
	dir := admin.RuntimeDir(os.Getenv)
	addrs := admin.Sockets(dir)
	if len(addrs) == 0 {
		fmt.Fprintf(stderr, "corral %s: no running corral found in %s (use --admin-bind)\n", cmd, dir)
	}
	return addrs
}

// runStatus is `corral status`: the status of one server (--admin-bind) or
// of every corral of this user found in the runtime directory.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("corral status", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("admin-bind", "", "admin API address of the server (default: every server in the runtime directory)")
	token := fs.String("admin-token", os.Getenv("CORRAL_ADMIN_TOKEN"), "the server's --admin-token, for an admin API on TCP reached from another host (default $CORRAL_ADMIN_TOKEN)")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: corral status [--admin-bind ADDRESS] [--admin-token TOKEN] [--json]\n\n"+
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
	addrs := adminAddrs("status", *addr, stderr)
	if len(addrs) == 0 {
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code := exitOK
	for i, a := range addrs {
		doc, body, err := admin.Client{Addr: a, Token: *token}.Status(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "corral status: %v\n", err)
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
		admin.WriteStatus(stdout, doc)
	}
	return code
}
