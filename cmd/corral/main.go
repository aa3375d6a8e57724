// Command corral serves a Python WSGI or ASGI application: a Go HTTP front
// end and a supervised pool of Python worker processes.
//
//	corral [OPTIONS] APP
//	corral check [OPTIONS] APP
//	corral routes [--json] [OPTIONS] APP
//	corral status | corral bans list|add|remove
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"corral/internal/account"
	"corral/internal/config"
	"corral/internal/heap"
	"corral/internal/logs"
	"corral/internal/sysmon"
	"corral/internal/worker"
	"corral/python"
)

func main() {
	sysmon.Restore() // before anything reads the environment
	startProfiling()
	if os.Getenv("GOMAXPROCS") == "" {
		// The Python workers need the CPUs more than the master does: on a
		// 2-core machine the master's own per-request CPU drops by a fifth
		// (and throughput rises by 8%) with one P instead of two, because
		// it stops waking threads that steal CPU from the workers. Half the
		// CPUs keeps the master far from its limit on bigger machines.
		runtime.GOMAXPROCS(max(1, runtime.NumCPU()/2))
	}
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		// Rare collections while the heap is small, a bounded heap when it
		// is not (package heap says why); the user's GOGC or GOMEMLIMIT
		// replaces this policy.
		gov := heap.Govern(heap.Floor, heap.Interval)
		code := run(os.Args[1:])
		gov.Close()
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:]))
}

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // the app failed to load, or serving failed
	exitConfig = 2 // bad command line or configuration
	// exitNotReady is `corral status` finding a server that is not ready.
	exitNotReady = 3
)

func run(args []string) int {
	sub := ""
	asJSON := false
	if len(args) > 0 {
		switch args[0] {
		case "check":
			sub, args = args[0], args[1:]
		case "routes":
			sub = args[0]
			args, asJSON = cutFlag(args[1:], "--json")
		case "status":
			return runStatus(args[1:], os.Stdout, os.Stderr)
		case "bans":
			return runBans(args[1:], os.Stdout, os.Stderr)
		case "journal":
			cwd, err := os.Getwd()
			if err != nil {
				fmt.Fprintln(os.Stderr, "corral journal:", err)
				return exitFail
			}
			return runJournal(args[1:], os.Environ(), cwd, os.Stdout, os.Stderr)
		}
	}
	cwd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "corral:", err)
		return exitFail
	}
	cfg, err := config.Load(args, os.Environ(), cwd)
	switch {
	case errors.Is(err, config.ErrHelp):
		fmt.Print(config.Usage())
		return exitOK
	case errors.Is(err, config.ErrVersion):
		fmt.Printf("corral %s (%s, %s/%s)\n", corralVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case err != nil:
		fmt.Fprintf(os.Stderr, "corral: %v\nRun 'corral --help' for usage.\n", err)
		return exitConfig
	}
	var sysmonErr error
	if sub == "" {
		// A master about to serve runs with package sysmon's runtime
		// setting (a quarter less CPU per request when the workers are
		// the bottleneck): this re-executes the process once, before it
		// logs, listens or starts a worker.
		sysmonErr = sysmon.Exec()
	}

	logOut, closeLog, err := logs.Open(cfg.ErrorLogFile, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "corral: --error-logfile: %v\n", err)
		return exitConfig
	}
	defer closeLog()
	log := logs.New(logOut, cfg.SlogLevel(), "text")
	for _, w := range cfg.Warnings {
		log.Warn(w, "component", "config")
	}
	if sysmonErr != nil {
		log.Warn("runtime setting not applied; the master spends more CPU per request", "component", "runtime", "error", sysmonErr)
	}

	wcfg, err := workerConfig(cfg, log)
	if err != nil {
		log.Error(err.Error(), "component", "config")
		return exitConfig
	}
	acct, err := account.ForApp(cfg.User, cfg.Group, cfg.AllowRoot)
	if err != nil {
		log.Error(err.Error(), "component", "config")
		return exitConfig
	}
	if acct != nil {
		wcfg.Credential = acct.Credential()
	}
	switch sub {
	case "check":
		return check(wcfg, cfg.App)
	case "routes":
		return routes(wcfg, cfg.App, asJSON, os.Stdout)
	}
	return serve(cfg, wcfg, log)
}

// workerConfig is the template every worker is started from.
func workerConfig(cfg *config.Config, log *slog.Logger) (worker.Config, error) {
	py, err := cfg.ResolvePython(exec.LookPath)
	if err != nil {
		return worker.Config{}, err
	}
	rt, err := python.Runtime()
	if err != nil {
		return worker.Config{}, fmt.Errorf("worker runtime: %w", err)
	}
	env := worker.ChildEnv(os.Environ(), cfg.Env)
	root := worker.ScriptName(env)
	return worker.Config{
		Python:    py,
		Bootstrap: python.Bootstrap,
		Runtime:   rt,
		Env:       env,
		Boot: worker.Boot{
			App:        cfg.App,
			Chdir:      cfg.Chdir,
			PythonPath: cfg.PythonPath,
			Environ: map[string]string{
				"SERVER_SOFTWARE": "corral/" + corralVersion(),
				"SCRIPT_NAME":     root,
			},
			Interface:         cfg.Interface,
			WorkerConnections: cfg.WorkerConnections,
			Lifespan:          cfg.Lifespan,
			GracefulTimeout:   cfg.GracefulTimeout.Seconds(),
			RootPath:          root,
		},
		Logger: log,
	}, nil
}

// check loads the app in one worker and reports the result.
func check(wcfg worker.Config, app string) int {
	w, done := spawnOne(wcfg, "check", app)
	if w == nil {
		return exitFail
	}
	defer done()
	iface := "WSGI"
	if a := w.Hello.ASGI; w.Hello.IsASGI() && a != nil {
		iface = "ASGI " + a.Version + ", lifespan " + a.Lifespan
	}
	fmt.Printf("%s: OK (%s; %s %s, %s)\n", app, iface, w.Hello.Implementation, w.Hello.Python, wcfg.Python)
	return exitOK
}

// spawnOne starts a single worker in mode ("check" or "routes") and
// returns it with the function that disposes of it, or nil after
// reporting on stderr why it failed (the app's traceback if it did not
// load).
func spawnOne(wcfg worker.Config, mode, app string) (*worker.Worker, func()) {
	w, release, err := worker.Probe(context.Background(), wcfg, mode)
	var be *worker.BootError
	switch {
	case errors.As(err, &be):
		fmt.Fprintf(os.Stderr, "corral: %s failed to load:\n%s", app, strings.TrimSuffix(be.Traceback, "\n")+"\n")
	case err != nil:
		fmt.Fprintf(os.Stderr, "corral: %v\n", err)
	}
	return w, release
}
