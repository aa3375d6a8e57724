package worker

import (
	"context"
	"strings"
)

// ChildEnv is the environment of a worker process: base (the master's)
// without what belongs to the master alone (systemd's socket and notify
// variables), then extra (--env entries, KEY=VALUE) and unbuffered output,
// so what the app prints reaches the log at once.
func ChildEnv(base, extra []string) []string {
	out := make([]string, 0, len(base)+len(extra)+1)
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC":
			continue
		}
		out = append(out, kv)
	}
	out = append(out, extra...)
	return append(out, "PYTHONUNBUFFERED=1")
}

// ScriptName is SCRIPT_NAME in env (the last one wins), as gunicorn reads
// it: the URL prefix the app is mounted under, without a trailing slash;
// "" when not mounted.
func ScriptName(env []string) string {
	name := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "SCRIPT_NAME="); ok {
			name = v
		}
	}
	return strings.TrimRight(name, "/")
}

// Probe starts one worker in mode "check" or "routes" (it loads the app,
// says HELLO and exits) on a Spawner of its own. The caller reads w.Hello
// and then calls release, which stops the worker and the Spawner. On
// error nothing is left running; a *BootError carries the app's traceback.
func Probe(ctx context.Context, cfg Config, mode string) (w *Worker, release func(), err error) {
	sp := NewSpawner()
	cfg.Boot.Mode = mode
	cfg.Boot.WorkerID = 1
	cfg.Boot.Threads = 1
	w, err = Spawn(ctx, sp, cfg)
	if err != nil {
		sp.Close()
		return nil, nil, err
	}
	return w, func() {
		w.Close()
		sp.Close()
	}, nil
}
