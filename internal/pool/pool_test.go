package pool

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"corral/internal/fakeworker"
	"corral/internal/proto"
	"corral/internal/worker"
)

func TestMain(m *testing.M) {
	if fakeworker.Requested() {
		fakeworker.Main()
	}
	os.Exit(m.Run())
}

// patience bounds every wait in these tests; nothing should come close.
const patience = 20 * time.Second

// harness is a Pool of fake workers (the test binary re-run as
// fakeworker) and the directory they record into.
type harness struct {
	t       *testing.T
	dir     string
	p       *Pool
	log     *syncBuffer
	stopped atomic.Bool // Shutdown or Close was called: cleanup need not
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newHarness builds a pool whose workers are fake workers in mode. Zero
// fields of cfg get values suited to tests.
func newHarness(t *testing.T, cfg Config, mode string) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), log: &syncBuffer{}}
	sp := worker.NewSpawner()
	t.Cleanup(sp.Close)
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.KillGrace == 0 {
		cfg.KillGrace = 500 * time.Millisecond
	}
	cfg.BootTimeout = patience
	cfg.SpoolDir = t.TempDir()
	cfg.Spawner = sp
	cfg.Worker = worker.Config{
		Python:    os.Args[0],
		Bootstrap: "fake bootstrap",
		Env:       append(os.Environ(), fakeworker.Env(mode, h.dir)...),
		Boot:      worker.Boot{App: "app:application", WorkerConnections: cfg.Worker.Boot.WorkerConnections},
		Logger:    slog.New(slog.DiscardHandler),
	}
	cfg.Logger = slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.p = New(cfg)
	return h
}

// start returns a started pool of serving fake workers; it is stopped in
// cleanup, which also checks that no worker process is left.
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := newHarness(t, cfg, fakeworker.ModeServe)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := h.p.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(h.cleanup)
	return h
}

func (h *harness) cleanup() {
	if !h.stopped.Load() {
		_ = h.shutdown(time.Second)
	}
	for _, pid := range fakeworker.Pids(h.dir) {
		if syscall.Kill(pid, 0) != syscall.ESRCH {
			h.t.Errorf("worker %d still exists after the pool stopped", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if h.t.Failed() {
		h.t.Logf("pool log:\n%s", h.log)
		evs, _ := fakeworker.Events(h.dir)
		for _, e := range evs {
			h.t.Logf("worker %d: %s %v", e.Pid, e.Kind, e.Args)
		}
	}
}

// shutdown runs Pool.Shutdown with grace as its context's timeout and
// returns its error, failing the test if it does not return.
func (h *harness) shutdown(grace time.Duration) error {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var err error
	h.bounded("Shutdown", func() { err = h.p.Shutdown(ctx) })
	return err
}

// close runs Pool.Close, failing the test if it does not return.
func (h *harness) close() {
	h.t.Helper()
	h.bounded("Close", h.p.Close)
}

// bounded runs a call that stops the pool, failing the test (and killing
// the workers) if it does not return within patience.
func (h *harness) bounded(what string, f func()) {
	h.t.Helper()
	h.stopped.Store(true)
	done := make(chan struct{})
	go func() {
		f()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(patience):
		h.t.Errorf("%s did not return", what)
		for _, pid := range fakeworker.Pids(h.dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		<-done
	}
}

// req is a request for the fake's route path, tagged tok. Its route key
// is "GET path".
func req(path, query, tok string) *Request {
	return &Request{
		Frame:  fakeworker.RequestFrame(path, query, tok, 0, nil),
		Route:  "GET " + path,
		Method: "GET",
		Path:   path,
	}
}

func (h *harness) submit(r *Request) *Call {
	h.t.Helper()
	c, err := h.p.Submit(r)
	if err != nil {
		h.t.Fatalf("Submit %s: %v", r.Path, err)
	}
	h.t.Cleanup(c.Release)
	return c
}

// bufWriter is a Writer that records whether ReadFrom was used.
type bufWriter struct {
	bytes.Buffer
	readFroms int
}

func (w *bufWriter) ReadFrom(r io.Reader) (int64, error) {
	w.readFroms++
	return w.Buffer.ReadFrom(r)
}

func head(c *Call) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	status, _, _, err := c.Head(ctx)
	return status, err
}

// result waits for c's response and returns its status and body.
func result(c *Call) (int, string, error) {
	status, err := head(c)
	if err != nil {
		return 0, "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var w bufWriter
	err = c.WriteBody(ctx, &w, nil)
	return status, w.String(), err
}

// wantOK checks that c answered the fake's "ok TOKEN PID" and returns the
// pid of the worker that served it.
func (h *harness) wantOK(c *Call, tok string) int {
	h.t.Helper()
	status, body, err := result(c)
	if err != nil {
		h.t.Fatalf("%s: %v", tok, err)
	}
	f := strings.Fields(body)
	if status != 200 || len(f) != 3 || f[0] != "ok" || f[1] != tok {
		h.t.Fatalf("%s: got %d %q, want 200 \"ok %s PID\"", tok, status, body, tok)
	}
	pid, _ := strconv.Atoi(f[2])
	return pid
}

func wantErr(t *testing.T, c *Call, want error) {
	t.Helper()
	if _, err := head(c); !errors.Is(err, want) {
		t.Fatalf("Head: err = %v, want %v", err, want)
	}
}

func (h *harness) events() []fakeworker.Event {
	h.t.Helper()
	evs, err := fakeworker.Events(h.dir)
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// waitEvent waits until some worker records an event of kind whose
// arguments include args.
func (h *harness) waitEvent(kind string, args ...string) fakeworker.Event {
	h.t.Helper()
	for end := time.Now().Add(patience); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		if e, ok := find(h.events(), kind, args...); ok {
			return e
		}
	}
	h.t.Fatalf("no event %s %v recorded", kind, args)
	return fakeworker.Event{}
}

func find(evs []fakeworker.Event, kind string, args ...string) (fakeworker.Event, bool) {
	for _, e := range evs {
		if e.Kind == kind && matches(e, args) {
			return e, true
		}
	}
	return fakeworker.Event{}, false
}

func all(evs []fakeworker.Event, kind string, args ...string) []fakeworker.Event {
	var out []fakeworker.Event
	for _, e := range evs {
		if e.Kind == kind && matches(e, args) {
			out = append(out, e)
		}
	}
	return out
}

func matches(e fakeworker.Event, args []string) bool {
	for i := 0; i+1 < len(args); i += 2 {
		if e.Args[args[i]] != args[i+1] {
			return false
		}
	}
	return true
}

// noFailures checks that no scripted wait in a fake worker gave up.
func (h *harness) noFailures() {
	h.t.Helper()
	for _, e := range h.events() {
		if strings.HasSuffix(e.Kind, "-timeout") || strings.HasSuffix(e.Kind, "-error") || e.Kind == "unexpected" {
			h.t.Errorf("worker %d: %s %v", e.Pid, e.Kind, e.Args)
		}
	}
}

// startedOnce checks that each token was started exactly once in all.
func (h *harness) startedOnce(toks ...string) {
	h.t.Helper()
	evs := h.events()
	for _, tok := range toks {
		if n := len(all(evs, "start", "tok", tok)); n != 1 {
			h.t.Errorf("%s started %d times, want once", tok, n)
		}
	}
}

// touch creates the file a fake worker's /wait or /stream waits for.
func (h *harness) touch(name string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, name), nil, 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// setMode makes the workers spawned from now on boot in mode.
func (h *harness) setMode(mode string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, "mode"), []byte(mode), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// pids returns the pids of the pool's workers.
func (h *harness) pids() []int {
	ws, _ := h.p.Status()
	var out []int
	for _, w := range ws {
		out = append(out, w.Pid)
	}
	return out
}

func (h *harness) queued() int {
	_, n := h.p.Status()
	return n
}

// waitIdle waits until no call is in flight.
func (h *harness) waitIdle() {
	h.t.Helper()
	for end := time.Now().Add(patience); h.p.InFlight() != 0; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(end) {
			h.t.Fatalf("%d calls still in flight", h.p.InFlight())
		}
	}
}

// waitReplaced waits until the pool has a ready worker other than old.
func (h *harness) waitReplaced(old int) int {
	h.t.Helper()
	for end := time.Now().Add(patience); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		ws, _ := h.p.Status()
		if len(ws) > 0 && ws[0].Pid != old && ws[0].State == StateReady {
			return ws[0].Pid
		}
	}
	h.t.Fatalf("worker %d was not replaced", old)
	return 0
}

func toks(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

func TestDispatchToIdleWorker(t *testing.T) {
	h := start(t, Config{Workers: 2, Budget: time.Second})
	c0 := h.submit(req("/wait", "file=go", "t0"))
	h.waitEvent("start", "tok", "t0")
	// t1 must go to the idle worker, not wait behind t0 (which would
	// hold it until after this test stops waiting for it).
	c1 := h.submit(req("/fast", "", "t1"))
	if _, err := head(c1); err != nil {
		t.Fatal(err)
	}
	if b, ok := c1.Inline(); !ok || !strings.HasPrefix(string(b), "ok t1 ") {
		t.Errorf("Inline = %q, %v; want the one-frame body", b, ok)
	}
	pid1 := h.wantOK(c1, "t1")
	h.touch("go")
	pid0 := h.wantOK(c0, "t0")
	if pid0 == pid1 {
		t.Errorf("both requests ran on worker %d", pid0)
	}
	h.startedOnce("t0", "t1")
}

func TestPipelining(t *testing.T) {
	// A generous budget: the first request's 1 ms default estimate keeps
	// the expected wait under it however slow this machine is.
	h := start(t, Config{Workers: 1, Budget: time.Second})
	ts := toks("t", 4)
	// t0 answers only once the worker holds all four requests.
	cs := []*Call{h.submit(req("/gate", "n=4", ts[0]))}
	for _, tok := range ts[1:] {
		cs = append(cs, h.submit(req("/fast", "", tok)))
	}
	if q := h.queued(); q != 0 {
		t.Errorf("%d requests queued in the pool, want all 4 sent to the worker", q)
	}
	for i, c := range cs {
		h.wantOK(c, ts[i])
	}
	evs := h.events()
	maxDepth := 0
	for _, e := range all(evs, "recv") {
		d, _ := strconv.Atoi(e.Args["depth"])
		maxDepth = max(maxDepth, d)
	}
	if maxDepth != 4 {
		t.Errorf("most requests the worker held at once = %d, want 4", maxDepth)
	}
	var order []string
	for _, e := range all(evs, "start") {
		order = append(order, e.Args["tok"])
	}
	if got, want := strings.Join(order, ","), strings.Join(ts, ","); got != want {
		t.Errorf("start order %s, want %s", got, want)
	}
	h.noFailures()
}

func TestNoPipeliningBehindSlowRoute(t *testing.T) {
	h := start(t, Config{Workers: 1}) // default budget: 2 ms
	// Teach the pool that GET /slow takes about 100 ms.
	h.wantOK(h.submit(req("/slow", "ms=100", "train")), "train")

	slow := h.submit(req("/slow", "ms=100", "s"))
	fast := []*Call{h.submit(req("/fast", "", "f0")), h.submit(req("/fast", "", "f1"))}
	if q := h.queued(); q != 2 {
		t.Errorf("%d requests queued in the pool behind the slow one, want 2", q)
	}
	h.wantOK(slow, "s")
	h.wantOK(fast[0], "f0")
	h.wantOK(fast[1], "f1")
	for _, e := range all(h.events(), "recv") {
		if e.Args["depth"] != "1" {
			t.Errorf("worker received %s while holding %s requests, want 1", e.Args["tok"], e.Args["depth"])
		}
	}
}

func TestStealFromOverdueRequest(t *testing.T) {
	h := start(t, Config{Workers: 1, Budget: 50 * time.Millisecond})
	// The pool expects t0 to be quick (unknown route) and pipelines the
	// others behind it; t0 answers only once the worker was asked to give
	// back what it has not started.
	c0 := h.submit(req("/untilsteal", "", "t0"))
	ts := toks("p", 3)
	var cs []*Call
	for _, tok := range ts {
		cs = append(cs, h.submit(req("/fast", "", tok)))
	}
	if q := h.queued(); q != 0 {
		t.Errorf("%d requests queued in the pool, want all pipelined", q)
	}
	h.wantOK(c0, "t0")
	for i, c := range cs {
		h.wantOK(c, ts[i])
	}
	evs := h.events()
	steal, ok := find(evs, "steal")
	if !ok {
		t.Fatal("the worker was never asked to STEAL")
	}
	returned := strings.Split(steal.Args["returned"], ",")
	if steal.Args["returned"] == "" {
		t.Fatal("STEAL returned nothing; want the pipelined requests")
	}
	for _, tok := range returned {
		for _, s := range all(evs, "start", "tok", tok) {
			if s.Pid == steal.Pid && s.Seq < steal.Seq {
				t.Errorf("%s was returned after the worker started it", tok)
			}
		}
	}
	h.startedOnce(append(ts, "t0")...)
	h.noFailures()
}

func TestWorkerCrash(t *testing.T) {
	h := start(t, Config{Workers: 1, Budget: time.Second})
	old := h.pids()[0]
	c0 := h.submit(req("/crash", "after=3", "t0")) // dies once the others are queued behind it
	c1 := h.submit(req("/fast", "", "t1"))
	c2 := h.submit(req("/fast", "", "t2"))
	wantErr(t, c0, ErrWorkerDied)
	for i, c := range []*Call{c1, c2} {
		tok := "t" + strconv.Itoa(i+1)
		if pid := h.wantOK(c, tok); pid == old {
			t.Errorf("%s served by the dead worker %d", tok, pid)
		}
	}
	if pids := h.pids(); len(pids) != 1 || pids[0] == old {
		t.Errorf("workers after the crash: %v, want one new worker (old pid %d)", pids, old)
	}
	evs := h.events()
	for _, tok := range []string{"t1", "t2"} {
		if _, ok := find(evs, "recv", "tok", tok); !ok {
			t.Errorf("%s was never pipelined to a worker", tok)
		}
	}
	h.startedOnce("t0", "t1", "t2")
}

func TestProtocolViolation(t *testing.T) {
	h := start(t, Config{Workers: 1})
	old := h.pids()[0]
	wantErr(t, h.submit(req("/bogus", "", "b")), ErrWorkerDied)
	if !strings.Contains(h.log.String(), "broke the protocol") {
		t.Errorf("no protocol error in the log:\n%s", h.log)
	}
	h.waitReplaced(old)
	if pid := h.wantOK(h.submit(req("/fast", "", "after")), "after"); pid == old {
		t.Errorf("served by the killed worker %d", pid)
	}
}

func TestHardTimeout(t *testing.T) {
	h := start(t, Config{Workers: 1, Budget: time.Second, KillGrace: 300 * time.Millisecond})
	old := h.pids()[0]
	r := req("/hang", "", "t0")
	r.Timeout = 200 * time.Millisecond
	c0 := h.submit(r)
	c1 := h.submit(req("/fast", "", "t1"))
	c2 := h.submit(req("/fast", "", "t2"))
	wantErr(t, c0, ErrTimeout)
	for i, c := range []*Call{c1, c2} {
		tok := "t" + strconv.Itoa(i+1)
		if pid := h.wantOK(c, tok); pid == old {
			t.Errorf("%s served by the hung worker %d", tok, pid)
		}
	}
	// The replacement may serve before the hung worker is even signalled.
	h.waitEvent("dump")
	h.waitEvent("term")
	if !strings.Contains(h.log.String(), "request timed out") {
		t.Errorf("no timeout in the log:\n%s", h.log)
	}
	h.startedOnce("t0", "t1", "t2")
}

func TestQueueFull(t *testing.T) {
	h := start(t, Config{Workers: 1, Depth: 1, MaxQueue: 2})
	c0 := h.submit(req("/wait", "file=go", "t0"))
	c1 := h.submit(req("/fast", "", "t1"))
	c2 := h.submit(req("/fast", "", "t2"))
	if _, err := h.p.Submit(req("/fast", "", "t3")); !errors.Is(err, ErrQueueFull) {
		t.Errorf("Submit over MaxQueue: err = %v, want ErrQueueFull", err)
	}
	if q := h.queued(); q != 2 {
		t.Errorf("queued = %d, want 2", q)
	}
	h.touch("go")
	h.wantOK(c0, "t0")
	h.wantOK(c1, "t1")
	h.wantOK(c2, "t2")
	if _, ok := find(h.events(), "recv", "tok", "t3"); ok {
		t.Error("the refused request reached a worker")
	}
}

func TestQueueTimeout(t *testing.T) {
	h := start(t, Config{Workers: 1, Depth: 1, QueueTimeout: 100 * time.Millisecond})
	c0 := h.submit(req("/wait", "file=go", "t0"))
	c1 := h.submit(req("/fast", "", "t1"))
	wantErr(t, c1, ErrQueueTimeout)
	if q := h.queued(); q != 0 {
		t.Errorf("queued = %d after the queue timeout, want 0", q)
	}
	h.touch("go")
	h.wantOK(c0, "t0")
	h.wantOK(h.submit(req("/fast", "", "t2")), "t2")
	if _, ok := find(h.events(), "recv", "tok", "t1"); ok {
		t.Error("the expired request reached a worker")
	}
}

func TestNoWorkers(t *testing.T) {
	h := start(t, Config{Workers: 1, QueueTimeout: 200 * time.Millisecond})
	h.setMode(fakeworker.ModeExit) // replacements never become ready
	wantErr(t, h.submit(req("/crash", "after=1", "t0")), ErrWorkerDied)
	// A replacement may be on its way: the request waits for it, here
	// until the queue timeout.
	wantErr(t, h.submit(req("/fast", "", "t1")), ErrQueueTimeout)
	// Once the slot is in a crash loop (backing off a second or more),
	// requests are refused at once.
	for end := time.Now().Add(patience); ; time.Sleep(20 * time.Millisecond) {
		c, err := h.p.Submit(req("/fast", "", "t2"))
		if errors.Is(err, ErrNoWorkers) {
			break
		}
		if err == nil {
			c.Release()
		}
		if time.Now().After(end) {
			t.Fatalf("Submit during a crash loop: err = %v, want ErrNoWorkers", err)
		}
	}
}

// waitNotReady waits until Ready reports false.
func (h *harness) waitNotReady() {
	h.t.Helper()
	for end := time.Now().Add(patience); ; time.Sleep(2 * time.Millisecond) {
		if ok, _ := h.p.Ready(); !ok {
			return
		}
		if time.Now().After(end) {
			h.t.Fatal("the pool still reports ready")
		}
	}
}

// TestShutdownDrains: Shutdown refuses new requests at once, lets the
// running and queued ones finish, and only then stops the workers.
func TestShutdownDrains(t *testing.T) {
	h := start(t, Config{Workers: 1, Depth: 1})
	c0 := h.submit(req("/wait", "file=go", "t0"))
	c1 := h.submit(req("/fast", "", "t1")) // queued
	h.waitEvent("recv", "tok", "t0")
	pids := h.pids()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		done <- h.p.Shutdown(ctx)
	}()
	h.stopped.Store(true)
	h.waitNotReady()
	if ok, why := h.p.Ready(); ok || why != "shutting down" {
		t.Errorf("Ready while draining = %v %q, want false \"shutting down\"", ok, why)
	}
	if _, err := h.p.Submit(req("/fast", "", "late")); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("Submit while draining: err = %v, want ErrShuttingDown", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned while a request ran: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	h.touch("go")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(patience):
		t.Fatal("Shutdown did not return")
	}
	evs := h.events()
	for _, tok := range []string{"t0", "t1"} {
		if _, ok := find(evs, "done", "tok", tok); !ok {
			t.Errorf("Shutdown returned before %s was done", tok)
		}
	}
	if n := h.p.InFlight(); n != 0 {
		t.Errorf("InFlight = %d after Shutdown, want 0", n)
	}
	h.wantOK(c0, "t0")
	h.wantOK(c1, "t1")
	for _, pid := range pids {
		if syscall.Kill(pid, 0) != syscall.ESRCH {
			t.Errorf("worker %d still exists after Shutdown", pid)
		}
	}
	if _, ok := find(h.events(), "term"); ok {
		t.Error("a drained worker got SIGTERM; EOF alone should have ended it")
	}
	// Shutting down a pool already shut down returns at once.
	if err := h.shutdown(patience); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// stuckPool is a pool of two workers, each running a request that never
// ends, with a third request queued behind them.
func stuckPool(t *testing.T) (h *harness, running [2]*Call, queued *Call, pids []int) {
	h = start(t, Config{Workers: 2, Depth: 1, KillGrace: 200 * time.Millisecond})
	running[0] = h.submit(req("/hang", "", "h0"))
	running[1] = h.submit(req("/hang", "", "h1"))
	h.waitEvent("hang", "tok", "h0")
	h.waitEvent("hang", "tok", "h1")
	queued = h.submit(req("/fast", "", "q")) // queued: both workers are full
	pids = h.pids()
	if len(pids) != 2 {
		t.Fatalf("workers: %v, want 2", pids)
	}
	return h, running, queued, pids
}

// wantStopped checks a pool stuckPool made after it was stopped.
func wantStopped(t *testing.T, h *harness, running [2]*Call, queued *Call, pids []int) {
	t.Helper()
	wantErr(t, queued, ErrShuttingDown)
	wantErr(t, running[0], ErrWorkerDied)
	wantErr(t, running[1], ErrWorkerDied)
	for _, pid := range pids {
		if syscall.Kill(pid, 0) != syscall.ESRCH {
			t.Errorf("worker %d still exists after the pool stopped", pid)
		}
	}
	if _, err := h.p.Submit(req("/fast", "", "late")); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("Submit after the pool stopped: err = %v, want ErrShuttingDown", err)
	}
	if ws, _ := h.p.Status(); len(ws) != 0 {
		t.Errorf("Status after the pool stopped lists %d workers", len(ws))
	}
}

// TestShutdownDeadline: requests that outlast Shutdown's context are cut:
// their workers are stopped (SIGTERM, then SIGKILL), queued requests fail,
// and Shutdown says its deadline passed.
func TestShutdownDeadline(t *testing.T) {
	h, running, queued, pids := stuckPool(t)
	err := h.shutdown(200 * time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with requests running: err = %v, want context.DeadlineExceeded", err)
	}
	wantStopped(t, h, running, queued, pids)
}

// TestClose: Close stops at once what Shutdown would have waited for.
func TestClose(t *testing.T) {
	h, running, queued, pids := stuckPool(t)
	start := time.Now()
	h.close()
	// SIGTERM at once, SIGKILL after KillGrace: nowhere near patience.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %s", took)
	}
	wantStopped(t, h, running, queued, pids)
}

// TestCloseDuringShutdown: Close cuts a Shutdown short, which then
// returns ErrClosed once the workers are gone.
func TestCloseDuringShutdown(t *testing.T) {
	h, running, queued, pids := stuckPool(t)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		done <- h.p.Shutdown(ctx)
	}()
	h.waitNotReady()
	h.close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Shutdown cut short by Close: err = %v, want ErrClosed", err)
		}
	case <-time.After(patience):
		t.Fatal("Shutdown did not return after Close")
	}
	wantStopped(t, h, running, queued, pids)
}

// Shutdown and Close twice, one after the other and at once, in both
// orders: the pool stops once and every call returns.
func TestShutdownAndCloseTwice(t *testing.T) {
	t.Run("shutdown", func(t *testing.T) {
		h := start(t, Config{Workers: 2})
		pids := h.pids()
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for range 2 {
			wg.Go(func() { errs <- h.shutdown(patience) })
		}
		wg.Wait()
		errs <- h.shutdown(patience)
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}
		h.close()
		h.close()
		for _, pid := range pids {
			if syscall.Kill(pid, 0) != syscall.ESRCH {
				t.Errorf("worker %d still exists", pid)
			}
		}
	})
	t.Run("close", func(t *testing.T) {
		h := start(t, Config{Workers: 2})
		pids := h.pids()
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(h.close)
		}
		wg.Wait()
		h.close()
		if err := h.shutdown(patience); err != nil {
			t.Errorf("Shutdown after Close: %v", err)
		}
		for _, pid := range pids {
			if syscall.Kill(pid, 0) != syscall.ESRCH {
				t.Errorf("worker %d still exists", pid)
			}
		}
	})
}

// Shutdown or Close before Start: they return at once, Start then fails
// with ErrClosed and starts no worker, and a second call is harmless.
func TestStopBeforeStart(t *testing.T) {
	for _, name := range []string{"shutdown", "close"} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Config{Workers: 2}, fakeworker.ModeServe)
			for range 2 {
				if name == "shutdown" {
					if err := h.shutdown(patience); err != nil {
						t.Errorf("Shutdown before Start: %v", err)
					}
				} else {
					h.close()
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			if err := h.p.Start(ctx); !errors.Is(err, ErrClosed) {
				t.Errorf("Start after %s: err = %v, want ErrClosed", name, err)
			}
			if pids := fakeworker.Pids(h.dir); len(pids) != 0 {
				t.Errorf("workers started after %s: %v", name, pids)
			}
			if ok, _ := h.p.Ready(); ok {
				t.Error("Ready after Start failed")
			}
		})
	}
}

// TestCloseDuringStart: Close while Start waits for workers that never
// say HELLO makes Start fail with ErrClosed, and leaves no process.
func TestCloseDuringStart(t *testing.T) {
	h := newHarness(t, Config{Workers: 2}, fakeworker.ModeSilent)
	started := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		started <- h.p.Start(ctx)
	}()
	for end := time.Now().Add(patience); len(fakeworker.Pids(h.dir)) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the workers did not start")
		}
	}
	h.close()
	select {
	case err := <-started:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Start interrupted by Close: err = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second): // Close waits for Start; this is the send
		t.Fatal("Start did not return after Close")
	}
	for _, pid := range fakeworker.Pids(h.dir) {
		if syscall.Kill(pid, 0) != syscall.ESRCH {
			t.Errorf("worker %d still exists after Close", pid)
		}
	}
}

// TestMarkNotReady: probes see the pool leave rotation while it still
// takes and serves requests.
func TestMarkNotReady(t *testing.T) {
	h := start(t, Config{Workers: 1})
	if ok, why := h.p.Ready(); !ok {
		t.Fatalf("Ready after Start = false %q", why)
	}
	h.p.MarkNotReady()
	h.p.MarkNotReady()
	if ok, why := h.p.Ready(); ok || why != "shutting down" {
		t.Errorf("Ready after MarkNotReady = %v %q, want false \"shutting down\"", ok, why)
	}
	h.wantOK(h.submit(req("/fast", "", "t0")), "t0")
}

func TestAppError(t *testing.T) {
	h := start(t, Config{Workers: 1})
	old := h.pids()[0]
	c := h.submit(req("/error", "", "e"))
	_, err := head(c)
	var ae *AppError
	if !errors.As(err, &ae) {
		t.Fatalf("Head: err = %v, want an *AppError", err)
	}
	if ae.Traceback != fakeworker.AppTraceback || !strings.Contains(ae.Err, "ZeroDivisionError") {
		t.Errorf("AppError = %+v", ae)
	}
	if !strings.Contains(h.log.String(), "ZeroDivisionError") {
		t.Errorf("the traceback is not in the log:\n%s", h.log)
	}
	// The worker survives its app's exceptions, and its LOG frames reach
	// the log.
	if pid := h.wantOK(h.submit(req("/log", "", "l")), "l"); pid != old {
		t.Errorf("served by %d, want the same worker %d", pid, old)
	}
	if !strings.Contains(h.log.String(), "fake worker says hello") {
		t.Errorf("the worker's LOG frame is not in the log:\n%s", h.log)
	}
}

func TestStreamingBody(t *testing.T) {
	h := start(t, Config{Workers: 1})
	c := h.submit(req("/stream", "n=4", "s"))
	if status, err := head(c); err != nil || status != 200 {
		t.Fatalf("Head = %d, %v", status, err)
	}
	if _, ok := c.Inline(); ok {
		t.Error("Inline reports a complete body for a response still streaming")
	}
	// The worker produces part i only once the flush after part i-1 has
	// acknowledged it: the body can only complete if parts arrive as they
	// are produced.
	var w bufWriter
	flushes := 0
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	err := c.WriteBody(ctx, &w, func() error {
		flushes++
		h.touch(fmt.Sprintf("ack-s-%d", strings.Count(w.String(), "part ")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := w.String(), "part 0\npart 1\npart 2\npart 3\n"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if flushes < 4 {
		t.Errorf("%d flushes, want one per part at least", flushes)
	}
	h.noFailures()
}

func bigBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = fakeworker.BigByte(i)
	}
	return b
}

func TestSpillToFile(t *testing.T) {
	const memory, size = 64 << 10, 3 << 20
	h := start(t, Config{Workers: 1, SpoolMemory: memory})
	c := h.submit(req("/big", fmt.Sprintf("size=%d&chunk=%d", size, 64<<10), "b"))
	if status, err := head(c); err != nil || status != 200 {
		t.Fatalf("Head = %d, %v", status, err)
	}
	h.waitIdle() // the whole response is spooled: nobody has read it yet
	c.body.mu.Lock()
	spilled, mem := c.body.tmp != nil, c.body.mem
	c.body.mu.Unlock()
	if !spilled {
		t.Error("a response larger than SpoolMemory did not spill to a file")
	}
	if mem > memory || h.p.limits.inMemory.Load() > memory {
		t.Errorf("spool memory %d (pool %d), want at most %d", mem, h.p.limits.inMemory.Load(), memory)
	}
	var w bufWriter
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.WriteBody(ctx, &w, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), bigBody(size)) {
		t.Errorf("body of %d bytes differs from the %d sent", w.Len(), size)
	}
	c.Release()
	if n := h.p.limits.inMemory.Load(); n != 0 {
		t.Errorf("pool spool memory %d after Release, want 0", n)
	}
}

func TestPauseResume(t *testing.T) {
	const size, pause = 4 << 20, 256 << 10
	h := start(t, Config{Workers: 1, SpoolMemory: 64 << 10, SpoolPause: pause})
	// The fake waits for PAUSE once it has sent twice the threshold, so
	// the PAUSE cannot lose a race with the end of the response.
	c := h.submit(req("/big", fmt.Sprintf("size=%d&chunk=%d&expectpause=%d", size, 32<<10, 2*pause), "p"))
	if status, err := head(c); err != nil || status != 200 {
		t.Fatalf("Head = %d, %v", status, err)
	}
	blocked := h.waitEvent("blocked", "tok", "p")
	if sent, _ := strconv.Atoi(blocked.Args["sent"]); sent >= size {
		t.Errorf("worker paused after sending everything (%d bytes)", sent)
	}
	var w bufWriter
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.WriteBody(ctx, &w, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), bigBody(size)) {
		t.Errorf("body of %d bytes differs from the %d sent", w.Len(), size)
	}
	evs := h.events()
	p, _ := find(evs, "pause", "tok", "p")
	r, ok := find(evs, "resume", "tok", "p")
	if !ok || p.Seq > blocked.Seq || r.Seq < blocked.Seq {
		t.Errorf("want PAUSE, then the worker blocked, then RESUME; got pause #%d blocked #%d resume #%d (found %v)",
			p.Seq, blocked.Seq, r.Seq, ok)
	}
	h.noFailures()
}

func TestFilePart(t *testing.T) {
	h := start(t, Config{Workers: 1})
	c := h.submit(req("/file", "data=hello+file", "f"))
	if status, err := head(c); err != nil || status != 200 {
		t.Fatalf("Head = %d, %v", status, err)
	}
	var w bufWriter
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.WriteBody(ctx, &w, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := w.String(), "hello file"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if w.readFroms == 0 {
		t.Error("the file part did not go through ReadFrom")
	}
}

// bodyReader is a pulled request body.
type bodyReader struct{ *bytes.Reader }

func TestPulledBody(t *testing.T) {
	h := start(t, Config{Workers: 1})
	data := bigBody(5000)
	r := req("/pull", "chunk=1000", "pb")
	r.Frame = fakeworker.RequestFrame("/pull", "chunk=1000", "pb", proto.FlagBodyPull, nil)
	r.Body = bodyReader{bytes.NewReader(data)}
	status, body, err := result(h.submit(r))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("got %d %x", len(data), sha256.Sum256(data)); status != 200 || body != want {
		t.Errorf("got %d %q, want 200 %q", status, body, want)
	}
	if e, ok := find(h.events(), "pulled", "tok", "pb"); !ok || e.Args["reads"] != "6" {
		t.Errorf("pulled = %v; want 6 READs (5 of data, 1 for the end)", e.Args)
	}
	h.noFailures()
}

func TestReleaseCancels(t *testing.T) {
	h := start(t, Config{Workers: 1, Budget: time.Second})
	c0 := h.submit(req("/untilcancel", "", "t0"))
	h.waitEvent("start", "tok", "t0")
	c1 := h.submit(req("/fast", "", "t1")) // pipelined behind t0
	h.waitEvent("recv", "tok", "t1")

	c1.Release() // not started: the worker drops it
	h.waitEvent("cancel", "tok", "t1", "state", "queued")
	c0.Release() // running: the worker stops it
	h.waitEvent("cancel", "tok", "t0", "state", "running")
	h.waitIdle()

	evs := h.events()
	if _, ok := find(evs, "start", "tok", "t1"); ok {
		t.Error("a cancelled request that had not started was started")
	}
	if _, ok := find(evs, "done", "tok", "t0", "how", "aborted"); !ok {
		t.Error("the running request did not end ABORTED")
	}
	// The worker is still good.
	h.wantOK(h.submit(req("/fast", "", "t2")), "t2")
	h.noFailures()
}

func TestReleaseQueued(t *testing.T) {
	h := start(t, Config{Workers: 1, Depth: 1})
	c0 := h.submit(req("/wait", "file=go", "t0"))
	c1 := h.submit(req("/fast", "", "t1"))
	if q := h.queued(); q != 1 {
		t.Fatalf("queued = %d, want 1", q)
	}
	c1.Release()
	if q := h.queued(); q != 0 {
		t.Errorf("queued = %d after Release, want 0", q)
	}
	h.touch("go")
	h.wantOK(c0, "t0")
	h.wantOK(h.submit(req("/fast", "", "t2")), "t2")
	if _, ok := find(h.events(), "recv", "tok", "t1"); ok {
		t.Error("a request released while queued reached a worker")
	}
}

func TestStartBootFailure(t *testing.T) {
	h := newHarness(t, Config{Workers: 2}, fakeworker.ModeBootFail)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	err := h.p.Start(ctx)
	var be *worker.BootError
	if !errors.As(err, &be) {
		t.Fatalf("Start: err = %v, want a *worker.BootError", err)
	}
	if be.Traceback != fakeworker.BootFailTraceback {
		t.Errorf("Traceback = %q, want %q", be.Traceback, fakeworker.BootFailTraceback)
	}
	pids := fakeworker.Pids(h.dir)
	if len(pids) != 2 {
		t.Errorf("%d workers started, want 2", len(pids))
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) != syscall.ESRCH {
			t.Errorf("worker %d still exists after Start failed", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Shutdown at once after Start: nothing Start set going may outlive
// Shutdown.
func TestShutdownRightAfterStart(t *testing.T) {
	h := start(t, Config{Workers: 2})
	if err := h.shutdown(time.Second); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	pids := fakeworker.Pids(h.dir)
	if len(pids) != 2 {
		t.Errorf("%d workers started, want 2", len(pids))
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) != syscall.ESRCH {
			t.Errorf("worker %d still exists after Shutdown", pid)
		}
	}
}

// Many PAUSE/RESUME rounds while the reader drains concurrently: a PAUSE
// decided after the reader has drained the spool must not be sent, and a
// RESUME must never overtake its PAUSE, or the response stalls for good.
func TestPauseResumeRace(t *testing.T) {
	const size, pause = 1 << 20, 2 << 10
	h := start(t, Config{Workers: 1, SpoolPause: pause})
	for i := range 3 {
		tok := "r" + strconv.Itoa(i)
		c := h.submit(req("/big", fmt.Sprintf("size=%d&chunk=%d", size, 512), tok))
		if status, err := head(c); err != nil || status != 200 {
			t.Fatalf("Head = %d, %v", status, err)
		}
		var w bufWriter
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		err := c.WriteBody(ctx, &w, nil)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v after %d bytes", tok, err, w.Len())
		}
		if !bytes.Equal(w.Bytes(), bigBody(size)) {
			t.Fatalf("%s: body of %d bytes differs from the %d sent", tok, w.Len(), size)
		}
	}
	if len(all(h.events(), "pause")) == 0 {
		t.Error("the worker was never paused")
	}
}

// classReq is req with a priority class.
func classReq(path, query, tok string, class int) *Request {
	r := req(path, query, tok)
	r.Class = class
	return r
}

func TestPriorityClassServedFirst(t *testing.T) {
	h := start(t, Config{Workers: 1, Depth: 1, Reserve: []int{0, 0}})
	c0 := h.submit(req("/wait", "file=go", "t0"))
	h.waitEvent("start", "tok", "t0")
	l1 := h.submit(classReq("/fast", "", "l1", 0))
	l2 := h.submit(classReq("/fast", "", "l2", 0))
	h1 := h.submit(classReq("/fast", "", "h1", 1))
	h.touch("go")
	h.wantOK(c0, "t0")
	h.wantOK(l1, "l1")
	h.wantOK(l2, "l2")
	h.wantOK(h1, "h1")
	var order []string
	for _, e := range h.events() {
		if e.Kind == "start" {
			order = append(order, e.Args["tok"])
		}
	}
	if strings.Join(order, " ") != "t0 h1 l1 l2" {
		t.Errorf("start order %v, want t0 h1 l1 l2", order)
	}
}

func TestReservedThreads(t *testing.T) {
	h := start(t, Config{Workers: 2, Depth: 1, Reserve: []int{0, 1}})
	t0 := h.submit(classReq("/wait", "file=go", "t0", 0))
	h.waitEvent("start", "tok", "t0")
	// One thread is free, and it is reserved for class 1: the default
	// class waits, class 1 runs at once.
	t1 := h.submit(classReq("/fast", "", "t1", 0))
	if q := h.queued(); q != 1 {
		t.Fatalf("queued = %d, want the default-class request waiting", q)
	}
	h.wantOK(h.submit(classReq("/fast", "", "p1", 1)), "p1")
	if q := h.queued(); q != 1 {
		t.Fatalf("queued = %d after the class-1 request, want 1", q)
	}
	h.touch("go")
	h.wantOK(t0, "t0")
	h.wantOK(t1, "t1")
	// Out of a class above: Class values past the top clamp to it.
	h.wantOK(h.submit(classReq("/fast", "", "p2", 7)), "p2")
}

func TestShedLowestClass(t *testing.T) {
	h := start(t, Config{Workers: 1, Depth: 1, MaxQueue: 2, Reserve: []int{0, 0}})
	c0 := h.submit(req("/wait", "file=go", "t0"))
	h.waitEvent("start", "tok", "t0")
	l1 := h.submit(classReq("/fast", "", "l1", 0))
	l2 := h.submit(classReq("/fast", "", "l2", 0))
	p1 := h.submit(classReq("/fast", "", "p1", 1))
	wantErr(t, l2, ErrQueueFull) // the newest of the lowest class makes room
	if _, err := h.p.Submit(classReq("/fast", "", "l3", 0)); !errors.Is(err, ErrQueueFull) {
		t.Errorf("default class into a queue full of equal or higher classes: %v", err)
	}
	if _, err := h.p.Submit(classReq("/fast", "", "p2", 1)); err != nil {
		t.Errorf("class 1 should shed l1: %v", err)
	}
	wantErr(t, l1, ErrQueueFull)
	if _, err := h.p.Submit(classReq("/fast", "", "p3", 1)); !errors.Is(err, ErrQueueFull) {
		t.Errorf("class 1 into a queue full of class 1: %v", err)
	}
	h.touch("go")
	h.wantOK(c0, "t0")
	h.wantOK(p1, "p1")
	h.waitIdle()
}

func TestBanFrame(t *testing.T) {
	got := make(chan proto.BanRequest, 1)
	h := start(t, Config{Workers: 1, OnBan: func(b proto.BanRequest) { got <- b }})
	h.wantOK(h.submit(req("/ban", "addr=192.0.2.44", "t0")), "t0")
	select {
	case b := <-got:
		if b.Addr != "192.0.2.44" || b.Seconds != 60 || b.Reason != "fake worker bans" {
			t.Errorf("ban = %+v", b)
		}
	case <-time.After(patience):
		t.Fatal("no ban")
	}
}

func TestOnReady(t *testing.T) {
	var mu sync.Mutex
	n := 0
	start(t, Config{Workers: 2, OnReady: func(h *worker.Hello) {
		mu.Lock()
		n++
		mu.Unlock()
	}})
	mu.Lock()
	defer mu.Unlock()
	if n != 2 {
		t.Errorf("OnReady called %d times, want 2", n)
	}
}

// TestRecycleUnderLoad retires workers (--max-requests) while requests
// pipelined to them complete: every call gets its own answer, and under
// -race the retirement's bookkeeping shares nothing unguarded with
// completion. The clients keep going until 30 workers were retired
// (replacements take a while to boot under -race), within a bound.
func TestRecycleUnderLoad(t *testing.T) {
	h := start(t, Config{Workers: 2, MaxRequests: 3, Budget: time.Second})
	const clients, most, want = 6, 5000, 30
	retired := func() int { return strings.Count(h.log.String(), "retiring worker") }
	end := time.Now().Add(patience)
	var wg sync.WaitGroup
	var mu sync.Mutex
	pids := map[int]bool{}
	for i := range clients {
		wg.Go(func() {
			for j := 0; j < most && retired() < want && time.Now().Before(end); j++ {
				tok := "c" + strconv.Itoa(i) + "r" + strconv.Itoa(j)
				c, err := h.p.Submit(req("/fast", "", tok))
				if err != nil {
					t.Errorf("Submit %s: %v", tok, err)
					return
				}
				status, body, err := result(c)
				c.Release()
				f := strings.Fields(body)
				if err != nil || status != 200 || len(f) != 3 || f[1] != tok {
					t.Errorf("%s: got %d %q, %v", tok, status, body, err)
					return
				}
				pid, _ := strconv.Atoi(f[2])
				mu.Lock()
				pids[pid] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if n := retired(); n < want {
		t.Errorf("%d workers retired, want at least %d", n, want)
	}
	if len(pids) < want {
		t.Errorf("requests ran on %d workers, want at least %d", len(pids), want)
	}
}

// TestStaleReplaceRequest: a request to replace a worker that was replaced
// already (a timeout's request that waited behind a recycle of the same
// worker) replaces nothing: the new worker keeps serving, and the old
// worker's restart is reported once, with the first reason.
func TestStaleReplaceRequest(t *testing.T) {
	var mu sync.Mutex
	var restarts []Restart
	h := start(t, Config{Workers: 1, Budget: time.Second, OnRestart: func(r Restart) {
		mu.Lock()
		restarts = append(restarts, r)
		mu.Unlock()
	}})
	old := h.pids()[0]
	h.p.mu.Lock()
	s := h.p.slotList[0]
	m := s.cur
	m.recycling = true
	h.p.requestReplace(s, m, "max-requests")
	h.p.mu.Unlock()
	pid := h.waitReplaced(old)
	// The same worker again, as a timeout would ask after the recycle.
	h.p.mu.Lock()
	h.p.requestReplace(s, m, "timeout")
	h.p.mu.Unlock()
	// The supervisor takes the request at once; give it time to act on it.
	for end := time.Now().Add(time.Second); time.Now().Before(end) && len(s.replace) > 0; time.Sleep(5 * time.Millisecond) {
	}
	time.Sleep(200 * time.Millisecond)
	if got := h.pids(); len(got) != 1 || got[0] != pid {
		t.Errorf("workers %v after a stale request; want the replacement %d alone", got, pid)
	}
	if c := h.submit(req("/fast", "", "t0")); h.wantOK(c, "t0") != pid {
		t.Errorf("t0 not served by the replacement %d", pid)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(restarts) != 1 || restarts[0].Pid != old || restarts[0].Reason != "max-requests" {
		t.Errorf("restarts %+v; want one, of %d, for max-requests", restarts, old)
	}
}
