// Package admin is corral's admin API: a small HTTP API for the operator
// and the machine around it (status of the pool and the guard, liveness
// and readiness probes, bans), served by a Server on a Unix socket in the
// runtime directory by default and never on the public listener. It also
// has the client side used by `corral status` and `corral bans`.
package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"corral/internal/guard"
)

// Source is what the admin API reports on. Its methods are called from
// the goroutines serving requests, concurrently.
type Source interface {
	// Status is the document served at /status.
	Status() Status
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

// Bans is the ban table the admin API manages. Its methods are called
// from the goroutines serving requests, concurrently.
type Bans interface {
	// List returns the bans in force.
	List() []guard.BanInfo
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
