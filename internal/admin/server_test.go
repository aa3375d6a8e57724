package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// start opens a server on a Unix socket in a new directory and serves
// src and bans; it returns the server, its socket and Serve's result.
func start(t *testing.T, src Source, bans Bans) (*Server, string, <-chan error) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "run", "1.sock")
	s, err := Open("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	served := make(chan error, 1)
	go func() { served <- s.Serve(src, bans) }()
	return s, sock, served
}

func waitServe(t *testing.T, served <-chan error) {
	t.Helper()
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestOpenUnix(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	sock := filepath.Join(dir, "1.sock")
	s, err := Open(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, sock: 0o600 | os.ModeSocket} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() & (os.ModeType | os.ModePerm); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
	if got := s.Addr().String(); got != sock {
		t.Errorf("Addr = %s, want %s", got, sock)
	}
	if !s.dirNew {
		t.Errorf("Open created the directory but does not know it")
	}
	if err := s.Chown(os.Getuid(), os.Getgid()); err != nil {
		t.Errorf("Chown to our own account: %v", err)
	}

	// A live socket is never taken over.
	if _, err := Open(sock); err == nil || !strings.Contains(err.Error(), "admin listener") {
		t.Errorf("second Open of a live socket: %v", err)
	}
	// A stale one is.
	s.Close()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	s2, err := Open("unix:" + sock)
	if err != nil {
		t.Fatalf("Open over a stale socket: %v", err)
	}
	defer s2.Close()
	if s2.dirNew {
		t.Errorf("the directory existed, but Open says it created it")
	}
}

func TestOpenTCP(t *testing.T) {
	s, err := Open("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr().Network() != "tcp" {
		t.Errorf("network %s, want tcp", s.Addr().Network())
	}
	if err := s.Chown(12345, 12345); err != nil {
		t.Errorf("Chown of a TCP server: %v, want nothing done", err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(&fakeSource{ready: true}, nil) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, body, err := Get(ctx, s.Addr().String(), "/readyz"); err != nil || st != 200 || !strings.Contains(string(body), `"ready"`) {
		t.Errorf("GET /readyz over TCP: %d %s %v", st, body, err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	waitServe(t, served)
}

// TestClient goes through the whole API over the socket.
func TestClient(t *testing.T) {
	_, sock, _ := start(t, &fakeSource{why: "starting"}, newFakeBans())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := Client{Addr: sock}
	st, raw, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready || st.Reason != "starting" || st.Pid != 42 || !slices.Equal(st.Binds, []string{"127.0.0.1:8000", "unix:/run/x.sock"}) || len(st.Workers) != 1 {
		t.Errorf("Status = %+v", st)
	}
	if !strings.Contains(string(raw), `"uptime_seconds": 90`) {
		t.Errorf("raw status %s", raw)
	}
	if _, err := c.Ban(ctx, BanRequest{Addr: "192.0.2.7", Seconds: 60, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ban(ctx, BanRequest{Addr: "nope"}); err == nil || err.Error() != sock+": not an IP address" {
		t.Errorf("Ban of a bad address: %v, want the server's message", err)
	}
	bans, _, err := c.Bans(ctx)
	if err != nil || len(bans) != 1 || bans[0].Addr != "192.0.2.7" || bans[0].Reason != "test" {
		t.Errorf("Bans = %+v, %v", bans, err)
	}
	if _, err := c.Unban(ctx, "192.0.2.7"); err != nil {
		t.Errorf("Unban: %v", err)
	}
	if _, err := c.Unban(ctx, "192.0.2.7"); err == nil || err.Error() != sock+": no such ban" {
		t.Errorf("second Unban: %v", err)
	}

	// No ban table: the ban routes are not there.
	_, plain, _ := start(t, &fakeSource{}, nil)
	if _, _, err := (Client{Addr: plain}).Bans(ctx); err == nil || !strings.Contains(err.Error(), "answered 404") {
		t.Errorf("Bans without a ban table: %v", err)
	}
	if _, _, err := (Client{Addr: filepath.Join(t.TempDir(), "none.sock")}).Status(ctx); err == nil || !strings.Contains(err.Error(), "admin API at") {
		t.Errorf("Status of no server: %v", err)
	}
}

// TestShutdown: a request under way is answered; Serve returns
// http.ErrServerClosed; the socket file is gone.
func TestShutdown(t *testing.T) {
	src := &fakeSource{block: make(chan struct{})}
	s, sock, served := start(t, src, nil)
	got := make(chan error, 1)
	go func() {
		_, _, err := Client{Addr: sock}.Status(context.Background())
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // the request is in Status
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request under way", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(src.block)
	if err := <-got; err != nil {
		t.Errorf("the request under way: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	waitServe(t, served)
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Shutdown: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
}

// TestShutdownDeadline: the context's deadline is the grace period.
func TestShutdownDeadline(t *testing.T) {
	src := &fakeSource{block: make(chan struct{})}
	defer close(src.block)
	s, sock, _ := start(t, src, nil)
	go Client{Addr: sock}.Status(context.Background())
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown past its deadline: %v, want context.DeadlineExceeded", err)
	}
}

// TestClose: Close ends the requests under way at once.
func TestClose(t *testing.T) {
	src := &fakeSource{block: make(chan struct{})}
	defer close(src.block)
	s, sock, served := start(t, src, nil)
	got := make(chan error, 1)
	go func() {
		_, _, err := Client{Addr: sock}.Status(context.Background())
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-got:
		if err == nil {
			t.Errorf("the request under way was answered after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request under way still waits after Close")
	}
	waitServe(t, served)
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestStopBeforeServe: Shutdown or Close before Serve closes the
// listener, removes the socket, and makes Serve return at once.
func TestStopBeforeServe(t *testing.T) {
	for _, stop := range []struct {
		name string
		f    func(*Server) error
	}{
		{"Shutdown", func(s *Server) error { return s.Shutdown(context.Background()) }},
		{"Close", (*Server).Close},
	} {
		sock := filepath.Join(t.TempDir(), "1.sock")
		s, err := Open(sock)
		if err != nil {
			t.Fatal(err)
		}
		if err := stop.f(s); err != nil {
			t.Errorf("%s before Serve: %v", stop.name, err)
		}
		if err := stop.f(s); err != nil {
			t.Errorf("second %s: %v", stop.name, err)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s before Serve: socket file %v", stop.name, err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(&fakeSource{}, nil) }()
		waitServe(t, done)
	}
}

func TestServeTwice(t *testing.T) {
	s, _, _ := start(t, &fakeSource{}, nil)
	time.Sleep(50 * time.Millisecond)
	if err := s.Serve(&fakeSource{}, nil); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Errorf("second Serve: %v, want an error", err)
	}
}

func TestSockets(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(DefaultSocket(dir, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A socket left by a process that is gone (no such pid) is removed.
	stale := DefaultSocket(dir, 1<<30)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if got, want := Sockets(dir), []string{s.Addr().String()}; !slices.Equal(got, want) {
		t.Errorf("Sockets = %q, want %q", got, want)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale socket still there: %v", err)
	}
}

func TestRuntimeDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got := RuntimeDir(env(map[string]string{"RUNTIME_DIRECTORY": "/run/a:/run/b", "XDG_RUNTIME_DIR": "/x"})); got != "/run/a" {
		t.Errorf("RUNTIME_DIRECTORY: %s", got)
	}
	if got := RuntimeDir(env(map[string]string{"XDG_RUNTIME_DIR": "/x"})); got != "/x/corral" {
		t.Errorf("XDG_RUNTIME_DIR: %s", got)
	}
	if got, want := DefaultSocket("/run/corral", 42), "/run/corral/42.sock"; got != want {
		t.Errorf("DefaultSocket = %s, want %s", got, want)
	}
}
