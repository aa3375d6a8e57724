package admin

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// authorize protects an admin API on TCP, where the socket's file mode
// cannot: a caller on a loopback address may do everything, as on the
// Unix socket; a caller from elsewhere must send "Authorization: Bearer
// TOKEN" with the --admin-token, and without a token is refused (403).
// The liveness and readiness probes, and the status page's HTML (which
// holds no data: its script fetches /live, which is protected), stay open
// to everyone, so an orchestrator's probes need no secret.
func authorize(next http.Handler, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if open(r) || loopback(r.RemoteAddr) {
			next.ServeHTTP(w, r)
			return
		}
		if token == "" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "the admin API answers other hosts only with --admin-token"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="corral admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong admin token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// open reports whether r asks for a path that anyone may reach.
func open(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch r.URL.Path {
	case "/healthz", "/readyz", "/":
		return true
	}
	return false
}

func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
