package worker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"corral/internal/fakeworker"
	"corral/internal/proto"
)

// envSpawnParent makes the test binary act as a master that spawns one
// fake worker and waits to be killed (TestNoOrphans).
const envSpawnParent = "CORRAL_TEST_SPAWN_PARENT"

func TestMain(m *testing.M) {
	if fakeworker.Requested() {
		fakeworker.Main()
	}
	if dir := os.Getenv(envSpawnParent); dir != "" {
		os.Exit(spawnParent(dir))
	}
	os.Exit(m.Run())
}

// fakeConfig returns a Config that starts the test binary as a fake
// worker in mode, and the directory it records into.
func fakeConfig(t *testing.T, mode string) (Config, string) {
	t.Helper()
	dir := t.TempDir()
	return configFor(mode, dir), dir
}

func configFor(mode, dir string) Config {
	return Config{
		Python:    os.Args[0],
		Bootstrap: "fake bootstrap",
		Runtime:   []byte("zip"),
		Env:       append(os.Environ(), fakeworker.Env(mode, dir)...),
		Boot:      Boot{Mode: "serve", App: "app:application", WorkerID: 7, Threads: 1},
		Logger:    slog.New(slog.DiscardHandler),
		KillGrace: 200 * time.Millisecond,
	}
}

func newSpawner(t *testing.T) *Spawner {
	sp := NewSpawner()
	t.Cleanup(sp.Close)
	return sp
}

// spawn starts a fake worker in mode; it is killed in cleanup.
func spawn(t *testing.T, mode string) (*Worker, string) {
	t.Helper()
	cfg, dir := fakeConfig(t, mode)
	sp := newSpawner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := Spawn(ctx, sp, cfg)
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	t.Cleanup(w.Close)
	return w, dir
}

// spawnErr runs Spawn expecting it to fail, and fails the test if Spawn
// does not return within a generous deadline.
func spawnErr(t *testing.T, ctx context.Context, cfg Config) error {
	t.Helper()
	sp := newSpawner(t)
	type result struct {
		w   *Worker
		err error
	}
	ch := make(chan result, 1)
	go func() {
		w, err := Spawn(ctx, sp, cfg)
		ch <- result{w, err}
	}()
	select {
	case r := <-ch:
		if r.err == nil {
			r.w.Close()
			t.Fatal("Spawn succeeded, want an error")
		}
		return r.err
	case <-time.After(20 * time.Second):
		t.Fatal("Spawn did not return")
	}
	return nil
}

// next reads one frame, failing the test if none comes.
func next(t *testing.T, w *Worker) (proto.Frame, *os.File) {
	t.Helper()
	_ = w.data.SetReadDeadline(time.Now().Add(20 * time.Second))
	f, fd, err := w.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return f, fd
}

func request(id uint32, path, query, tok string) []byte {
	b := fakeworker.RequestFrame(path, query, tok, 0, nil)
	binary.BigEndian.PutUint32(b[4:8], id)
	return b
}

// waitEvent waits until the fake workers recording in dir have recorded
// an event of kind.
func waitEvent(t *testing.T, dir, kind string) fakeworker.Event {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		evs, err := fakeworker.Events(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Kind == kind {
				return e
			}
		}
	}
	t.Fatalf("no %q event recorded", kind)
	return fakeworker.Event{}
}

func hasEvent(t *testing.T, dir, kind string) bool {
	t.Helper()
	evs, err := fakeworker.Events(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

// gone reports whether pid no longer exists. Only for our own children,
// which Spawn, Shutdown and Close reap.
func gone(pid int) bool { return syscall.Kill(pid, 0) == syscall.ESRCH }

func onlyPid(t *testing.T, dir string) int {
	t.Helper()
	pids := fakeworker.Pids(dir)
	if len(pids) != 1 {
		t.Fatalf("fake workers started: %v, want exactly one", pids)
	}
	return pids[0]
}

func TestSpawnHello(t *testing.T) {
	w, dir := spawn(t, fakeworker.ModeServe)
	if w.Pid <= 0 || w.Hello.Pid != w.Pid {
		t.Errorf("Pid = %d, Hello.Pid = %d; want the same positive pid", w.Pid, w.Hello.Pid)
	}
	if w.ID != 7 {
		t.Errorf("ID = %d, want 7", w.ID)
	}
	if got, want := w.Hello.Protocol, proto.Version; got != want {
		t.Errorf("Hello.Protocol = %d, want %d", got, want)
	}
	if got, want := w.Hello.DumpSignal, int(fakeworker.DumpSignal); got != want {
		t.Errorf("Hello.DumpSignal = %d, want %d", got, want)
	}
	boot := waitEvent(t, dir, "boot")
	want := map[string]string{"worker": "7", "app": "app:application", "bootmode": "serve",
		"protocol": strconv.Itoa(proto.Version), "runtime": "3"}
	for k, v := range want {
		if boot.Args[k] != v {
			t.Errorf("BOOT as the worker saw it: %s = %q, want %q", k, boot.Args[k], v)
		}
	}

	if err := w.Write(proto.AppendFrame(nil, proto.Ping, 0, 0, []byte("beat"))); err != nil {
		t.Fatal(err)
	}
	if f, _ := next(t, w); f.Type != proto.Pong || string(f.Payload) != "beat" {
		t.Errorf("answer to PING = %s %q, want PONG \"beat\"", f.Type, f.Payload)
	}

	if err := w.Write(request(5, "/fast", "", "t1")); err != nil {
		t.Fatal(err)
	}
	f, _ := next(t, w)
	if f.Type != proto.Start || f.ID != 5 || f.Flags&proto.FlagEnd == 0 {
		t.Fatalf("got %s id %d flags %d, want START id 5 with END", f.Type, f.ID, f.Flags)
	}
	head, body, err := proto.SplitStart(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	status, _, err := proto.ParseHead(head)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := status+" "+string(body), fmt.Sprintf("200 OK ok t1 %d", w.Pid); got != want {
		t.Errorf("response = %q, want %q", got, want)
	}

	w.DumpStacks()
	waitEvent(t, dir, "dump")

	if rss, err := w.RSS(); err != nil || rss <= 0 {
		t.Errorf("RSS = %d, %v; want a positive size", rss, err)
	}
}

func TestSpawnBootFail(t *testing.T) {
	cfg, dir := fakeConfig(t, fakeworker.ModeBootFail)
	err := spawnErr(t, context.Background(), cfg)
	var be *BootError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a *BootError", err)
	}
	if got, want := be.Traceback, fakeworker.BootFailTraceback; got != want {
		t.Errorf("Traceback = %q, want %q", got, want)
	}
	if !strings.Contains(be.Err, "nosuchapp") {
		t.Errorf("Err = %q, want the exception line", be.Err)
	}
	if pid := onlyPid(t, dir); !gone(pid) {
		t.Errorf("worker %d still exists after a failed boot", pid)
	}
}

func TestSpawnExitBeforeHello(t *testing.T) {
	cfg, dir := fakeConfig(t, fakeworker.ModeExit)
	err := spawnErr(t, context.Background(), cfg)
	var be *BootError
	if errors.As(err, &be) {
		t.Errorf("err = %v, want a plain error, not a BootError", err)
	}
	for _, want := range []string{fakeworker.ExitStderr, "exit status 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to contain %q", err, want)
		}
	}
	if pid := onlyPid(t, dir); !gone(pid) {
		t.Errorf("worker %d still exists", pid)
	}
}

func TestSpawnNoHello(t *testing.T) {
	cfg, dir := fakeConfig(t, fakeworker.ModeSilent)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := spawnErr(t, ctx, cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if pid := onlyPid(t, dir); !gone(pid) {
		t.Errorf("silent worker %d still exists after Spawn gave up", pid)
	}
}

func TestSpawnMissingInterpreter(t *testing.T) {
	cfg, _ := fakeConfig(t, fakeworker.ModeServe)
	cfg.Python = t.TempDir() + "/no-such-python"
	err := spawnErr(t, context.Background(), cfg)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "spawn worker 7") {
		t.Errorf("err = %v, want fs.ErrNotExist naming worker 7", err)
	}
}

func TestSpawnerClosed(t *testing.T) {
	cfg, _ := fakeConfig(t, fakeworker.ModeServe)
	sp := NewSpawner()
	sp.Close()
	_, err := Spawn(context.Background(), sp, cfg)
	if !errors.Is(err, errSpawnerClosed) {
		t.Errorf("Spawn on a closed Spawner: err = %v, want errSpawnerClosed", err)
	}
}

// Closing a Spawner twice, or from two goroutines at once, is closing it
// once (it used to panic on the second close of its channel).
func TestSpawnerCloseTwice(t *testing.T) {
	sp := NewSpawner()
	sp.Close()
	sp.Close()
	sp2 := NewSpawner()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(sp2.Close)
	}
	wg.Wait()
	cfg, _ := fakeConfig(t, fakeworker.ModeServe)
	if _, err := Spawn(context.Background(), sp, cfg); !errors.Is(err, errSpawnerClosed) {
		t.Errorf("Spawn after two Closes: err = %v, want errSpawnerClosed", err)
	}
}

func TestShutdown(t *testing.T) {
	cases := []struct {
		mode       string
		grace      time.Duration
		wantTerm   bool   // the worker was sent SIGTERM
		wantStatus string // how the process ended
	}{
		// EOF alone ends a well-behaved worker: it never sees SIGTERM.
		{fakeworker.ModeServe, time.Minute, false, "exit status 0"},
		// A worker that ignores EOF gets SIGTERM after grace and exits.
		{fakeworker.ModeIgnoreEOF, 200 * time.Millisecond, true, "exit status 0"},
		// One that also ignores SIGTERM is killed after KillGrace.
		{fakeworker.ModeStubborn, 200 * time.Millisecond, true, "signal: killed"},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			w, dir := spawn(t, c.mode)
			ctx, cancel := context.WithTimeout(context.Background(), c.grace)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- w.Shutdown(ctx) }()
			select {
			case err := <-done:
				if gotErr, wantErr := err != nil, c.wantTerm; gotErr != wantErr {
					t.Errorf("Shutdown: err = %v, want an error: %v", err, wantErr)
				}
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Shutdown: err = %v, want context.DeadlineExceeded", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Shutdown did not return")
			}
			select {
			case <-w.Exited():
			default:
				t.Fatal("Shutdown returned before the process exited")
			}
			got := "exit status 0"
			if err := w.ExitErr(); err != nil {
				got = err.Error()
			}
			if got != c.wantStatus {
				t.Errorf("process ended with %q, want %q", got, c.wantStatus)
			}
			if !hasEvent(t, dir, "eof") {
				t.Error("the worker never saw EOF on its data channel")
			}
			if got := hasEvent(t, dir, "term"); got != c.wantTerm {
				t.Errorf("SIGTERM received = %v, want %v", got, c.wantTerm)
			}
			if !gone(w.Pid) {
				t.Errorf("worker %d still exists", w.Pid)
			}
		})
	}
}

// within runs f in a goroutine and fails the test if it does not return
// within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", what, d)
	}
}

// Shutdown twice, one after the other and at once, is Shutdown once: one
// EOF, no SIGTERM for a worker that exits on EOF, no error.
func TestShutdownTwice(t *testing.T) {
	w, dir := spawn(t, fakeworker.ModeServe)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, 3)
	within(t, 30*time.Second, "two concurrent Shutdowns", func() {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { errs <- w.Shutdown(ctx) })
		}
		wg.Wait()
	})
	within(t, 5*time.Second, "Shutdown of a worker already gone", func() { errs <- w.Shutdown(ctx) })
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
	if hasEvent(t, dir, "term") {
		t.Error("the worker got SIGTERM; EOF alone should have ended it")
	}
	if !gone(w.Pid) {
		t.Errorf("worker %d still exists", w.Pid)
	}
}

// A Shutdown whose context has already ended gives no grace: SIGTERM at
// once, and only one even when two such Shutdowns race (a second SIGTERM
// would tell the worker to exit at once, not after its requests). The
// worker here ignores SIGTERM, so it counts every one, and is killed
// after KillGrace.
func TestShutdownNoGrace(t *testing.T) {
	w, dir := spawn(t, fakeworker.ModeStubborn)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs <- w.Shutdown(ctx) })
	waitEvent(t, dir, "term")
	// The second comes while the first waits KillGrace: a SIGTERM of its
	// own would arrive apart from the first, and be counted.
	wg.Go(func() { errs <- w.Shutdown(ctx) })
	within(t, 30*time.Second, "two Shutdowns without grace", wg.Wait)
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown: err = %v, want context.Canceled", err)
		}
	}
	evs, err := fakeworker.Events(dir)
	if err != nil {
		t.Fatal(err)
	}
	terms := 0
	for _, e := range evs {
		if e.Kind == "term" {
			terms++
		}
	}
	if terms != 1 {
		t.Errorf("the worker got %d SIGTERMs, want 1", terms)
	}
	if got, want := fmt.Sprint(w.ExitErr()), "signal: killed"; got != want {
		t.Errorf("process ended with %q, want %q", got, want)
	}
}

func TestCloseTwice(t *testing.T) {
	w, _ := spawn(t, fakeworker.ModeServe)
	within(t, 30*time.Second, "Close", w.Close)
	within(t, 5*time.Second, "second Close", w.Close)
	if !gone(w.Pid) {
		t.Errorf("worker %d still exists after Close", w.Pid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	within(t, 5*time.Second, "Shutdown after Close", func() {
		if err := w.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown after Close: %v", err)
		}
	})
}

// Close cuts a Shutdown short: a worker that ignores EOF and SIGTERM,
// given a minute of grace, is killed at once, and Shutdown returns.
func TestCloseDuringShutdown(t *testing.T) {
	w, dir := spawn(t, fakeworker.ModeStubborn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Shutdown(ctx) }()
	waitEvent(t, dir, "eof")
	within(t, 10*time.Second, "Close during Shutdown", w.Close)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown cut short by Close: err = %v, want nil (the process went before ctx ended)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after Close")
	}
	if got, want := fmt.Sprint(w.ExitErr()), "signal: killed"; got != want {
		t.Errorf("process ended with %q, want %q", got, want)
	}
}

// spawnParent is the child side of TestNoOrphans: it spawns a worker that
// ignores EOF and SIGTERM (like one stuck in application code), retires a
// few OS threads (which must not kill the worker: only the death of the
// Spawner's thread may), checks the worker still answers, prints its pid
// and waits to be killed.
func spawnParent(dir string) int {
	// Keep the main thread to ourselves, so that the Spawner's goroutine
	// runs on a thread that can exit, and the retired threads below are the
	// ones other goroutines ran on.
	runtime.LockOSThread()
	sp := NewSpawner()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := Spawn(ctx, sp, configFor(fakeworker.ModeStubborn, dir))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	for range 16 {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
			close(done)
		}()
		<-done
	}
	if err := w.Write(proto.AppendFrame(nil, proto.Ping, 0, 0, []byte("alive"))); err != nil {
		fmt.Println("error", err)
		return 1
	}
	_ = w.data.SetReadDeadline(time.Now().Add(20 * time.Second))
	if f, _, err := w.Next(); err != nil || f.Type != proto.Pong {
		fmt.Println("error no PONG:", f.Type, err)
		return 1
	}
	fmt.Println("pid", w.Pid)
	for {
		time.Sleep(time.Hour)
	}
}

// procState returns the state letter and start time of pid from
// /proc/pid/stat; ok is false if there is no such process.
func procState(pid int) (state string, start string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", "", false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", "", false
	}
	return f[0], f[19], true
}

func TestNoOrphans(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envSpawnParent+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	parentDone := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(parentDone)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-parentDone
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatal("the spawning process did not report its worker")
	}
	rest, ok := strings.CutPrefix(line, "pid ")
	if !ok {
		t.Fatalf("spawning process: %q", line)
	}
	pid, err := strconv.Atoi(rest)
	if err != nil {
		t.Fatal(err)
	}
	state, start, ok := procState(pid)
	if !ok || state == "Z" {
		t.Fatalf("worker %d is not running before its master dies (state %q)", pid, state)
	}
	t.Cleanup(func() {
		if _, s, ok := procState(pid); ok && s == start {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-parentDone
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, s, ok := procState(pid)
		if !ok || s != start || st == "Z" || st == "X" {
			break // gone, or dead and waiting for its new parent to reap it
		}
		if time.Now().After(end) {
			t.Fatalf("worker %d outlived its master (state %s)", pid, st)
		}
	}
	if !hasEvent(t, dir, "boot") {
		t.Error("the worker never booted")
	}
}

func TestFileFrame(t *testing.T) {
	w, _ := spawn(t, fakeworker.ModeServe)
	if err := w.Write(request(9, "/file", "data=hello+file", "f")); err != nil {
		t.Fatal(err)
	}
	if f, _ := next(t, w); f.Type != proto.Start || f.Flags&proto.FlagEnd != 0 {
		t.Fatalf("first frame %s flags %d, want START without END", f.Type, f.Flags)
	}
	f, file := next(t, w)
	if f.Type != proto.File || f.ID != 9 {
		t.Fatalf("second frame %s id %d, want FILE id 9", f.Type, f.ID)
	}
	if file == nil {
		t.Fatal("FILE frame without a descriptor")
	}
	defer file.Close()
	off, n, err := proto.ParseFile(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := file.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf), "hello file"; got != want {
		t.Errorf("file section = %q, want %q", got, want)
	}
	if f, _ := next(t, w); f.Type != proto.End || f.ID != 9 {
		t.Errorf("last frame %s id %d, want END id 9", f.Type, f.ID)
	}
	w.rd.mu.Lock()
	left := len(w.rd.fds)
	w.rd.mu.Unlock()
	if left != 0 {
		t.Errorf("%d descriptors left unclaimed", left)
	}
}

// A FILE frame whose descriptor did not arrive is a protocol error, not a
// descriptor taken from elsewhere.
func TestFileFrameWithoutDescriptor(t *testing.T) {
	a, b := unixPair(t)
	var p [16]byte
	if _, err := b.Write(proto.AppendFrame(nil, proto.File, 0, 1, p[:])); err != nil {
		t.Fatal(err)
	}
	rd := &fdReader{c: a, oob: make([]byte, syscall.CmsgSpace(4*maxFDsPerRead))}
	w := &Worker{rd: rd, frames: proto.NewReader(bufio.NewReader(rd))}
	if _, fd, err := w.Next(); !errors.Is(err, proto.ErrMalformed) || fd != nil {
		t.Errorf("Next = %v, %v; want ErrMalformed and no file", fd, err)
	}
}

func unixPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	parent, child, err := socketpair()
	if err != nil {
		t.Fatal(err)
	}
	a, err := fileConn(parent)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fileConn(child)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

// Regression: recvmsg's -1 on error reached bufio as a negative count and
// bufio panicked.
func TestReadErrorNeverNegative(t *testing.T) {
	a, _ := unixPair(t)
	rd := &fdReader{c: a, oob: make([]byte, syscall.CmsgSpace(4*maxFDsPerRead))}
	_ = a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	n, err := rd.Read(make([]byte, 64))
	if n < 0 || err == nil {
		t.Errorf("Read with nothing to read past the deadline = %d, %v; want 0 and an error", n, err)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("err = %v, want os.ErrDeadlineExceeded", err)
	}

	// Through the frame reader as Worker.Next uses it: an error, no panic.
	_ = a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	frames := proto.NewReader(bufio.NewReaderSize(rd, 4096))
	if _, err := frames.Next(); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("Next = %v, want a deadline error", err)
	}
}

// Descriptors received without FILE frames are bounded and closed.
func TestDescriptorFlood(t *testing.T) {
	a, b := unixPair(t)
	rd := &fdReader{c: a, oob: make([]byte, syscall.CmsgSpace(4*maxFDsPerRead))}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var gotErr error
	for i := 0; i < maxQueuedFDs+1 && gotErr == nil; i++ {
		if _, _, err := b.WriteMsgUnix([]byte{0}, syscall.UnixRights(int(f.Fd())), nil); err != nil {
			t.Fatal(err)
		}
		_, gotErr = rd.Read(make([]byte, 1))
	}
	if !errors.Is(gotErr, errFDFlood) {
		t.Errorf("err = %v, want errFDFlood", gotErr)
	}
	rd.closeFDs()
	if _, ok := rd.popFD(); ok {
		t.Error("descriptor left after closeFDs")
	}
}

func TestTail(t *testing.T) {
	tl := newTail(3)
	for i := range 5 {
		tl.add(strconv.Itoa(i))
	}
	if got, want := tl.String(), "2\n3\n4"; got != want {
		t.Errorf("tail = %q, want %q", got, want)
	}
}
