package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// launch runs cmd (corral, or a launcher that execs it) like start does,
// without adding a bind, and waits until the log shows want "listening"
// lines and ready reports true.
func launch(t *testing.T, cmd *exec.Cmd, want int, ready func() bool) *server {
	t.Helper()
	s := &server{t: t, cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	if cmd.Dir == "" {
		cmd.Dir = repoRoot
	}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.stop)
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(s.log.String(), "master: listening") < want || (ready != nil && !ready()) {
		select {
		case <-s.done:
			t.Fatalf("corral exited during start-up (%v):\n%s", s.err, s.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("corral did not start within 30s:\n%s", s.log)
		}
	}
	return s
}

// corralCmd is corral serving the test app with args.
func corralCmd(args ...string) *exec.Cmd {
	full := append([]string{"--python", pythonBin, "-w", "1"}, args...)
	return exec.Command(corralBin, append(full, testdata("wsgiapp.py")+":application")...)
}

// unixClient is an HTTP client for a server on a Unix socket.
func unixClient(sock string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// fetch GETs url with c and returns the body; any failure is fatal.
func fetch(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %q %v", url, resp.StatusCode, b, err)
	}
	return string(b)
}

// environOf decodes the test app's /env answer.
func environOf(t *testing.T, body string) map[string]any {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("not an environ: %q", body)
	}
	return env
}

// procEnviron is the environment process pid started with.
func procEnviron(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\x00")
}

// listenerFile opens a listener and returns its descriptor as a file to
// pass to a child, and the address.
func listenerFile(t *testing.T, network, addr string) (*os.File, string) {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if ul, ok := l.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	f, err := l.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, l.Addr().String()
}

// holds reports whether process pid has a descriptor on socket inode ino.
func holds(t *testing.T, pid int, ino uint64) bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if link, _ := os.Readlink(filepath.Join(dir, fd.Name())); link == fmt.Sprintf("socket:[%d]", ino) {
			return true
		}
	}
	return false
}

// TestSocketActivation passes sockets as systemd does (LISTEN_FDS,
// LISTEN_PID, LISTEN_FDNAMES; descriptors from 3): with no --bind corral
// serves all of them, with --bind systemd:NAME or fd://N the ones named,
// and the variables never reach the workers.
func TestSocketActivation(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "act.sock")
	tcpFile, tcpAddr := listenerFile(t, "tcp", "127.0.0.1:0")
	unixFile, _ := listenerFile(t, "unix", sock)

	// The shell sets LISTEN_PID to its own pid, which exec keeps: the
	// variables are meant for corral, as systemd makes them.
	activated := func(names string, args ...string) *exec.Cmd {
		cmd := corralCmd(args...)
		cmd.Args = append([]string{"sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=` + names + ` exec "$0" "$@"`}, cmd.Args...)
		cmd.Path, _ = exec.LookPath("sh")
		cmd.ExtraFiles = []*os.File{tcpFile, unixFile} // fd 3 and 4
		return cmd
	}

	t.Run("all", func(t *testing.T) {
		s := launch(t, activated("web:local"), 2, nil)
		if !strings.Contains(s.log.String(), "using the sockets systemd passed count=2 names=web,local") {
			t.Errorf("no log line about the passed sockets:\n%s", s.log)
		}
		env := environOf(t, fetch(t, http.DefaultClient, "http://"+tcpAddr+"/env"))
		if env["REMOTE_ADDR"] != "127.0.0.1" {
			t.Errorf("REMOTE_ADDR over the passed TCP socket = %v", env["REMOTE_ADDR"])
		}
		fetch(t, unixClient(sock), "http://corral/env")
		for _, pid := range s.workerPids() {
			for _, kv := range procEnviron(t, pid) {
				if strings.HasPrefix(kv, "LISTEN_") {
					t.Errorf("worker %d inherited %s", pid, kv)
				}
			}
			// The worker holds no listening socket: only the master serves.
			for _, f := range []*os.File{tcpFile, unixFile} {
				var st syscall.Stat_t
				if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
					t.Fatal(err)
				}
				if holds(t, pid, st.Ino) {
					t.Errorf("worker %d holds a passed socket", pid)
				}
			}
		}
	})

	t.Run("by name", func(t *testing.T) {
		s := launch(t, activated("web:local", "--bind", "systemd:local"), 1, nil)
		fetch(t, unixClient(sock), "http://corral/env")
		if !strings.Contains(s.log.String(), "closed sockets systemd passed that no --bind names sockets=web") {
			t.Errorf("no warning about the unused socket:\n%s", s.log)
		}
		// The unused socket was closed by corral, not served; the test
		// still holds its own copy, so connections queue unanswered.
		c, err := net.Dial("tcp", tcpAddr)
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			c.Write([]byte("GET /env HTTP/1.1\r\nHost: x\r\n\r\n"))
			if n, _ := c.Read(make([]byte, 10)); n > 0 {
				t.Errorf("the socket not named by --bind was served")
			}
			c.Close()
		}
	})

	t.Run("by number", func(t *testing.T) {
		launch(t, activated("", "--bind", "fd://3"), 1, nil)
		fetch(t, http.DefaultClient, "http://"+tcpAddr+"/pid")
	})

	t.Run("wrong name", func(t *testing.T) {
		cmd := activated("web:local", "--bind", "systemd:nope")
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), `systemd passed no socket named "nope" (names passed: web, local)`) {
			t.Errorf("output %q, want the names passed", out)
		}
	})

	t.Run("systemd-socket-activate", func(t *testing.T) {
		ssa, err := exec.LookPath("systemd-socket-activate")
		if err != nil {
			missingTool(t, "systemd-socket-activate is not installed (scripts/test installs systemd)")
		}
		port := freePort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		cmd := corralCmd()
		// It passes the environment only as told.
		cmd.Args = append([]string{ssa, "-l", addr, "--fdname=web", "-E", "CORRAL_ALLOW_ROOT"}, cmd.Args...)
		cmd.Path = ssa
		// It execs corral at the first connection: the request waits in
		// the backlog until corral serves.
		s := &server{t: t, cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
		cmd.Dir, cmd.Stdout, cmd.Stderr = repoRoot, s.log, s.log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { s.err = cmd.Wait(); close(s.done) }()
		t.Cleanup(s.stop)
		eventually(t, 10*time.Second, "systemd-socket-activate listening", func() bool {
			return strings.Contains(s.log.String(), "Listening on")
		})
		env := environOf(t, fetch(t, &http.Client{Timeout: 30 * time.Second}, "http://"+addr+"/env"))
		if env["SERVER_PORT"] != strconv.Itoa(port) {
			t.Errorf("SERVER_PORT = %v, want %d", env["SERVER_PORT"], port)
		}
		if !strings.Contains(s.log.String(), "names=web") {
			t.Errorf("corral did not take the socket named web:\n%s", s.log)
		}
	})
}

// TestReusePort runs two corral instances on one port: both serve, and
// one stopped with SIGTERM under a steady stream of new connections fails
// none of them.
func TestReusePort(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	a := launch(t, corralCmd("--reuse-port", "-b", addr), 1, nil)
	b := launch(t, corralCmd("--reuse-port", "-b", addr), 1, nil)
	owner := map[string]string{}
	for _, p := range a.workerPids() {
		owner[strconv.Itoa(p)] = "a"
	}
	for _, p := range b.workerPids() {
		owner[strconv.Itoa(p)] = "b"
	}

	// A new connection per request: the kernel picks an instance for
	// each connection.
	var (
		mu       sync.Mutex
		seen     = map[string]int{}
		failures []string
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for n := 0; !stop.Load() && n < 20000; n++ {
				resp, err := c.Get("http://" + addr + "/pid")
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				mu.Lock()
				if err != nil {
					failures = append(failures, time.Now().Format("15:04:05.000000")+" "+err.Error())
				} else {
					seen[owner[string(body)]]++
				}
				mu.Unlock()
			}
		}()
	}
	count := func(k string) int { mu.Lock(); defer mu.Unlock(); return seen[k] }
	eventually(t, 20*time.Second, "both instances answering", func() bool { return count("a") > 20 && count("b") > 20 })

	t.Logf("SIGTERM at %s", time.Now().Format("15:04:05.000000"))
	a.signal(syscall.SIGTERM)
	if code := a.wait(30 * time.Second); code != 0 {
		t.Errorf("instance a exited with %d", code)
	}
	before := count("b")
	eventually(t, 20*time.Second, "instance b answering alone", func() bool { return count("b") > before+200 })
	stop.Store(true)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d requests failed while an instance stopped: %q", len(failures), failures)
	}
	if seen[""] > 0 {
		t.Errorf("%d answers came from a worker of neither instance", seen[""])
	}
	t.Logf("answers: a %d, b %d", seen["a"], seen["b"])
}

// TestUnixSocketPermissions: the socket file's mode is 0777 without the
// --umask bits, and several binds (Unix, IPv4, IPv6) serve at once.
func TestUnixSocketPermissions(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.sock")
	closed := filepath.Join(dir, "closed.sock")
	port := freePort(t)
	v4 := "127.0.0.1:" + strconv.Itoa(port)
	v6 := "[::1]:" + strconv.Itoa(port)
	s := launch(t, corralCmd("-b", "unix:"+open, "-b", v4, "-b", v6), 3, nil)
	s2 := launch(t, corralCmd("-b", "unix:"+closed, "--umask", "007"), 1, nil)
	for path, want := range map[string]os.FileMode{open: 0o777, closed: 0o770} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want a socket with %03o", filepath.Base(path), fi.Mode(), want)
		}
	}
	fetch(t, unixClient(open), "http://corral/pid")
	fetch(t, unixClient(closed), "http://corral/pid")
	if env := environOf(t, fetch(t, http.DefaultClient, "http://"+v6+"/env")); env["REMOTE_ADDR"] != "::1" || env["SERVER_NAME"] != "::1" {
		t.Errorf("over IPv6: REMOTE_ADDR %v SERVER_NAME %v", env["REMOTE_ADDR"], env["SERVER_NAME"])
	}
	fetch(t, http.DefaultClient, "http://"+v4+"/pid")

	// Stopping removes the socket files.
	s.stop()
	s2.stop()
	for _, p := range []string{open, closed} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s still exists after corral stopped", filepath.Base(p))
		}
	}
}

// TestProxyProtocolTrust: with --proxy-protocol a PROXY header is believed
// from the trusted peers of --forwarded-allow-ips (127.0.0.1 by default)
// and refused, connection closed, from any other.
func TestProxyProtocolTrust(t *testing.T) {
	s := startApp(t, nil, "-w", "1", "--proxy-protocol")
	v1 := "PROXY TCP4 198.51.100.20 192.0.2.1 40000 443\r\n"
	v2 := "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x15\xc0\x00\x02\x01\x9c\x41\x01\xbb" // 198.51.100.21:40001 -> 192.0.2.1:443
	get := "GET /env HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	ask := func(s *server, from, req string) string {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(req))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	for _, tt := range []struct {
		name, from, header, remote, port string
	}{
		{"trusted v1", "127.0.0.1", v1, "198.51.100.20", "40000"},
		{"trusted v2", "127.0.0.1", v2, "198.51.100.21", "40001"},
		{"trusted, no header", "127.0.0.1", "", "127.0.0.1", ""},
		{"untrusted, no header", "127.0.0.2", "", "127.0.0.2", ""},
	} {
		out := ask(s, tt.from, tt.header+get)
		if statusOf(out) != 200 {
			t.Errorf("%s: %q", tt.name, out)
			continue
		}
		env := environOf(t, bodyOf(t, out))
		if env["REMOTE_ADDR"] != tt.remote || tt.port != "" && env["REMOTE_PORT"] != tt.port {
			t.Errorf("%s: REMOTE_ADDR %v REMOTE_PORT %v, want %s %s", tt.name, env["REMOTE_ADDR"], env["REMOTE_PORT"], tt.remote, tt.port)
		}
	}
	for _, h := range []string{v1, v2} {
		if out := ask(s, "127.0.0.2", h+get); out != "" {
			t.Errorf("PROXY header from an untrusted peer: got %q, want the connection closed unanswered", out)
		}
	}
	// Trusting another address moves the line.
	s2 := startApp(t, nil, "-w", "1", "--proxy-protocol", "--forwarded-allow-ips", "127.0.0.0/8")
	if env := environOf(t, bodyOf(t, ask(s2, "127.0.0.2", v1+get))); env["REMOTE_ADDR"] != "198.51.100.20" {
		t.Errorf("with 127.0.0.0/8 trusted: REMOTE_ADDR %v", env["REMOTE_ADDR"])
	}
}

// uidOf reads the real, effective, saved and filesystem uids of pid.
func uidOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	t.Fatalf("no Uid line for %d", pid)
	return ""
}

// pythonFor returns an interpreter the account can run: the test venv's
// lives under root's home on some machines.
func pythonFor(t *testing.T, uid, gid int) string {
	t.Helper()
	for _, py := range []string{pythonBin, "/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		cmd := exec.Command(path, "-c", "import json, wsgiref.validate")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		if cmd.Run() == nil {
			return path
		}
	}
	missingTool(t, "no Python interpreter the unprivileged user can run (scripts/test installs python3)")
	return ""
}

// TestPrivilegeDrop starts corral as root with --user nobody: it binds
// first, then the master and every worker run as nobody, and the Unix
// socket and admin socket belong to nobody.
func TestPrivilegeDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root; this test runs unprivileged")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody on this system")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	py := pythonFor(t, uid, gid)
	dir := reachableDir(t)
	if err := os.Chown(dir, uid, gid); err != nil { // the account's own socket directory
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "app.sock")
	adminDir := filepath.Join(reachableDir(t), "admin")
	adminSock := filepath.Join(adminDir, "corral.sock")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))

	cmd := exec.Command(corralBin, "--python", py, "-w", "2", "--user", "nobody", "-b", addr, "-b", "unix:"+sock,
		"--umask", "007", "--admin-bind", "unix:"+adminSock, testdata("wsgiapp.py")+":application")
	cmd.Env = withoutAllowRoot()
	s := launch(t, cmd, 2, nil)

	want := fmt.Sprintf("%d %d %d %d", uid, uid, uid, uid)
	if got := uidOf(t, cmd.Process.Pid); got != want {
		t.Errorf("master uids %q, want %q", got, want)
	}
	pids := s.workerPids()
	if len(pids) != 2 {
		t.Fatalf("worker pids %v", pids)
	}
	for _, pid := range pids {
		if got := uidOf(t, pid); got != want {
			t.Errorf("worker %d uids %q, want %q", pid, got, want)
		}
	}
	if !strings.Contains(s.log.String(), fmt.Sprintf("switched from root uid=%d gid=%d", uid, gid)) {
		t.Errorf("no log line for the switch:\n%s", s.log)
	}
	for _, p := range []string{sock, adminSock, adminDir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s belongs to %d:%d, want nobody's %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
	}
	if fi, _ := os.Stat(sock); fi.Mode().Perm() != 0o770 {
		t.Errorf("socket mode %v, want 0770", fi.Mode())
	}
	fetch(t, http.DefaultClient, "http://"+addr+"/pid")
	fetch(t, unixClient(sock), "http://corral/pid")
	if body, code := curlUnix(t, adminSock, "/healthz"); code >= 500 {
		t.Errorf("admin API after the switch: %d %s", code, body)
	}

	// SIGTERM: the master, now nobody, can still remove its sockets.
	s.stop()
	for _, p := range []string{sock, adminSock} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}

// reachableDir is a new temporary directory other users may enter (the
// test's own temporary directories are root's alone).
func reachableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// withoutAllowRoot is the test environment without the harness's
// CORRAL_ALLOW_ROOT.
func withoutAllowRoot() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "CORRAL_ALLOW_ROOT=") })
}

// TestRootRefused: as root, without --user or --allow-root, corral does
// not start the app.
func TestRootRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the refusal concerns root; this test runs unprivileged")
	}
	cmd := corralCmd("-b", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	cmd.Dir, cmd.Env = repoRoot, withoutAllowRoot()
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(string(out), "running as root and would run the app as root: pass --user") ||
		!strings.Contains(string(out), "--allow-root") || strings.Contains(string(out), "worker ready") {
		t.Errorf("output %q, want the refusal naming --user and --allow-root, and no worker", out)
	}
}

// TestUnprivileged runs corral as nobody from the start, as under
// systemd's DynamicUser=: nothing to switch, and --user naming another
// account is refused.
func TestUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("becoming nobody needs root; this test runs unprivileged")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody on this system")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	py := pythonFor(t, uid, gid)
	// The built binary lives in a directory only root may enter.
	dir := reachableDir(t)
	bin := filepath.Join(dir, "corral")
	data, err := os.ReadFile(corralBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	runtime := reachableDir(t) // the account's runtime directory, for the admin socket
	if err := os.Chown(runtime, uid, gid); err != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append(append([]string{"--python", py, "-w", "1"}, args...), testdata("wsgiapp.py")+":application")...)
		cmd.Env = append(withoutAllowRoot(), "XDG_RUNTIME_DIR="+runtime)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		return cmd
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	s := launch(t, asNobody("-b", addr), 1, nil)
	fetch(t, http.DefaultClient, "http://"+addr+"/pid")
	for _, pid := range append(s.workerPids(), s.cmd.Process.Pid) {
		if got := uidOf(t, pid); !strings.HasPrefix(got, nobody.Uid+" ") {
			t.Errorf("process %d uids %q, want nobody's", pid, got)
		}
	}
	s.stop()

	cmd := asNobody("-b", addr, "--user", "root")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "cannot switch to root") {
		t.Errorf("--user root as nobody: %q, want a refusal", out)
	}
}
