package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ppid reads a process's parent pid from /proc.
func ppid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatalf("no PPid for %d", pid)
	return 0
}

func zygotePid(t *testing.T, s *server) int {
	t.Helper()
	var pid int
	eventually(t, 10*time.Second, "the zygote in the log", func() bool {
		for _, line := range strings.Split(s.log.String(), "\n") {
			if strings.Contains(line, "zygote ready") {
				if i := strings.LastIndex(line, "pid="); i >= 0 {
					pid, _ = strconv.Atoi(strings.Fields(line[i+4:])[0])
				}
			}
		}
		return pid > 0
	})
	return pid
}

func TestPreloadForksFromOneImport(t *testing.T) {
	imports := filepath.Join(t.TempDir(), "imports")
	s, _ := startFaults(t, []string{"IMPORTS_FILE=" + imports}, "-w", "3", "--preload")
	z := zygotePid(t, s)
	eventually(t, 10*time.Second, "three workers", func() bool { return len(s.workerPids()) == 3 })
	for _, pid := range s.workerPids() {
		if got := ppid(t, pid); got != z {
			t.Errorf("worker %d has parent %d, want the zygote %d", pid, got, z)
		}
	}
	b, _ := os.ReadFile(imports)
	if n := strings.Count(string(b), "\n"); n != 1 {
		t.Errorf("the app was imported %d times, want once (in the zygote):\n%s", n, b)
	}

	// A crash is replaced by a new fork, not a new import.
	if code, _ := s.get("/exit"); code != 502 {
		t.Errorf("/exit = %d", code)
	}
	eventually(t, 10*time.Second, "a replacement", func() bool { return len(s.workerPids()) == 4 })
	if code, _ := s.get("/pid"); code != 200 {
		t.Errorf("after the crash: %d", code)
	}
	b, _ = os.ReadFile(imports)
	if n := strings.Count(string(b), "\n"); n != 1 {
		t.Errorf("after a crash the app was imported %d times, want still once", n)
	}
	if !strings.Contains(s.log.String(), "status=\"exit 1\"") {
		t.Errorf("the forked worker's exit status is not in the log")
	}
}

func TestPreloadTimeoutAndReload(t *testing.T) {
	s, dir := startFaults(t, nil, "-w", "2", "--preload", "--timeout", "1")
	z1 := zygotePid(t, s)
	if code, _ := s.get("/loop"); code != 504 {
		t.Errorf("/loop = %d, want 504", code)
	}
	l := startLoad(t, s, 4, "/pid")
	time.Sleep(200 * time.Millisecond)
	rewrite(t, dir, `"v2"`)
	s.signal(syscall.SIGHUP)
	eventually(t, 30*time.Second, "the reload", func() bool { return strings.Contains(s.log.String(), "master: reloaded") })
	time.Sleep(200 * time.Millisecond)
	counts, _ := l.end()
	wantOnly200(t, counts)
	if _, v := s.get("/version"); v != "v2" {
		t.Errorf("after the reload /version = %q, want v2", v)
	}
	eventually(t, 20*time.Second, "the old zygote to go", func() bool {
		return strings.Contains(s.log.String(), "old zygote stopped")
	})
	if err := waitGone(z1, 5*time.Second); err != nil {
		t.Errorf("old zygote: %v", err)
	}

	rewrite(t, dir, `"v3" +`)
	s.signal(syscall.SIGHUP)
	eventually(t, 30*time.Second, "the failed reload", func() bool { return strings.Contains(s.log.String(), "reload failed") })
	if _, v := s.get("/version"); v != "v2" {
		t.Errorf("after a broken reload /version = %q, want the old v2", v)
	}
}

func TestPreloadNoOrphansAfterSIGKILL(t *testing.T) {
	s, _ := startFaults(t, nil, "-w", "3", "--preload")
	z := zygotePid(t, s)
	eventually(t, 10*time.Second, "three workers", func() bool { return len(s.workerPids()) == 3 })
	pids := append(s.workerPids(), z)
	s.signal(syscall.SIGKILL)
	s.wait(10 * time.Second)
	for _, pid := range pids {
		if err := waitGone(pid, 10*time.Second); err != nil {
			t.Errorf("process %d outlived the master: %v", pid, err)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestPreloadSpareTakesOver: with --preload each slot keeps a forked spare,
// and a crash hands the slot to it instead of forking on the request path.
func TestPreloadSpareTakesOver(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	s, _ := startFaults(t, nil, "-w", "1", "--preload", "--admin-bind", "unix:"+sock)
	spares := func() []int {
		out, code := runCorral(t, "status", "--admin-bind", "unix:"+sock, "--json")
		var doc struct {
			Workers []struct {
				Pid   int    `json:"pid"`
				State string `json:"state"`
			} `json:"workers"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
			return nil
		}
		var pids []int
		for _, w := range doc.Workers {
			if w.State == "spare" {
				pids = append(pids, w.Pid)
			}
		}
		return pids
	}
	var spare int
	eventually(t, 10*time.Second, "a spare in the status", func() bool {
		if ps := spares(); len(ps) == 1 {
			spare = ps[0]
			return true
		}
		return false
	})
	if code, _ := s.get("/exit"); code != 502 {
		t.Errorf("/exit = %d, want 502", code)
	}
	code, body := s.get("/pid")
	if code != 200 || body != strconv.Itoa(spare) {
		t.Errorf("after the crash /pid = %d %q, want the former spare %d", code, body, spare)
	}
	eventually(t, 10*time.Second, "a new spare", func() bool {
		ps := spares()
		return len(ps) == 1 && ps[0] != spare
	})
}
