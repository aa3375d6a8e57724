package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// redisServer is a redis-server started by a test on a free 127.0.0.1
// port, without persistence, in a directory of its own; the test's
// cleanup kills it.
type redisServer struct {
	t    *testing.T
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	log  *syncBuffer
}

func startRedis(t *testing.T, args ...string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		missingTool(t, "redis-server is not installed (scripts/test installs it)")
	}
	r := &redisServer{t: t, port: freePort(t), dir: t.TempDir(), args: args}
	r.start()
	t.Cleanup(r.kill)
	return r
}

// url is the store's URL; password may be "".
func (r *redisServer) url(password string) string {
	if password != "" {
		return fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", url.PathEscape(password), r.port)
	}
	return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
}

func (r *redisServer) start() {
	r.t.Helper()
	args := append([]string{"--port", itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--unixsocket", filepath.Join(r.dir, "redis.sock")}, r.args...)
	r.log = &syncBuffer{}
	r.cmd = exec.Command("redis-server", args...)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(r.cmd, r.done)
	eventually(r.t, 10*time.Second, "redis-server to listen", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// kill ends redis-server with SIGKILL, as a crash or the OOM killer would.
func (r *redisServer) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// startFleet starts n corrals sharing r, each with the guard settings of
// startGuard and extra, on ports of their own, and waits until each has
// connected to the store.
func startFleet(t *testing.T, r *redisServer, n int, extra string, env []string, args ...string) []*guardServer {
	t.Helper()
	var fleet []*guardServer
	for range n {
		g := startGuard(t, fmt.Sprintf("store = %q\n", r.url(""))+extra, env, args...)
		fleet = append(fleet, g)
	}
	for _, g := range fleet {
		eventually(t, 10*time.Second, "the store connected", func() bool {
			return strings.Contains(g.log.String(), "guard store connected")
		})
	}
	return fleet
}

// refused reports whether c is turned away by s: 403, or the connection
// closed at accept.
func refused(s *guardServer, ip string) bool {
	code, _, _ := guardFetch(clientFrom(ip), "GET", s.url+"/pid", "", nil)
	return code == 0 || code == 403
}

// storeStats is /status's guard.store.
type storeStats struct {
	Up      bool  `json:"up"`
	Outages int   `json:"outages"`
	Dropped int64 `json:"dropped_updates"`
	Errors  int64 `json:"errors"`
}

// storeStatus is /status's guard.store.
func storeStatus(t *testing.T, g *guardServer) storeStats {
	t.Helper()
	body, code := curlUnix(t, g.admin, "/status")
	var doc struct {
		Guard struct {
			Store *storeStats `json:"store"`
		} `json:"guard"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || code != 200 || doc.Guard.Store == nil {
		t.Fatalf("/status (%d, %v): %s", code, err, body)
	}
	return *doc.Guard.Store
}

// scan requests words from ip, round robin over servers, and returns how
// many the app answered and how many were refused.
func scan(servers []*guardServer, ip string, words []string) (answered, blocked int) {
	clients := make([]*http.Client, len(servers))
	for i := range servers {
		clients[i] = clientFrom(ip)
	}
	for i, w := range words {
		code, _, _ := guardFetch(clients[i%len(servers)], "GET", servers[i%len(servers)].url+"/"+url.PathEscape(w), "", nil)
		switch code {
		case 0, 403:
			blocked++
		default:
			answered++
		}
	}
	return answered, blocked
}

// browse requests paths from ip, round robin over servers, until stop is
// closed, and records every answer that is not a 200.
type browser struct {
	wg       sync.WaitGroup
	stop     chan struct{}
	requests atomic.Int64
	mu       sync.Mutex
	errs     []string
}

func browse(servers []*guardServer, ip string, paths []string) *browser {
	b := &browser{stop: make(chan struct{})}
	c := clientFrom(ip)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-b.stop:
				return
			default:
			}
			s := servers[i%len(servers)]
			p := paths[i%len(paths)]
			if code, _, body := guardFetch(c, "GET", s.url+p, "", nil); code != 200 {
				b.mu.Lock()
				b.errs = append(b.errs, fmt.Sprintf("%s%s: %d %s", s.url, p, code, body))
				b.mu.Unlock()
			}
			b.requests.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return b
}

func (b *browser) end(t *testing.T) {
	t.Helper()
	close(b.stop)
	b.wg.Wait()
	if len(b.errs) > 0 || b.requests.Load() == 0 {
		t.Errorf("the legit user (%d requests) got %d failures: %q", b.requests.Load(), len(b.errs), b.errs[:min(5, len(b.errs))])
	}
}

// TestFleetScanCutOffLikeOneInstance: a word-list scan spread round robin
// over three instances sharing a store is cut off after as many probes
// as against one instance alone, and every instance then bans the
// scanner, while a user browsing all three is never refused.
func TestFleetScanCutOffLikeOneInstance(t *testing.T) {
	words := readWordlist(t)[:300]
	r := startRedis(t)
	app := []string{"-w", "1", "--chdir", "examples/flaskapp", "--pythonpath", testdata(""), "counted:app"}
	env := []string{"COUNTED_APP=app:app"}
	const jail = "[guard.jails.probe]\nmaxretry = 10\n"
	alone := startGuard(t, jail, env, app...)
	// A loaded test machine can miss the default 5ms call timeout, and a
	// count that times out is dropped (counted in /status), which would
	// let a probe more through: that is the machine's limit, not the
	// mechanism's, so the test gives the calls room.
	fleet := startFleet(t, r, 3, "store_timeout = \"500ms\"\n"+jail, env, app...)

	wantAnswered, _ := scan([]*guardServer{alone}, "127.0.0.2", words)
	user := browse(fleet, "127.0.0.3", []string{"/", "/2024", "/static/hello.txt"})
	answered, blocked := scan(fleet, "127.0.0.2", words)
	user.end(t)
	t.Logf("one instance: the app answered %d of %d words; three sharing a store: %d answered, %d blocked",
		wantAnswered, len(words), answered, blocked)
	calls := 0
	for _, g := range fleet {
		calls += g.callsFrom("127.0.0.2")
	}
	if calls != answered {
		t.Errorf("the apps saw %d scanner requests, the scanner got %d answers", calls, answered)
	}
	// Exact, not a matter of timing: the scanner waits for each answer,
	// each probe is counted in the store before its answer goes out, the
	// ban is stored before the tenth's, and an instance that saw the
	// scanner near the threshold asks the store before serving it
	// (docs/fleet.md).
	if answered != wantAnswered {
		t.Errorf("the fleet answered %d probes, one instance %d", answered, wantAnswered)
	}
	for i, g := range fleet {
		out, code := runCorral(t, "bans", "list", "--admin-bind", g.admin)
		if code != 0 || !strings.Contains(out, "127.0.0.2") || !strings.Contains(out, "probe") || strings.Contains(out, "127.0.0.3") {
			t.Errorf("instance %d: corral bans list (exit %d):\n%s", i, code, out)
		}
	}
	bannedHere := 0
	for _, g := range fleet {
		bannedHere += strings.Count(g.log.String(), "WARN  guard: client banned client=127.0.0.2")
	}
	if bannedHere != 1 {
		t.Errorf("%d instances banned the scanner themselves, want 1 (the others follow the fleet)", bannedHere)
	}
}

// TestFleetBansTravel: corral bans add on one instance is enforced by the
// others within a second, corral bans remove on another lifts it
// everywhere, and the app's corral.ban() bans fleet-wide.
func TestFleetBansTravel(t *testing.T) {
	r := startRedis(t)
	fleet := startFleet(t, r, 3, "", nil, "-w", "1", testdata("wsgiapp.py")+":application")
	within := func(what string, cond func() bool) time.Duration {
		t.Helper()
		t0 := time.Now()
		eventually(t, 5*time.Second, what, cond)
		d := time.Since(t0)
		if d > time.Second {
			t.Errorf("%s took %v, more than 1s", what, d)
		}
		return d
	}

	out, code := runCorral(t, "bans", "add", "127.0.0.5", "--for", "1h", "--reason", "fleet test", "--admin-bind", fleet[0].admin)
	if code != 0 {
		t.Fatalf("corral bans add: exit %d:\n%s", code, out)
	}
	d := within("the ban on the other instances", func() bool { return refused(fleet[1], "127.0.0.5") && refused(fleet[2], "127.0.0.5") })
	t.Logf("corral bans add on one instance enforced by the others after %v", d)
	out, _ = runCorral(t, "bans", "list", "--admin-bind", fleet[2].admin)
	if !strings.Contains(out, "127.0.0.5") || !strings.Contains(out, "fleet test") {
		t.Errorf("corral bans list on another instance:\n%s", out)
	}

	if out, code := runCorral(t, "bans", "remove", "127.0.0.5", "--admin-bind", fleet[2].admin); code != 0 {
		t.Fatalf("corral bans remove: exit %d:\n%s", code, out)
	}
	within("the unban everywhere", func() bool {
		return !refused(fleet[0], "127.0.0.5") && !refused(fleet[1], "127.0.0.5") && !refused(fleet[2], "127.0.0.5")
	})

	if code, _, body := guardFetch(clientFrom("127.0.0.11"), "GET", fleet[1].url+"/ban-me", "", nil); code != 200 || body != "True" {
		t.Fatalf("/ban-me: %d %q", code, body)
	}
	within("corral.ban() on the other instances", func() bool { return refused(fleet[0], "127.0.0.11") && refused(fleet[2], "127.0.0.11") })
	out, _ = runCorral(t, "bans", "list", "--admin-bind", fleet[0].admin)
	if !strings.Contains(out, "127.0.0.11") || !strings.Contains(out, "the test app bans") {
		t.Errorf("the app's ban on another instance:\n%s", out)
	}
}

// TestFleetGlobalRate: a global rate limit holds across three instances
// within 10%, where each alone would admit the whole rate (+200% for the
// three). Each instance's bucket is set to the fleet's whenever Redis
// answers a report, so what overshoots is what the three let through in
// one round trip, whatever the machine's load.
func TestFleetGlobalRate(t *testing.T) {
	r := startRedis(t)
	const rate, burst = 50, 20
	conf := fmt.Sprintf("global_rate = %d\nglobal_burst = %d\n[guard.jails.ratelimit]\nmaxretry = 0\n", rate, burst)
	fleet := startFleet(t, r, 3, conf, nil, "-w", "1", testdata("wsgiapp.py")+":application")
	var admitted, limited, failed atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	stop := t0.Add(4 * time.Second)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clientFrom(fmt.Sprintf("127.0.2.%d", i+1))
			for n := 0; time.Now().Before(stop); n++ {
				s := fleet[(i+n)%len(fleet)]
				switch code, _, _ := guardFetch(c, "GET", s.url+"/pid", "", nil); code {
				case 200:
					admitted.Add(1)
				case 429:
					limited.Add(1)
				default:
					failed.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	want := float64(burst) + rate*elapsed.Seconds()
	got := float64(admitted.Load())
	t.Logf("%v: %d admitted, %d limited, %d failed; the limit allows %.0f (one instance alone would allow as many, three %.0f)",
		elapsed.Round(time.Millisecond), admitted.Load(), limited.Load(), failed.Load(), want, 3*want)
	for i, g := range fleet {
		st := storeStatus(t, g)
		t.Logf("instance %d: %d failed calls to the store, %d updates dropped", i, st.Errors, st.Dropped)
	}
	if got < 0.9*want || got > 1.1*want {
		t.Errorf("%.0f requests admitted, want %.0f ±10%% (three unshared instances: %.0f)", got, want, 3*want)
	}
	if failed.Load() > 0 || limited.Load() < int64(got) {
		t.Errorf("%d failed, %d limited: the load did not exceed the limit", failed.Load(), limited.Load())
	}
}

// TestFleetStoreDown: with redis-server killed (SIGKILL) in the middle of
// a scan, every instance keeps serving legit clients without an error,
// keeps its bans and goes on banning with its own jails; one log line
// says the store went, /status says it is down; when it comes back
// (empty), the bans made meanwhile are pushed and sharing resumes.
func TestFleetStoreDown(t *testing.T) {
	r := startRedis(t)
	fleet := startFleet(t, r, 3, "[guard.jails.probe]\nmaxretry = 5\n", nil, "-w", "1", testdata("wsgiapp.py")+":application")
	if _, code := runCorral(t, "bans", "add", "127.0.0.20", "--for", "1h", "--admin-bind", fleet[0].admin); code != 0 {
		t.Fatal("corral bans add failed")
	}
	eventually(t, time.Second, "the first ban everywhere", func() bool { return refused(fleet[2], "127.0.0.20") })

	user := browse(fleet, "127.0.0.3", []string{"/pid", "/env"})
	var probes []string
	for i := range 40 {
		probes = append(probes, fmt.Sprintf("probe-%d", i))
	}
	answered, _ := scan(fleet, "127.0.0.21", probes[:3])
	r.kill()
	for _, g := range fleet {
		eventually(t, 5*time.Second, "the outage noticed", func() bool { return strings.Contains(g.log.String(), "guard store unreachable") })
	}
	a, _ := scan(fleet, "127.0.0.21", probes[3:])
	answered += a
	// Alone, each instance bans the scanner after its own 5 probes.
	if answered > 3*5+2 {
		t.Errorf("%d probes answered while the store was down, want at most 5 per instance", answered)
	}
	for i, g := range fleet {
		if !refused(g, "127.0.0.21") {
			t.Errorf("instance %d did not ban the scanner with its own jail", i)
		}
		if !refused(g, "127.0.0.20") {
			t.Errorf("instance %d lost the ban made before the outage", i)
		}
		if st := storeStatus(t, g); st.Up || st.Outages != 1 {
			t.Errorf("instance %d /status: store up %v, %d outages", i, st.Up, st.Outages)
		}
	}
	if out, code := runCorral(t, "status", "--admin-bind", fleet[0].admin); code != 0 ||
		!strings.Contains(out, "guard store "+r.url("")+"  DOWN since ") || !strings.Contains(out, "last error: ") {
		t.Errorf("corral status during the outage (exit %d):\n%s", code, out)
	}
	// A ban made on one instance during the outage.
	if out, code := runCorral(t, "bans", "add", "127.0.0.23", "--for", "1h", "--admin-bind", fleet[2].admin); code != 0 {
		t.Fatalf("corral bans add during the outage: %s", out)
	}
	if refused(fleet[0], "127.0.0.23") {
		t.Error("a ban travelled without the store")
	}
	time.Sleep(500 * time.Millisecond)
	user.end(t)

	r.start() // empty: it kept nothing
	for _, g := range fleet {
		eventually(t, 10*time.Second, "the store back", func() bool { return strings.Contains(g.log.String(), "guard store reachable again") })
	}
	eventually(t, time.Second, "the ban made during the outage pushed and shared", func() bool {
		return refused(fleet[0], "127.0.0.23") && refused(fleet[1], "127.0.0.23")
	})
	if _, code := runCorral(t, "bans", "add", "127.0.0.22", "--for", "1h", "--admin-bind", fleet[1].admin); code != 0 {
		t.Fatal("corral bans add after the outage failed")
	}
	eventually(t, time.Second, "a new ban shared", func() bool { return refused(fleet[0], "127.0.0.22") && refused(fleet[2], "127.0.0.22") })
	for i, g := range fleet {
		log := g.log.String()
		if n, m := strings.Count(log, "guard store unreachable"), strings.Count(log, "guard store reachable again"); n != 1 || m != 1 {
			t.Errorf("instance %d: %d lines for the outage, %d for the return; want one each", i, n, m)
		}
		if !storeStatus(t, g).Up {
			t.Errorf("instance %d /status: the store is still down", i)
		}
	}
}

// TestFleetStorePassword: a password-protected store is used with the
// right password; the wrong one stops corral at start with a clear
// error that does not show it.
func TestFleetStorePassword(t *testing.T) {
	r := startRedis(t, "--requirepass", "fleet-s3cret")
	g := startGuard(t, fmt.Sprintf("store = %q\n", r.url("fleet-s3cret")), nil, "-w", "1", testdata("wsgiapp.py")+":application")
	eventually(t, 10*time.Second, "the store connected", func() bool { return strings.Contains(g.log.String(), "guard store connected") })
	if strings.Contains(g.log.String(), "fleet-s3cret") {
		t.Errorf("the log shows the password:\n%s", g.log)
	}
	sock := "unix://:fleet-s3cret@" + filepath.Join(r.dir, "redis.sock")
	g2 := startGuard(t, "", nil, "-w", "1", "--guard-store", sock, testdata("wsgiapp.py")+":application")
	eventually(t, 10*time.Second, "the store connected over its Unix socket", func() bool {
		return strings.Contains(g2.log.String(), "guard store connected")
	})

	for _, tc := range []struct{ url, want string }{
		{r.url("wrong-guess"), "authentication failed (check the user and password in the URL): WRONGPASS"},
		{r.url(""), "authentication failed (check the user and password in the URL): NOAUTH"},
	} {
		out, code := runCorral(t, "-b", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--python", pythonBin, "--admin-bind", "off",
			"--guard-store", tc.url, testdata("wsgiapp.py")+":application")
		if code != 2 || !strings.Contains(out, tc.want) || strings.Contains(out, "wrong-guess") || strings.Contains(out, "worker ready") {
			t.Errorf("--guard-store %s: exit %d, want 2 and %q, no worker and no password:\n%s", tc.url, code, tc.want, out)
		}
	}
}
