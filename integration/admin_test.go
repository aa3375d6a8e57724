package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
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
