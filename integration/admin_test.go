package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStatusAndProbes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	s := startApp(t, nil, "-w", "2", "--admin-bind", "unix:"+sock)
	marker := filepath.Join(t.TempDir(), "go-on")
	done := make(chan struct{})
	go func() { // one request stays running while we look
		defer close(done)
		s.get("/stream?" + marker)
	}()
	var doc struct {
		Ready   bool `json:"ready"`
		Workers []struct {
			Pid     int    `json:"pid"`
			State   string `json:"state"`
			RSS     int64  `json:"rss_bytes"`
			Current *struct {
				Method, Path string
			} `json:"current"`
		} `json:"workers"`
	}
	eventually(t, 10*time.Second, "the running request in /status", func() bool {
		out, code := runCorral(t, "status", "--admin-bind", "unix:"+sock, "--json")
		if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
			return false
		}
		for _, w := range doc.Workers {
			if w.Current != nil && w.Current.Path == "/stream" {
				return true
			}
		}
		return false
	})
	if !doc.Ready || len(doc.Workers) != 2 {
		t.Errorf("status: ready %v, %d workers; want ready with 2", doc.Ready, len(doc.Workers))
	}
	for _, w := range doc.Workers {
		want := "ready"
		if w.Current != nil {
			want = "busy" // running the /stream request
		}
		if w.State != want || w.RSS <= 0 || w.Pid <= 0 {
			t.Errorf("worker %+v: want state %s, a pid and an RSS", w, want)
		}
	}
	writeFile(t, marker, "")
	<-done
	out, code := runCorral(t, "status", "--admin-bind", "unix:"+sock)
	if code != 0 || !strings.Contains(out, "WORKER") || !strings.Contains(out, "ready") {
		t.Errorf("corral status: exit %d:\n%s", code, out)
	}
	for path, want := range map[string]string{"/healthz": "alive", "/readyz": "ready"} {
		out, code := curlUnix(t, sock, path)
		if code != 200 || !strings.Contains(out, want) {
			t.Errorf("%s = %d %s", path, code, out)
		}
	}
}

// TestStatusNotReadyWhileDraining: after SIGTERM, while a request still
// runs, the admin API answers but reports not ready: /readyz 503 and
// `corral status` exit 3, so probes take the instance out of rotation.
func TestStatusNotReadyWhileDraining(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	s := startApp(t, nil, "-w", "1", "--admin-bind", "unix:"+sock, "--graceful-timeout", "20")
	marker := filepath.Join(t.TempDir(), "go-on")
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.get("/stream?" + marker)
	}()
	eventually(t, 10*time.Second, "the request running", func() bool {
		out, _ := runCorral(t, "status", "--admin-bind", "unix:"+sock)
		return strings.Contains(out, "/stream")
	})
	s.signal(syscall.SIGTERM)
	eventually(t, 10*time.Second, "corral status exit 3 while draining", func() bool {
		_, code := runCorral(t, "status", "--admin-bind", "unix:"+sock)
		return code == 3
	})
	if out, code := curlUnix(t, sock, "/readyz"); code != 503 {
		t.Errorf("/readyz while draining = %d %s, want 503", code, out)
	}
	writeFile(t, marker, "")
	<-done
}
