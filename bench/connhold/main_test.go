package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHolderModes holds connections against a server whose /sleep route
// never answers while the test runs: idle connections get their one answer
// each, queued ones none, and both stay open from several source addresses.
func TestHolderModes(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sleep" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		_, _ = w.Write([]byte("Hello, World!"))
	}))
	defer srv.Close()
	defer close(release)
	addr := strings.TrimPrefix(srv.URL, "http://")

	for _, tc := range []struct {
		mode, path string
		answered   int64
	}{
		{"idle", "/", 20},
		{"queued", "/sleep", 0},
	} {
		h := &holder{addr: addr, mode: tc.mode, timeout: 5 * time.Second,
			request: []byte("GET " + tc.path + " HTTP/1.1\r\nHost: x\r\n\r\n")}
		h.open(20, 3, 4)
		line := h.line("ready", time.Second)
		if h.answered.Load() != tc.answered || !strings.Contains(line, " open=20 ") ||
			!strings.Contains(line, " dial_errors=0 io_errors=0 closed=0 ") {
			t.Errorf("%s: %s", tc.mode, line)
		}
		if tc.mode == "idle" && !strings.Contains(line, " statuses=200:20 ") {
			t.Errorf("idle: want 20 answers with status 200: %s", line)
		}
		h.closeAll()
	}
}
