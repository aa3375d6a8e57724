package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startFaults serves testdata/faults.py (copied into a temporary
// directory, so reload tests can rewrite it).
func startFaults(t *testing.T, env []string, args ...string) (*server, string) {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(testdata("faults.py"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "faults.py"), string(src))
	return start(t, env, append(args, "--chdir", dir, "faults:app")...), dir
}

// load sends GET path from n goroutines until stop is closed and counts
// answers by status (0 = transport error).
type load struct {
	mu     sync.Mutex
	counts map[int]int
	pids   map[string]bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startLoad(t *testing.T, s *server, n int, path string) *load {
	l := &load{counts: map[int]int{}, pids: map[string]bool{}, stop: make(chan struct{})}
	client := &http.Client{Timeout: 30 * time.Second}
	for i := 0; i < n; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				code, body := 0, ""
				resp, err := client.Get(s.url + path)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					code, body = resp.StatusCode, string(b)
				}
				l.mu.Lock()
				l.counts[code]++
				if code == 200 {
					l.pids[body] = true
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// end stops the load and returns the counts.
func (l *load) end() (map[int]int, int) {
	close(l.stop)
	l.wg.Wait()
	return l.counts, len(l.pids)
}

func wantOnly200(t *testing.T, counts map[int]int) {
	t.Helper()
	for code, n := range counts {
		if code != 200 {
			t.Errorf("%d answers with status %d (0 = transport error) under load; want only 200: %v", n, code, counts)
		}
	}
	if counts[200] == 0 {
		t.Errorf("no request succeeded: %v", counts)
	}
}

func TestCrashesCostOnlyTheirRequest(t *testing.T) {
	s, _ := startFaults(t, nil, "-w", "2")
	l := startLoad(t, s, 4, "/pid")
	for _, path := range []string{"/exit", "/segv", "/exit", "/segv"} {
		if code, _ := s.get(path); code != 502 {
			t.Errorf("%s = %d, want 502", path, code)
		}
	}
	time.Sleep(300 * time.Millisecond)
	counts, _ := l.end()
	wantOnly200(t, counts)
	if code, _ := s.get("/pid"); code != 200 {
		t.Errorf("after the crashes: %d", code)
	}
	if n := strings.Count(s.log.String(), "worker died; replacing it"); n < 4 {
		t.Errorf("%d deaths logged, want 4", n)
	}
	if !strings.Contains(s.log.String(), "killed by SIGSEGV") {
		t.Errorf("the segfault is not named in the log")
	}
}

func TestTimeoutAnswers504AndLogsTheStack(t *testing.T) {
	for _, path := range []string{"/loop", "/blocked"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			s, _ := startFaults(t, nil, "-w", "2", "--timeout", "1")
			done := make(chan int, 1)
			go func() {
				code, _ := s.get(path)
				done <- code
			}()
			// The other worker serves while one hangs.
			time.Sleep(200 * time.Millisecond)
			if code, _ := s.get("/pid"); code != 200 {
				t.Errorf("a request beside the hung one: %d", code)
			}
			if code := <-done; code != 504 {
				t.Fatalf("%s = %d, want 504", path, code)
			}
			eventually(t, 10*time.Second, "the stack dump and the replacement", func() bool {
				log := s.log.String()
				return strings.Contains(log, "request timed out") && strings.Contains(log, "faults.py") &&
					strings.Count(log, "worker ready") >= 3
			})
			if path == "/loop" && !strings.Contains(s.log.String(), "spin_forever") {
				t.Errorf("the stack dump does not show the looping function:\n%s", s.log)
			}
		})
	}
}

func TestRequestsBehindAKilledOneAreRedispatched(t *testing.T) {
	calls := filepath.Join(t.TempDir(), "calls")
	s, _ := startFaults(t, []string{"CALLS_FILE=" + calls}, "-w", "1", "--timeout", "1")
	// Teach the dispatcher that /pid is fast, so it pipelines behind /loop.
	for i := 0; i < 20; i++ {
		s.get("/pid")
	}
	// /loop first, the others right behind it: pipelined to the worker
	// before /loop is overdue, or queued in the master after. Either way
	// they must not fail with the worker that is killed.
	codes := make(chan int, 6)
	go func() { c, _ := s.get("/loop"); codes <- c }()
	time.Sleep(time.Millisecond)
	for i := 0; i < 5; i++ {
		go func() { c, _ := s.get("/pid"); codes <- c }()
	}
	got := map[int]int{}
	for i := 0; i < 6; i++ {
		got[<-codes]++
	}
	if got[200] != 5 || got[504] != 1 || len(got) != 2 {
		t.Errorf("answers %v; want five 200 and one 504", got)
	}
}

func TestRecyclingByRequestsHasNoFailures(t *testing.T) {
	s, _ := startFaults(t, nil, "-w", "2", "--max-requests", "30", "--max-requests-jitter", "10")
	l := startLoad(t, s, 4, "/pid")
	eventually(t, 30*time.Second, "several recycles", func() bool {
		return strings.Count(s.log.String(), "reason=max-requests") >= 4
	})
	counts, pids := l.end()
	wantOnly200(t, counts)
	if pids < 4 {
		t.Errorf("answers came from %d workers; recycling should have used at least 4", pids)
	}
}

func TestRecyclingByLifetimeHasNoFailures(t *testing.T) {
	s, _ := startFaults(t, nil, "-w", "2", "--max-lifetime", "1")
	l := startLoad(t, s, 4, "/pid")
	eventually(t, 30*time.Second, "lifetime recycles", func() bool {
		return strings.Count(s.log.String(), "reason=max-lifetime") >= 3
	})
	counts, _ := l.end()
	wantOnly200(t, counts)
}

func TestRecyclingByMemoryHasNoFailures(t *testing.T) {
	s, _ := startFaults(t, nil, "-w", "2", "--max-rss", "120")
	l := startLoad(t, s, 3, "/pid")
	for i := 0; i < 40 && strings.Count(s.log.String(), "reason=max-rss") == 0; i++ {
		if code, _ := s.get("/grow?20"); code != 200 {
			t.Errorf("/grow = %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	eventually(t, 20*time.Second, "a worker recycled for its memory", func() bool {
		return strings.Contains(s.log.String(), "reason=max-rss")
	})
	counts, _ := l.end()
	wantOnly200(t, counts)
}

// rewrite sets VERSION in the served copy of faults.py.
func rewrite(t *testing.T, dir, version string) {
	t.Helper()
	path := filepath.Join(dir, "faults.py")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "VERSION = ") {
			// The comment changes the file's size: Python trusts a cached
			// .pyc whose source has the same size and mtime (in seconds),
			// and these edits come within a second of each other.
			lines[i] = "VERSION = " + version + " # " + strings.Repeat("x", len(lines[i]))
		}
	}
	writeFile(t, path, strings.Join(lines, "\n"))
}

func TestReloadUnderLoad(t *testing.T) {
	s, dir := startFaults(t, nil, "-w", "2")
	l := startLoad(t, s, 4, "/pid")
	time.Sleep(300 * time.Millisecond)
	rewrite(t, dir, `"v2"`)
	s.signal(syscall.SIGHUP)
	eventually(t, 30*time.Second, "the reload to finish", func() bool {
		return strings.Contains(s.log.String(), "master: reloaded")
	})
	time.Sleep(200 * time.Millisecond)
	counts, _ := l.end()
	wantOnly200(t, counts)
	for i := 0; i < 10; i++ {
		if _, v := s.get("/version"); v != "v2" {
			t.Fatalf("after the reload /version = %q, want v2", v)
		}
	}

	// A reload whose code does not import keeps the old code serving.
	rewrite(t, dir, `"v3" +`) // a syntax error
	s.signal(syscall.SIGHUP)
	eventually(t, 30*time.Second, "the failed reload", func() bool {
		return strings.Contains(s.log.String(), "reload failed")
	})
	if !strings.Contains(s.log.String(), "SyntaxError") {
		t.Errorf("the failed reload's traceback is not in the log")
	}
	for i := 0; i < 10; i++ {
		if code, v := s.get("/version"); code != 200 || v != "v2" {
			t.Fatalf("after a broken reload /version = %d %q, want the old v2", code, v)
		}
	}
}

func TestReloadOnFileChange(t *testing.T) {
	s, dir := startFaults(t, nil, "-w", "1", "--reload")
	if _, v := s.get("/version"); v != "v1" {
		t.Fatalf("/version = %q", v)
	}
	eventually(t, 10*time.Second, "the watcher", func() bool {
		return strings.Contains(s.log.String(), "watching the app's files")
	})
	rewrite(t, dir, `"v2"`)
	eventually(t, 20*time.Second, "the edited code to answer", func() bool {
		_, v := s.get("/version")
		return v == "v2"
	})
}

func TestAddAndRemoveWorkers(t *testing.T) {
	s, _ := startFaults(t, nil, "-w", "2")
	s.signal(syscall.SIGTTIN)
	eventually(t, 10*time.Second, "a third worker", func() bool {
		return strings.Count(s.log.String(), "worker ready") >= 3
	})
	// One at a time: a second SIGTTOU sent while the first is pending
	// merges with it (standard signals do not queue).
	for want := 1; want <= 2; want++ {
		s.signal(syscall.SIGTTOU)
		eventually(t, 10*time.Second, fmt.Sprintf("%d workers removed", want), func() bool {
			return strings.Count(s.log.String(), "reason=removed") >= want
		})
	}
	s.signal(syscall.SIGTTOU) // the last one stays
	eventually(t, 5*time.Second, "the refusal", func() bool {
		return strings.Contains(s.log.String(), "not removing the last worker")
	})
	if code, _ := s.get("/pid"); code != 200 {
		t.Errorf("with one worker left: %d", code)
	}
}

func TestSlowRequestLogsTheStack(t *testing.T) {
	s, _ := startFaults(t, nil, "-w", "1", "--slow-request", "0.3")
	if code, _ := s.get("/sleep?1"); code != 200 {
		t.Fatalf("slow request = %d, want 200 (a soft threshold)", code)
	}
	eventually(t, 5*time.Second, "the slow-request line and stack", func() bool {
		log := s.log.String()
		return strings.Contains(log, "slow request") && strings.Contains(log, "path=/sleep") && strings.Contains(log, "faults.py")
	})
}

func TestWarmup(t *testing.T) {
	calls := filepath.Join(t.TempDir(), "calls")
	s, _ := startFaults(t, []string{"CALLS_FILE=" + calls}, "-w", "2", "--warmup-path", "/sleep?0")
	b, _ := os.ReadFile(calls)
	if n := strings.Count(string(b), "/sleep"); n != 2 {
		t.Errorf("warm-up requests seen by the app: %d, want one per worker:\n%s", n, b)
	}
	if code, _ := s.get("/pid"); code != 200 {
		t.Errorf("after warm-up: %d", code)
	}
}

func TestHeartbeatReplacesAWedgedWorker(t *testing.T) {
	s, _ := startFaults(t, nil, "-w", "1")
	eventually(t, 10*time.Second, "a worker", func() bool { return len(s.workerPids()) == 1 })
	pid := s.workerPids()[0]
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil { // idle, and silent
		t.Fatal(err)
	}
	eventually(t, 40*time.Second, "the heartbeat to give up on it", func() bool {
		return strings.Contains(s.log.String(), "stopped answering heartbeats")
	})
	eventually(t, 20*time.Second, "a new worker answering", func() bool {
		code, body := s.get("/pid")
		return code == 200 && body != fmt.Sprint(pid)
	})
}

// TestSystemdNotify checks the sd_notify conversation on a socket standing
// in for systemd's.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var msgs []string
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, string(buf[:n]))
			mu.Unlock()
		}
	}()
	seen := func(sub string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				if strings.Contains(m, sub) {
					return true
				}
			}
			return false
		}
	}
	s, _ := startFaults(t, []string{"NOTIFY_SOCKET=" + sock}, "-w", "1")
	eventually(t, 10*time.Second, "READY=1", seen("READY=1"))
	eventually(t, 10*time.Second, "STATUS=", seen("STATUS=1 workers ready"))
	s.signal(syscall.SIGHUP)
	eventually(t, 20*time.Second, "RELOADING=1", seen("RELOADING=1"))
	eventually(t, 20*time.Second, "the reload's end", func() bool { return strings.Contains(s.log.String(), "master: reloaded") })
	s.signal(syscall.SIGTERM)
	eventually(t, 10*time.Second, "STOPPING=1", seen("STOPPING=1"))
	s.wait(20 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	ready := 0
	for _, m := range msgs {
		if strings.Contains(m, "READY=1") {
			ready++
		}
	}
	if ready < 2 {
		t.Errorf("READY=1 sent %d times, want at start and after the reload: %q", ready, msgs)
	}
}

func TestStuckWorkerIsReplacedAndFinishes(t *testing.T) {
	for _, preload := range []bool{false, true} {
		t.Run(fmt.Sprintf("preload=%v", preload), func(t *testing.T) {
			args := []string{"-w", "1", "--stuck-after", "0.2", "--timeout", "10"}
			if preload {
				args = append(args, "--preload")
			}
			s, _ := startFaults(t, nil, args...)
			_, first := s.get("/pid")
			slow := make(chan string, 1)
			go func() {
				code, body := s.get("/sleep?2")
				slow <- fmt.Sprint(code, " ", body)
			}()
			// With one worker busy for 2 s, other requests are served by the
			// worker that took its slot, long before the sleep ends.
			eventually(t, 1500*time.Millisecond, "a request served beside the stuck one", func() bool {
				code, body := s.get("/pid")
				return code == 200 && body != first
			})
			select {
			case r := <-slow:
				t.Fatalf("the stuck request ended before the others were served: %s", r)
			default:
			}
			if r := <-slow; !strings.HasPrefix(r, "200 ") {
				t.Errorf("the stuck request itself: %s, want it to finish with 200", r)
			}
			if !strings.Contains(s.log.String(), "reason=stuck") {
				t.Errorf("no stuck replacement in the log")
			}
			eventually(t, 10*time.Second, "the stuck worker to exit", func() bool {
				return waitGone(mustAtoi(first), 50*time.Millisecond) == nil
			})
		})
	}
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}
