// Package integration runs the real corral binary with real Python apps.
// TestMain builds the binary once; each test starts its own server on a
// free 127.0.0.1 port and stops it (and checks its workers are gone) in
// cleanup.
//
// Tests are independent of each other, but most run one at a time: many
// assert what a server does within a deadline, and a loaded machine
// makes deadlines flaky. The longest ones that mostly wait (the request
// corpus, h2spec, lingering closes, the wheel build) call t.Parallel and
// run together at the end; scripts/test gives them -parallel 4.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	corralBin string // the built binary
	pythonBin string // interpreter with Flask and Django
	repoRoot  string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	dir, err := os.MkdirTemp("", "corral-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	corralBin = filepath.Join(dir, "corral")
	build := exec.Command("go", "build", "-o", corralBin, "./cmd/corral")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build corral: %v\n%s", err, out)
		return 1
	}
	// corral refuses to run an app as root without --allow-root; tests run
	// as root in CI. The privilege tests set --user themselves.
	if os.Geteuid() == 0 {
		os.Setenv("CORRAL_ALLOW_ROOT", "true")
	}
	// The guard keeps its bans in the state directory: a test run must not
	// write to the machine's (/var/lib/corral as root). Tests that look at
	// bans pass their own --state-dir.
	os.Setenv("CORRAL_STATE_DIR", filepath.Join(dir, "state"))
	// The test settings are read here and kept from the corrals the tests
	// start, which would warn about unknown CORRAL_ variables.
	pythonBin = os.Getenv("CORRAL_TEST_PYTHON")
	toolsRequired = os.Getenv("CORRAL_TEST_TOOLS") == "required"
	os.Unsetenv("CORRAL_TEST_PYTHON")
	os.Unsetenv("CORRAL_TEST_TOOLS")
	if pythonBin == "" {
		pythonBin = filepath.Join(repoRoot, ".venv", "bin", "python")
	}
	if _, err := os.Stat(pythonBin); err != nil {
		fmt.Fprintf(os.Stderr, "no Python for the integration tests at %s: run the README's test command, which creates it (or set CORRAL_TEST_PYTHON)\n", pythonBin)
		return 1
	}
	return m.Run()
}

// server is one running corral.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string // host:port
	url  string
	log  *syncBuffer
	done chan struct{}
	err  error
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

// freePort returns a port that was free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testdata returns the path of a file under integration/testdata.
func testdata(name string) string { return filepath.Join(repoRoot, "integration", "testdata", name) }

// start runs corral with args plus a free 127.0.0.1 bind and --python, and
// waits until it serves. Extra environment entries may be given in env.
func start(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	port := freePort(t)
	s := &server{t: t, addr: fmt.Sprintf("127.0.0.1:%d", port), log: &syncBuffer{}, done: make(chan struct{})}
	s.url = "http://" + s.addr
	full := append([]string{"-b", s.addr, "--python", pythonBin}, args...)
	s.cmd = exec.Command(corralBin, full...)
	s.cmd.Dir = repoRoot
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if strings.Contains(s.log.String(), "listening") {
			c, err := net.DialTimeout("tcp", s.addr, time.Second)
			if err == nil {
				c.Close()
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("corral exited during start-up (%v):\n%s", s.err, s.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("corral did not start within 30s:\n%s", s.log)
		}
	}
}

var workerPidRE = regexp.MustCompile(`worker ready worker=\d+ pid=(\d+)`)

// workerPids lists the pids of every worker the log says became ready.
func (s *server) workerPids() []int {
	var pids []int
	for _, m := range workerPidRE.FindAllStringSubmatch(s.log.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		pids = append(pids, n)
	}
	return pids
}

// signal sends sig to the corral master.
func (s *server) signal(sig syscall.Signal) { _ = s.cmd.Process.Signal(sig) }

// wait waits for the master to exit and returns its exit code.
func (s *server) wait(timeout time.Duration) int {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(timeout):
		s.t.Fatalf("corral did not exit within %v:\n%s", timeout, s.log)
	}
	if s.err == nil {
		return 0
	}
	if ee, ok := s.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// stop ends the server (SIGTERM, then SIGKILL of the group) and checks
// that no worker outlived it.
func (s *server) stop() {
	select {
	case <-s.done:
	default:
		s.signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			s.t.Errorf("corral ignored SIGTERM for 15s; killing it")
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	for _, pid := range s.workerPids() {
		if waitGone(pid, 5*time.Second) != nil {
			s.t.Errorf("worker %d still running after corral exited", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if s.t.Failed() {
		s.t.Logf("corral output:\n%s", s.log)
	}
}

// waitGone waits until process pid no longer exists (zombies count as gone).
func waitGone(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil
		}
		if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("process %d still alive", pid)
}

// get fetches path and returns status and body.
func (s *server) get(path string) (int, string) {
	s.t.Helper()
	return s.do(http.MethodGet, path, nil, nil)
}

func (s *server) do(method, path string, body io.Reader, hdr map[string]string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

// raw sends raw bytes on a new connection and returns everything the
// server answers until it closes the connection or goes quiet.
func (s *server) raw(req []byte, quiet time.Duration) string {
	s.t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		s.t.Fatal(err)
	}
	var out bytes.Buffer
	buf := make([]byte, 64<<10)
	for {
		_ = c.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String()
		}
	}
}

// statusOf returns the status code of the first response in raw output, or 0.
func statusOf(raw string) int {
	line, _, _ := strings.Cut(raw, "\r\n")
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/") {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// eventually retries cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runCorral runs corral to completion in the repository root and returns
// its combined output and exit code.
func runCorral(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runCorralIn(t, repoRoot, args...)
}

func runCorralIn(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(corralBin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("corral %v did not finish within 60s:\n%s", args, out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// curlUnix GETs path from an HTTP server on a Unix socket.
func curlUnix(t *testing.T, sock, path string) (string, int) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://admin" + path)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, sock, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// toolsRequired is CORRAL_TEST_TOOLS=required: see missingTool.
var toolsRequired bool

// missingTool skips a test whose outside tool is not installed, or fails it
// when the run requires every tool (scripts/test sets
// CORRAL_TEST_TOOLS=required, so a missing install step cannot pass as a
// skip).
func missingTool(t *testing.T, format string, args ...any) {
	t.Helper()
	if toolsRequired {
		t.Fatalf(format+" (CORRAL_TEST_TOOLS=required)", args...)
	}
	t.Skipf(format, args...)
}
