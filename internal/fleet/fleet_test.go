package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"corral/internal/guard"
)

// redisServer is a redis-server of the test's own, on a free loopback
// port, without persistence; it is killed in the test's cleanup.
type redisServer struct {
	t    *testing.T
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
	out  *bytes.Buffer
}

func startRedis(t *testing.T, args ...string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CORRAL_TEST_TOOLS") == "required" {
			t.Fatal("redis-server is not installed (CORRAL_TEST_TOOLS=required; scripts/test installs it)")
		}
		t.Skip("redis-server is not installed (scripts/test installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &redisServer{t: t, port: port, dir: t.TempDir(), args: args}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	args := append([]string{"--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--unixsocket", filepath.Join(r.dir, "redis.sock")}, r.args...)
	r.out = &bytes.Buffer{}
	r.cmd = exec.Command("redis-server", args...)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server did not start: %s", r.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill ends the server with SIGKILL, as a crash would.
func (r *redisServer) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// fakeLocal is the guard's side: it records what the store applies.
type fakeLocal struct {
	mu      sync.Mutex
	bans    []guard.Ban
	applied []guard.Change
}

func (l *fakeLocal) Bans() []guard.Ban {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.bans)
}

func (l *fakeLocal) Apply(c guard.Change) {
	l.mu.Lock()
	l.applied = append(l.applied, c)
	l.mu.Unlock()
}

// got returns the last change applied for addr.
func (l *fakeLocal) got(addr string) (guard.Change, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.applied) - 1; i >= 0; i-- {
		if l.applied[i].Addr == addr {
			return l.applied[i], true
		}
	}
	return guard.Change{}, false
}

// logBuf is a concurrency-safe log destination.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func open(t *testing.T, url, id string, local *fakeLocal) (*Store, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	s, err := Open(context.Background(), Config{URL: url, ID: id, Timeout: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(lb, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if local != nil {
		s.Start(local)
	}
	return s, lb
}

func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBansTravel(t *testing.T) {
	r := startRedis(t)
	la, lb := &fakeLocal{}, &fakeLocal{}
	a, _ := open(t, r.url(), "a", la)
	b, _ := open(t, r.url(), "b", lb)
	eventually(t, 5*time.Second, "both up", func() bool { return a.Up() && b.Up() })

	since := time.Now().Truncate(time.Millisecond)
	a.Put(guard.Ban{Addr: "192.0.2.1", Since: since, Until: since.Add(time.Hour), Jail: "probe", Reason: "10 probes", Offences: 2, Status: 403})
	eventually(t, time.Second, "the ban on b", func() bool { _, ok := lb.got("192.0.2.1"); return ok })
	c, _ := lb.got("192.0.2.1")
	if c.Deleted || !c.Since.Equal(since) || !c.Until.Equal(since.Add(time.Hour)) || c.Jail != "probe" || c.Offences != 2 || c.Origin != "a" {
		t.Errorf("b got %+v", c)
	}
	if _, ok := la.got("192.0.2.1"); ok {
		t.Error("a applied its own ban again")
	}

	b.Delete("192.0.2.1", since.Add(time.Second))
	eventually(t, time.Second, "the unban on a", func() bool { c, ok := la.got("192.0.2.1"); return ok && c.Deleted })

	// An older change loses: a ban from before the unban is not stored.
	a.Put(guard.Ban{Addr: "192.0.2.1", Since: since, Until: since.Add(time.Hour), Jail: "probe", Status: 403})
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := a.rdb.Get(context.Background(), a.keys.ban("192.0.2.1")).Result()
	if err != nil || !strings.Contains(v, `"deleted":true`) {
		t.Errorf("the store holds %q (%v), want the unban", v, err)
	}
	// A permanent ban has no TTL; a ban with an end keeps its key a day past it.
	a.Put(guard.Ban{Addr: "2001:db8::/64", Since: time.Now(), Jail: "manual", Status: 403})
	a.Put(guard.Ban{Addr: "192.0.2.2", Since: time.Now(), Until: time.Now().Add(time.Minute), Jail: "manual", Status: 403})
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if ttl := a.rdb.PTTL(ctx, a.keys.ban("2001:db8::/64")).Val(); ttl != -1 {
		t.Errorf("permanent ban: TTL %v", ttl)
	}
	if ttl := a.rdb.PTTL(ctx, a.keys.ban("192.0.2.2")).Val(); ttl < keepEnded || ttl > keepEnded+time.Minute {
		t.Errorf("ban of a minute: TTL %v", ttl)
	}
}

// TestPushAndBanned: Push stores a queued ban at once, and Banned reads
// it back on another instance before the channel's message is needed.
func TestPushAndBanned(t *testing.T) {
	r := startRedis(t)
	a, _ := open(t, r.url(), "a", &fakeLocal{})
	b, _ := open(t, r.url(), "b", &fakeLocal{})
	eventually(t, 5*time.Second, "both up", func() bool { return a.Up() && b.Up() })
	ctx := context.Background()
	if cs, err := b.Banned(ctx, []string{"192.0.2.30"}); err != nil || len(cs) != 1 || cs[0].Addr != "" {
		t.Fatalf("Banned before any ban: %+v %v", cs, err)
	}
	since := time.Now().Truncate(time.Millisecond)
	a.Put(guard.Ban{Addr: "192.0.2.30", Since: since, Until: since.Add(time.Hour), Jail: "probe", Reason: "10 probes", Offences: 1, Status: 403})
	if err := a.Push(ctx); err != nil {
		t.Fatal(err)
	}
	cs, err := b.Banned(ctx, []string{"192.0.2.31", "192.0.2.30"})
	if err != nil || len(cs) != 2 || cs[0].Addr != "" {
		t.Fatalf("Banned after Push: %+v %v", cs, err)
	}
	if c := cs[1]; c.Addr != "192.0.2.30" || c.Deleted || c.Jail != "probe" || !c.Since.Equal(since) || !c.Until.Equal(since.Add(time.Hour)) || c.Origin != "a" {
		t.Fatalf("Banned after Push: %+v", c)
	}
	if err := a.Push(ctx); err != nil {
		t.Errorf("Push with nothing queued: %v", err)
	}
	r.kill()
	eventually(t, 5*time.Second, "the store down", func() bool { return !b.Up() })
	if cs, err := b.Banned(ctx, []string{"192.0.2.30"}); cs != nil || !errors.Is(err, guard.ErrDown) {
		t.Errorf("Banned with the store down: %+v %v, want ErrDown at once", cs, err)
	}
}

func TestCountAcrossInstances(t *testing.T) {
	r := startRedis(t)
	a, _ := open(t, r.url(), "a", &fakeLocal{})
	b, _ := open(t, r.url(), "b", &fakeLocal{})
	eventually(t, 5*time.Second, "both up", func() bool { return a.Up() && b.Up() })
	ev := guard.Event{Jail: "probe", Addr: "192.0.2.9", MaxRetry: 10, FindTime: time.Minute}
	ctx := context.Background()
	// One probe on a, nine on b: the tenth fills the window.
	if n, err := a.Count(ctx, []guard.Event{ev}); err != nil || n[0] != 1 {
		t.Fatalf("a: %v %v", n, err)
	}
	n, err := b.Count(ctx, slices.Repeat([]guard.Event{ev}, 9))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(n, want) {
		t.Errorf("counts %v, want %v", n, want)
	}
	// The full window starts again.
	if n, _ := a.Count(ctx, []guard.Event{ev}); n[0] != 1 {
		t.Errorf("after a full window: %v", n)
	}
	// A ban empties the client's windows.
	a.Put(guard.Ban{Addr: "192.0.2.9", Since: time.Now(), Until: time.Now().Add(time.Minute), Jail: "probe", Status: 403})
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Count(ctx, []guard.Event{ev}); n[0] != 1 {
		t.Errorf("after a ban: %v", n)
	}
}

func TestTakeHoldsTheRateAcrossInstances(t *testing.T) {
	r := startRedis(t)
	a, _ := open(t, r.url(), "a", &fakeLocal{})
	b, _ := open(t, r.url(), "b", &fakeLocal{})
	eventually(t, 5*time.Second, "both up", func() bool { return a.Up() && b.Up() })
	ctx := context.Background()
	take := guard.Take{Limit: "global", N: 5, Rate: 10}
	// Five requests at 10/s fill the bucket 500ms ahead; five more from
	// the other instance, 1s (less the time between the calls); five
	// more, 1.5s.
	about := func(who string, got, want time.Duration) {
		t.Helper()
		if got > want || got < want-100*time.Millisecond {
			t.Errorf("%s: fill %v, want about %v", who, got, want)
		}
	}
	w, err := a.Take(ctx, []guard.Take{take})
	if err != nil {
		t.Fatal(err)
	}
	about("a", w[0], 500*time.Millisecond)
	if w, err = b.Take(ctx, []guard.Take{take}); err != nil {
		t.Fatal(err)
	}
	about("b after a", w[0], time.Second)
	w, _ = a.Take(ctx, []guard.Take{take})
	about("a again", w[0], 1500*time.Millisecond)
	// Another client's bucket is its own.
	w, _ = a.Take(ctx, []guard.Take{{Limit: "client", Addr: "192.0.2.1", N: 1, Rate: 1}})
	about("a fresh bucket", w[0], time.Second)
	// A bucket left alone empties: its fill is one request's, not more.
	_, _ = a.Take(ctx, []guard.Take{{Limit: "client", Addr: "192.0.2.2", N: 1, Rate: 100}})
	time.Sleep(50 * time.Millisecond)
	w, _ = a.Take(ctx, []guard.Take{{Limit: "client", Addr: "192.0.2.2", N: 1, Rate: 100}})
	about("an emptied bucket", w[0], 10*time.Millisecond)
}

func TestOpenRefusals(t *testing.T) {
	r := startRedis(t, "--requirepass", "s3cret")
	for _, tc := range []struct {
		url, want string
	}{
		{fmt.Sprintf("redis://:wrong@127.0.0.1:%d/0", r.port), "WRONGPASS"},
		{fmt.Sprintf("redis://127.0.0.1:%d/0", r.port), "NOAUTH"},
		{fmt.Sprintf("redis://default:wrong@127.0.0.1:%d/0", r.port), "WRONGPASS"},
		{fmt.Sprintf("redis://:s3cret@127.0.0.1:%d/99", r.port), "DB index is out of range"},
		{fmt.Sprintf("unix://:wrong@%s/redis.sock", r.dir), "WRONGPASS"},
	} {
		_, err := Open(context.Background(), Config{URL: tc.url})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s", tc.url, err, tc.want)
		} else if strings.Contains(err.Error(), "wrong") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	for _, url := range []string{
		fmt.Sprintf("redis://:s3cret@127.0.0.1:%d/1", r.port),
		fmt.Sprintf("redis://default:s3cret@127.0.0.1:%d", r.port),
		fmt.Sprintf("unix://:s3cret@%s/redis.sock?db=2", r.dir),
	} {
		s, err := Open(context.Background(), Config{URL: url})
		if err != nil {
			t.Errorf("%s: %v", url, err)
			continue
		}
		s.Close()
	}
}

func TestOpenUnreachableStartsDown(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s, lb := open(t, fmt.Sprintf("redis://127.0.0.1:%d", port), "a", &fakeLocal{})
	if s.Up() {
		t.Fatal("up without a server")
	}
	if _, err := s.Count(context.Background(), []guard.Event{{Jail: "probe", Addr: "192.0.2.1", MaxRetry: 1, FindTime: time.Second}}); !errors.Is(err, guard.ErrDown) {
		t.Errorf("Count while down: %v", err)
	}
	eventually(t, time.Second, "the outage line", func() bool { return strings.Contains(lb.String(), "guard store unreachable") })
	time.Sleep(300 * time.Millisecond) // several attempts to reconnect
	if n := strings.Count(lb.String(), "guard store unreachable"); n != 1 {
		t.Errorf("%d outage lines, want 1:\n%s", n, lb)
	}
	if st := s.Stats(); st.Up || st.DownSince == nil || st.Outages != 1 || st.LastError == "" {
		t.Errorf("stats %+v", st)
	}
}

// TestPushOnReturn: the store dies (SIGKILL) and comes back empty; the
// ban changes made meanwhile, and the bans in force that it lost, are
// pushed, once, and sharing resumes.
func TestPushOnReturn(t *testing.T) {
	r := startRedis(t)
	la, lb := &fakeLocal{}, &fakeLocal{}
	a, alog := open(t, r.url(), "a", la)
	b, _ := open(t, r.url(), "b", lb)
	eventually(t, 5*time.Second, "both up", func() bool { return a.Up() && b.Up() })
	before := guard.Ban{Addr: "192.0.2.10", Since: time.Now(), Until: time.Now().Add(time.Hour), Jail: "probe", Status: 403}
	la.mu.Lock()
	la.bans = append(la.bans, before)
	la.mu.Unlock()
	a.Put(before)
	eventually(t, time.Second, "the first ban on b", func() bool { _, ok := lb.got("192.0.2.10"); return ok })

	r.kill()
	eventually(t, 2*time.Second, "a down", func() bool { return !a.Up() })
	during := guard.Ban{Addr: "192.0.2.11", Since: time.Now(), Until: time.Now().Add(time.Hour), Jail: "manual", Status: 403}
	la.mu.Lock()
	la.bans = append(la.bans, during)
	la.mu.Unlock()
	a.Put(during)
	a.Delete("192.0.2.12", time.Now())
	if st := a.Stats(); st.Up || st.PendingBans != 2 {
		t.Errorf("while down: %+v", st)
	}
	if err := a.Flush(context.Background()); !errors.Is(err, guard.ErrDown) {
		t.Errorf("Flush while down: %v", err)
	}

	r.start() // empty: no persistence
	eventually(t, 10*time.Second, "a and b up again", func() bool { return a.Up() && b.Up() })
	eventually(t, time.Second, "the ban made during the outage on b", func() bool { _, ok := lb.got("192.0.2.11"); return ok })
	ctx := context.Background()
	for _, addr := range []string{"192.0.2.10", "192.0.2.11", "192.0.2.12"} {
		if n := a.rdb.Exists(ctx, a.keys.ban(addr)).Val(); n != 1 {
			t.Errorf("%s is not in the store again", addr)
		}
	}
	if st := a.Stats(); !st.Up || st.PendingBans != 0 || st.Outages != 1 || st.DownSince != nil {
		t.Errorf("after: %+v", st)
	}
	log := alog.String()
	if strings.Count(log, "guard store unreachable") != 1 || strings.Count(log, "guard store reachable again") != 1 {
		t.Errorf("want one line when the store went and one when it came back:\n%s", log)
	}
	// And sharing resumes.
	b.Put(guard.Ban{Addr: "192.0.2.13", Since: time.Now(), Until: time.Now().Add(time.Hour), Jail: "manual", Status: 403})
	eventually(t, time.Second, "a ban after the outage on a", func() bool { _, ok := la.got("192.0.2.13"); return ok })
}

// TestCircuitOpensOnFailingCalls: a store that stops answering (SIGSTOP,
// not a closed connection) opens the circuit once its calls have timed
// out for tripTime, and the calls after fail at once.
func TestCircuitOpensOnFailingCalls(t *testing.T) {
	r := startRedis(t)
	a, _ := open(t, r.url(), "a", &fakeLocal{})
	eventually(t, 5*time.Second, "up", func() bool { return a.Up() })
	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer r.cmd.Process.Signal(syscall.SIGCONT)
	ctx := context.Background()
	ev := []guard.Event{{Jail: "probe", Addr: "192.0.2.1", MaxRetry: 5, FindTime: time.Second}}
	stopped := time.Now()
	for i := 0; a.Up(); i++ {
		t0 := time.Now()
		if _, err := a.Count(ctx, ev); err == nil {
			t.Fatalf("call %d to a stopped store succeeded", i)
		}
		if d := time.Since(t0); d > 500*time.Millisecond {
			t.Errorf("call %d took %v, the timeout is 50ms", i, d)
		}
		if time.Since(stopped) > 5*time.Second {
			t.Fatal("the circuit is still closed")
		}
	}
	if d := time.Since(stopped); d < tripTime {
		t.Errorf("the circuit opened after %v, before tripTime", d)
	}
	t0 := time.Now()
	if _, err := a.Count(ctx, ev); !errors.Is(err, guard.ErrDown) || time.Since(t0) > time.Millisecond {
		t.Errorf("a call with the circuit open: %v after %v", err, time.Since(t0))
	}
	r.cmd.Process.Signal(syscall.SIGCONT)
	eventually(t, 10*time.Second, "up again", func() bool { return a.Up() })
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 50 * time.Millisecond, max: time.Second, rand: func() float64 { return 0.5 }}
	var got []time.Duration
	for range 7 {
		got = append(got, b.wait())
	}
	want := []time.Duration{50, 100, 200, 400, 800, 1000, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	b.reset()
	if w := b.wait(); w != 50*time.Millisecond {
		t.Errorf("after reset: %v", w)
	}
	b.rand = func() float64 { return 0 }
	if w := b.wait(); w != 80*time.Millisecond {
		t.Errorf("jitter low end: %v, want 80ms", w)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:pw@host:6379/0":              "redis://:xxxxx@host:6379/0",
		"rediss://user:pw@host:6380/2":         "rediss://user:xxxxx@host:6380/2",
		"unix:///run/redis.sock?password=pw":   "unix:///run/redis.sock?password=xxxxx",
		"redis://host:6379":                    "redis://host:6379",
		"unix://user:pw@/run/redis/redis.sock": "unix://user:xxxxx@/run/redis/redis.sock",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInterval(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		want int64
	}{{10, 100000}, {0.2, 5000000}, {1e9, 1}, {0, math.MaxInt32}} {
		if got := interval(tc.rate); got != tc.want {
			t.Errorf("interval(%g) = %d, want %d", tc.rate, got, tc.want)
		}
	}
}

// TestTLSFiles: a rediss:// URL's ca, cert and key are taken out of the
// URL (go-redis refuses parameters it does not know) and checked when
// the Store is made; the rest of the URL stays.
func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	notPEM := dir + "/not.pem"
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, want string }{
		{"redis://h:6379/0?ca=/x.pem", "ca, cert and key are for a TLS store"},
		{"rediss://h:6380/0?cert=/c.pem", "needs both cert and key"},
		{"rediss://h:6380/0?ca=" + dir + "/missing.pem", "ca: open "},
		{"rediss://h:6380/0?ca=" + notPEM, "holds no PEM certificate"},
		{"rediss://h:6380/0?cert=" + notPEM + "&key=" + notPEM, "cert and key: "},
		{"rediss://h:6380/0?ca=" + notPEM + "&bogus=1", "unexpected option: bogus"},
	} {
		if _, err := New(Config{URL: tc.url}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.want)
		}
	}
	raw, files, err := splitTLSFiles("rediss://:pw@h:6380/2?ca=/etc/ca.pem&dial_timeout=3")
	if err != nil || raw != "rediss://:pw@h:6380/2?dial_timeout=3" || files != (tlsFiles{ca: "/etc/ca.pem"}) {
		t.Errorf("split: %q %+v %v", raw, files, err)
	}
	s, err := New(Config{URL: "rediss://h:6380/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c := s.rdb.Options().TLSConfig; c == nil || c.RootCAs != nil || c.ServerName != "h" {
		t.Errorf("rediss:// without files: TLS config %+v, want the system's authorities", c)
	}
}
