// Package admin is corral's admin listener: a small HTTP API for the
// operator and the machine around it (status of the pool, liveness and
// readiness probes), served on a Unix socket in the runtime directory by
// default and never on the public listener. It also has the client side
// used by `corral status`.
package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"corral/internal/listen"
)

// Source is what the admin API reports on.
type Source interface {
	// Status is the document served at /status; it must marshal to JSON.
	Status() any
	// Ready reports whether the server should receive traffic, and why not.
	Ready() (bool, string)
}

// Handler serves:
//
//	GET /status   the Source's status as JSON
//	GET /healthz  200 while the master runs (liveness)
//	GET /readyz   200 when Ready, else 503 with the reason (readiness)
//
// More routes can be added to the returned mux.
func Handler(src Source) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, src.Status())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ok, why := src.Ready(); !ok {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": why})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// RuntimeDir is where corral keeps its admin sockets: systemd's
// RuntimeDirectory ($RUNTIME_DIRECTORY), else $XDG_RUNTIME_DIR/corral,
// else /run/corral for root, else a per-user directory under the system
// temporary directory. getenv is os.Getenv in production.
func RuntimeDir(getenv func(string) string) string {
	if d := getenv("RUNTIME_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0]
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "corral")
	}
	if os.Geteuid() == 0 {
		return "/run/corral"
	}
	return filepath.Join(os.TempDir(), "corral-"+strconv.Itoa(os.Geteuid()))
}

// DefaultSocket is the admin socket of the process pid in dir.
func DefaultSocket(dir string, pid int) string {
	return filepath.Join(dir, strconv.Itoa(pid)+".sock")
}

// Listen opens the admin listener: "unix:PATH", a bare path, or HOST:PORT.
// A Unix socket's directory is created with mode 0700 and the socket is
// made 0600: the admin API is for the user corral runs as.
func Listen(addr string) (net.Listener, error) {
	network, address := split(addr)
	if network == "unix" {
		if err := os.MkdirAll(filepath.Dir(address), 0o700); err != nil {
			return nil, fmt.Errorf("admin listener: %w", err)
		}
		if err := listen.RemoveStale(context.Background(), address); err != nil {
			return nil, fmt.Errorf("admin listener: %w", err)
		}
	}
	l, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	if network == "unix" {
		if err := os.Chmod(address, 0o600); err != nil {
			l.Close()
			return nil, fmt.Errorf("admin listener: %w", err)
		}
	}
	return l, nil
}

func split(addr string) (network, address string) {
	if a, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix", a
	}
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, ".") {
		return "unix", addr
	}
	return "tcp", addr
}

// Bans is the ban table the admin API manages.
type Bans interface {
	// List returns the bans in force; it must marshal to JSON.
	List() any
	// Ban bans addr for d (0 = until removed) and returns the client key
	// it banned (an address or an IPv6 /64).
	Ban(addr string, d time.Duration, reason string) (string, error)
	// Unban lifts the ban of addr; it reports whether there was one.
	Unban(addr string) (bool, error)
}

// BanRequest is the body of POST /bans.
type BanRequest struct {
	Addr    string  `json:"addr"`
	Seconds float64 `json:"seconds"` // 0 = until removed
	Reason  string  `json:"reason"`
}

// HandleBans adds the ban routes to mux:
//
//	GET    /bans            the bans in force
//	POST   /bans            ban a client: BanRequest as JSON
//	DELETE /bans?addr=ADDR  lift a ban
func HandleBans(mux *http.ServeMux, b Bans) {
	mux.HandleFunc("GET /bans", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"bans": b.List()})
	})
	mux.HandleFunc("POST /bans", func(w http.ResponseWriter, r *http.Request) {
		var req BanRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want a JSON object: " + err.Error()})
			return
		}
		if req.Seconds < 0 || req.Seconds > 100*365*24*3600 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "seconds must be between 0 (permanent) and 100 years"})
			return
		}
		key, err := b.Ban(req.Addr, time.Duration(req.Seconds*float64(time.Second)), req.Reason)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"banned": key})
	})
	mux.HandleFunc("DELETE /bans", func(w http.ResponseWriter, r *http.Request) {
		ok, err := b.Unban(r.URL.Query().Get("addr"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]any{"removed": false, "error": "no such ban"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"removed": true})
	})
}

// Get fetches path from the admin API at addr and returns the status code
// and body.
func Get(ctx context.Context, addr, path string) (int, []byte, error) {
	return Do(ctx, addr, http.MethodGet, path, nil)
}

// Do sends a request to the admin API at addr, with body as JSON if not
// nil, and returns the status code and body.
func Do(ctx context.Context, addr, method, path string, body []byte) (int, []byte, error) {
	network, address := split(addr)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}}
	defer tr.CloseIdleConnections()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://corral"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("admin API at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b, err
}

// Sockets lists the admin sockets in dir that answer, removing those left
// behind by processes that are gone.
func Sockets(dir string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	var live []string
	for _, m := range matches {
		c, err := net.DialTimeout("unix", m, time.Second)
		if err != nil {
			if pid, perr := strconv.Atoi(strings.TrimSuffix(filepath.Base(m), ".sock")); perr == nil && !processExists(pid) {
				os.Remove(m)
			}
			continue
		}
		c.Close()
		live = append(live, m)
	}
	return live
}

func processExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}
