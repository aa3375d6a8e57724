package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"corral/internal/admin"
	"corral/internal/config"
	"corral/internal/front"
	"corral/internal/guard"
	"corral/internal/h1"
	"corral/internal/journal"
	"corral/internal/listen"
	"corral/internal/logs"
	"corral/internal/metrics"
	"corral/internal/pool"
	"corral/internal/proto"
	"corral/internal/static"
	"corral/internal/trust"
	"corral/internal/worker"
)

// serve runs the server until SIGTERM or SIGINT. Shutdown is one sequence:
// stop accepting, let running requests finish within the graceful timeout,
// stop the workers (EOF, then TERM, then KILL), flush logs, exit 0. A
// second signal skips straight to killing the workers.
func serve(cfg *config.Config, wcfg worker.Config, log *slog.Logger) int {
	// statsd first: it counts the warnings and errors logged from now on,
	// as gunicorn's gunicorn.log.* counters do.
	statsd, err := newStatsd(cfg, log)
	if err != nil {
		log.Error(err.Error(), "component", "master")
		return exitConfig
	}
	if statsd != nil {
		defer statsd.Close()
		log = slog.New(statsd.LogHandler(log.Handler()))
	}
	mlog := log.With("component", "master")
	mounts, merr := staticMounts(cfg)
	if merr != nil {
		mlog.Error(merr.Error())
		return exitConfig
	}

	var prefixes []string
	for _, m := range mounts {
		prefixes = append(prefixes, m.Prefix)
	}
	gcfg := guardConfig(cfg, prefixes, log)
	gcfg.ScriptName = wcfg.Boot.Environ["SCRIPT_NAME"]
	// The fleet's shared store is closed last, after the guard's Shutdown
	// has pushed the ban changes still queued.
	shared, err := newFleet(cfg, log)
	if err != nil {
		mlog.Error(err.Error(), "component", "guard")
		return exitConfig
	}
	if shared != nil {
		defer shared.Close()
		gcfg.Shared = shared
	}
	g, err := guard.New(gcfg)
	if err != nil {
		mlog.Error("guard: " + err.Error())
		return exitConfig
	}
	met := metrics.New(metrics.Config{Route: g.Route, Version: corralVersion(), Statsd: statsd, Logger: log})

	// Sockets and log files first: a privileged port, or a path only root
	// may write, needs root, which corral gives up (--user) before any
	// worker starts.
	certs, err := loadCerts(cfg, log)
	if err != nil {
		mlog.Error(err.Error())
		return exitConfig
	}
	if certs != nil {
		certCtx, stopCerts := context.WithCancel(context.Background())
		defer stopCerts()
		go watchCerts(certCtx, certs)
	}
	act, err := listen.TakeActivation()
	if err != nil {
		mlog.Error(err.Error())
		return exitFail
	}
	// Lingering close after early answers, bounded as docs/http.md says.
	linger := listen.NewLinger(listen.LingerConfig{})
	listeners, err := listen.OpenAll(context.Background(), listenConfig(cfg, act, wcfg.Credential, certs, g.Listener, linger, log))
	if err != nil {
		mlog.Error(err.Error())
		return exitFail
	}
	defer listeners.Close()
	var adminSrv *admin.Server
	if cfg.AdminBind != "off" {
		if adminSrv, err = admin.Open(cfg.AdminBind); err != nil {
			mlog.Error(err.Error())
			return exitFail
		}
		defer adminSrv.Close()
	}
	var access *front.AccessLog
	if cfg.AccessLogFile != "" {
		out, closeAccess, err := logs.Open(cfg.AccessLogFile, os.Stdout)
		if err != nil {
			mlog.Error("cannot open the access log", "path", cfg.AccessLogFile, "error", err)
			return exitConfig
		}
		defer closeAccess()
		if cfg.AccessLogParts != nil {
			access = front.NewGunicornAccessLog(out, cfg.AccessLogParts)
		} else {
			access = front.NewAccessLog(out, cfg.AccessLogFormat)
		}
		defer access.Close()
	}
	if wcfg.Credential, err = dropPrivileges(wcfg.Credential, adminSrv, log); err != nil {
		mlog.Error(err.Error())
		return exitFail
	}

	// The ban store is opened as the account corral serves as, so it can
	// write the database's journal files later.
	var store guard.Store
	if db := openBanStore(cfg, log); db != nil {
		defer db.Close()
		store = banStore{db}
	}
	// The request journal too; closed last, so that the requests answered
	// while draining are written.
	var requests *journal.Requests
	if cfg.Journal != "" {
		requests, err = journal.OpenRequests(cfg.Journal, journal.RequestsConfig{
			FlushInterval: cfg.JournalFlushInterval, MaxAge: cfg.JournalMaxAge, MaxSize: cfg.JournalMaxSize,
		}, log)
		if err != nil {
			mlog.Error("cannot open the request journal", "path", cfg.Journal, "error", err)
			return exitFail
		}
		defer requests.Close()
		mlog.Info("request journal open", "component", "journal", "path", cfg.Journal, "flush_interval", cfg.JournalFlushInterval.String())
	}
	// A store that refuses us (a wrong password) stops corral here; one
	// that does not answer does not: the guard works alone until it does.
	if shared != nil {
		if err := shared.Check(context.Background()); err != nil {
			mlog.Error(err.Error(), "component", "guard")
			return exitConfig
		}
	}
	if err := g.Start(context.Background(), store); err != nil {
		mlog.Warn("stored bans could not be loaded", "component", "guard", "error", err)
	}
	defer func() {
		// Last of the shutdown sequence, before the store closes: the bans
		// made while draining are written too.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			mlog.Warn("the guard's bans were not all stored", "component", "guard", "error", err)
		}
	}()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU)
	defer signal.Stop(sigs)

	spawner := worker.NewSpawner()
	defer spawner.Close()
	p := pool.New(pool.Config{
		Workers:           cfg.Workers,
		Threads:           cfg.Threads,
		MaxQueue:          cfg.MaxQueue,
		QueueTimeout:      cfg.QueueTimeout,
		Timeout:           cfg.Timeout,
		SlowRequest:       cfg.SlowRequest,
		BootTimeout:       cfg.BootTimeout,
		GracefulTimeout:   cfg.GracefulTimeout,
		WarmupPath:        cfg.WarmupPath,
		Preload:           cfg.Preload,
		StuckAfter:        cfg.StuckAfter,
		MaxStuck:          cfg.MaxStuck,
		MaxRequests:       cfg.MaxRequests,
		MaxRequestsJitter: cfg.MaxRequestsJitter,
		MaxLifetime:       cfg.MaxLifetime,
		MaxLifetimeJitter: cfg.MaxLifetimeJitter,
		MaxRSS:            int64(cfg.MaxRSS) << 20,
		Reserve:           reserve(gcfg.Classes, cfg.Workers*cfg.Threads),
		ReserveASGI:       reserve(gcfg.Classes, cfg.Workers*cfg.WorkerConnections),
		OnReady:           func(h *worker.Hello) { g.SetRoutes(h.Routes) },
		OnBan:             func(b proto.BanRequest) { g.AppBan(b.Addr, b.Seconds, b.Reason) },
		OnRestart:         met.Restarted,
		QueueWait:         met.QueueWait,
		Spawner:           spawner,
		Worker:            wcfg,
		Logger:            log,
	})
	mlog.Info("starting", "version", corralVersion(), "app", cfg.App, "workers", cfg.Workers, "threads", cfg.Threads, "python", wcfg.Python)

	booted := make(chan error, 1)
	go func() { booted <- p.Start(context.Background()) }()
starting:
	for {
		select {
		case err = <-booted:
			break starting
		case sig := <-sigs:
			if sig != syscall.SIGTERM && sig != syscall.SIGINT {
				continue // reloads and resizing wait until the pool is up
			}
			mlog.Info("signal during start-up; stopping", "signal", sig.String())
			p.Close() // Start fails with pool.ErrClosed; Close waits for it
			return exitFail
		}
	}
	if err != nil {
		var be *worker.BootError
		if errors.As(err, &be) {
			mlog.Error("the app failed to load", "app", cfg.App, "error", be.Err, "traceback", be.Traceback)
		} else {
			mlog.Error("no worker could start", "error", err)
		}
		return exitFail
	}
	asgi := p.ASGI()
	if asgi {
		mlog.Info("serving an ASGI app", "app", cfg.App, "worker_connections", cfg.WorkerConnections, "lifespan", cfg.Lifespan)
	}

	fcfg := front.Config{
		ScriptName:            wcfg.Boot.Environ["SCRIPT_NAME"],
		LimitRequestLine:      cfg.LimitRequestLine,
		LimitRequestFields:    cfg.LimitRequestFields,
		LimitRequestFieldSize: cfg.LimitRequestFieldSize,
		MaxBodySize:           cfg.MaxBodySize,
		BodyTimeout:           cfg.BodyTimeout,
		SendTimeout:           cfg.SendTimeout,
		RouteTimeouts:         routeTimeouts(cfg.RouteTimeouts),
		ASGI:                  asgi,
		WSMaxSize:             cfg.WSMaxSize,
		WSPingInterval:        cfg.WSPingInterval,
		WSPingTimeout:         cfg.WSPingTimeout,
		WSCompression:         cfg.WSPerMessageDeflate,
		Pool:                  p,
		AccessLog:             access,
		Journal:               requests,
		Logger:                log,
	}
	if cfg.RequestIDHeader != "" {
		fcfg.RequestIDs = front.NewRequestIDs(cfg.RequestIDHeader, trust.New(cfg.ForwardedAllowIPs))
	}
	fh := front.New(fcfg)
	met.SetSource(metricsSource(p, g, fh, asgi, requests))
	if statsd != nil {
		statsd.SetWorkers(p.Workers)
	}
	var logStatic static.LogFunc
	if access != nil || requests != nil {
		logStatic = fh.LogStatic
		g.SetLog(fh.LogStatic) // the guard's own answers: bans, limits, strict 404s
	}
	var handler = g.Wrap(withStatic(fh, mounts, cfg, logStatic, log))
	if fcfg.RequestIDs != nil {
		// Outside the guard: it decides before the guard rewrites the
		// client's address, and the guard's own refusals carry the ID.
		handler = fcfg.RequestIDs.Wrap(handler)
	}
	// The metrics outermost: they count the guard's answers too.
	handler = met.Wrap(handler)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.HeaderTimeout,
		IdleTimeout:       cfg.KeepAlive,
		MaxHeaderBytes:    fcfg.MaxHeaderBytes(),
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelDebug),
	}
	if cfg.KeepAlive == 0 {
		srv.SetKeepAlivesEnabled(false)
	}
	configureServer(srv, cfg, listeners)
	// Plain HTTP/1.x on corral's own fast path (package h1); what it does
	// not serve, and everything over TLS, is net/http's.
	var fast *h1.Server
	if certs == nil && cfg.HTTP1 == "corral" {
		fast = &h1.Server{
			Handler:           srv.Handler,
			ReadHeaderTimeout: srv.ReadHeaderTimeout,
			IdleTimeout:       srv.IdleTimeout,
			MaxHeaderBytes:    srv.MaxHeaderBytes,
			ConnState:         srv.ConnState,
			ConnContext:       srv.ConnContext,
			ErrorLog:          srv.ErrorLog,
			HTTPServer:        srv,
		}
		if cfg.KeepAlive == 0 {
			fast.SetKeepAlivesEnabled(false)
		}
	}

	var serving sync.WaitGroup
	if adminSrv != nil {
		src := &adminSource{pool: p, guard: g, linger: linger, front: fh, asgi: asgi, app: cfg.App, binds: bindStrings(cfg.Bind), started: time.Now()}
		adminSrv.SetToken(cfg.AdminToken)
		adminSrv.Handle("GET /metrics", met.Handler())
		adminSrv.Handle("GET /{$}", admin.Page())
		adminSrv.Handle("GET /live", admin.Live(src, banSource{g}, func() any { return met.Live() }))
		mlog.Info("admin API listening", "address", adminSrv.Addr().String())
		go func() {
			if err := adminSrv.Serve(src, banSource{g}); !errors.Is(err, http.ErrServerClosed) {
				mlog.Error("admin API stopped", "error", err)
			}
		}()
	}
	for _, l := range listeners.Listeners() {
		mlog.Info("listening", "address", l.String())
		serving.Add(1)
		go func() {
			defer serving.Done()
			var nl net.Listener = l
			if fast != nil {
				nl = fast.Listener(l)
			}
			if err := srv.Serve(nl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				mlog.Error("serving stopped", "address", l.String(), "error", err)
			}
		}()
	}

	ctl := newControl(p, log)
	runCtx, stopRun := context.WithCancel(context.Background())
	if cfg.Reload {
		go ctl.watchFiles(runCtx, cfg.AppDir(), cfg.ReloadExtra)
	}
	sig := ctl.run(runCtx, sigs)
	stopRun()
	mlog.Info("shutting down gracefully", "signal", sig.String(), "graceful_timeout", cfg.GracefulTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.GracefulTimeout)
	defer cancel()
	forced := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			mlog.Warn("second signal; stopping now", "signal", sig.String())
			close(forced)
			cancel()  // the HTTP server stops waiting for its handlers
			p.Close() // the workers get SIGTERM now and SIGKILL soon after
		case <-ctx.Done():
		}
	}()
	// The graceful shutdown, in order, each step within what is left of
	// --graceful-timeout (docs/ARCHITECTURE.md).
	steps := []struct {
		what string
		run  func(context.Context) error
	}{
		// Not ready at once, so probes take the instance out of rotation
		// while it still serves.
		{"mark not ready", func(context.Context) error { p.MarkNotReady(); return nil }},
		// Stop accepting; connections accepted just before hand in their
		// first request; keep-alives end.
		{"stop accepting", func(context.Context) error {
			if fast != nil {
				fast.SetKeepAlivesEnabled(false)
			}
			listeners.Quiesce(context.Background(), srv)
			return nil
		}},
		// HTTP before the pool: its Shutdown waits for the running handlers,
		// which wait for their requests in the pool. Shutting the pool down
		// at the same time would refuse a request read but not submitted.
		// Past the timeout the connections close at once.
		// WebSockets at the same time: they may go on until the graceful
		// timeout, then get 1001 and their apps are told so. Shutdown waits
		// for those over HTTP/2 (handlers still), so the connections close
		// only after their 1001.
		{"finish HTTP requests and WebSockets", func(ctx context.Context) error {
			wsDone := make(chan struct{})
			go func() {
				defer close(wsDone)
				fh.ShutdownWebSockets(ctx)
			}()
			var fastErr error
			fastDone := make(chan struct{})
			go func() {
				defer close(fastDone)
				if fast != nil {
					if fastErr = fast.Shutdown(ctx); fastErr != nil {
						fast.Close()
					}
				}
			}()
			err := srv.Shutdown(ctx)
			<-wsDone
			<-fastDone
			if err != nil {
				srv.Close()
			}
			return errors.Join(err, fastErr)
		}},
		// What is still queued or running may finish, then the workers stop
		// (EOF, TERM, KILL).
		{"stop the workers", p.Shutdown},
	}
	for _, st := range steps {
		if err := st.run(ctx); errors.Is(err, context.DeadlineExceeded) {
			mlog.Warn("graceful timeout reached", "step", st.what, "error", err)
		}
	}
	srv.Close()
	if fast != nil {
		fast.Close()
	}
	serving.Wait()
	select {
	case <-forced:
		return exitFail
	default:
	}
	mlog.Info("stopped")
	return exitOK
}

// routeTimeouts hands --route-timeout to the front end. The two types
// have the same fields, so a field added to one alone fails to compile.
func routeTimeouts(rts []config.RouteTimeout) []front.RouteTimeout {
	out := make([]front.RouteTimeout, len(rts))
	for i, rt := range rts {
		out[i] = front.RouteTimeout(rt)
	}
	return out
}
