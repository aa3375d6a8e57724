package admin

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestPageCSP: the page's only script and style are the inline ones, and
// the policy allows exactly those by hash, nothing from elsewhere.
func TestPageCSP(t *testing.T) {
	w := httptest.NewRecorder()
	Page().ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	body, csp := w.Body.String(), w.Header().Get("Content-Security-Policy")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	for _, tag := range []string{"script", "style"} {
		re := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`)
		m := re.FindAllStringSubmatch(body, -1)
		if len(m) != 1 {
			t.Fatalf("%d <%s> elements, want 1", len(m), tag)
		}
		sum := sha256.Sum256([]byte(m[0][1]))
		hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(csp, tag+"-src "+hash+";") {
			t.Errorf("the policy %q does not allow the inline %s (%s)", csp, tag, hash)
		}
	}
	for _, want := range []string{"default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("the policy %q lacks %s", csp, want)
		}
	}
	// Nothing loaded from elsewhere (the SVG namespace is a name, not a
	// load), nothing the policy would have to relax for.
	for _, bad := range []string{" src=", " href=", "url(", "@import", `fetch("http`, "unsafe-inline", "unsafe-eval", "innerHTML"} {
		if strings.Contains(body, bad) || strings.Contains(csp, bad) {
			t.Errorf("the page or its policy contains %q", bad)
		}
	}
}

func TestLive(t *testing.T) {
	h := Live(&fakeSource{ready: true}, newFakeBans(), func() any { return map[string]int{"rate": 5} })
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/live", nil))
	var doc struct {
		Status Status           `json:"status"`
		Bans   []map[string]any `json:"bans"`
		Live   map[string]int   `json:"live"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	if doc.Status.Pid != 42 || doc.Bans == nil || doc.Live["rate"] != 5 {
		t.Errorf("/live = %s", w.Body)
	}
}

func TestAuthorize(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, tc := range []struct {
		token, remote, method, path, auth string
		want                              int
	}{
		{"", "127.0.0.1:5", "GET", "/metrics", "", http.StatusTeapot},
		{"", "[::1]:5", "POST", "/bans", "", http.StatusTeapot},
		{"", "[::ffff:127.0.0.1]:5", "GET", "/status", "", http.StatusTeapot},
		{"", "192.0.2.1:5", "GET", "/metrics", "", http.StatusForbidden},
		{"", "192.0.2.1:5", "GET", "/healthz", "", http.StatusTeapot},
		{"", "192.0.2.1:5", "GET", "/readyz", "", http.StatusTeapot},
		{"", "192.0.2.1:5", "GET", "/", "", http.StatusTeapot},
		{"", "192.0.2.1:5", "GET", "/live", "", http.StatusForbidden},
		{"s3cret", "192.0.2.1:5", "GET", "/live", "", http.StatusUnauthorized},
		{"s3cret", "192.0.2.1:5", "GET", "/live", "Bearer nope", http.StatusUnauthorized},
		{"s3cret", "192.0.2.1:5", "GET", "/live", "Bearer s3cret", http.StatusTeapot},
		{"s3cret", "192.0.2.1:5", "DELETE", "/bans", "Bearer s3cret", http.StatusTeapot},
		{"s3cret", "192.0.2.1:5", "POST", "/", "", http.StatusUnauthorized},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		r.RemoteAddr = tc.remote
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		authorize(ok, tc.token).ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("token %q, %s %s from %s with %q: %d, want %d", tc.token, tc.method, tc.path, tc.remote, tc.auth, w.Code, tc.want)
		}
	}
}

func TestClientSendsToken(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		writeJSON(w, http.StatusOK, Status{Pid: 7})
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if _, _, err := (Client{Addr: addr, Token: "s3cret"}).Status(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got != "Bearer s3cret" {
		t.Errorf("Authorization = %q, want Bearer s3cret", got)
	}
	if _, _, err := (Client{Addr: addr}).Status(t.Context()); err != nil || got != "" {
		t.Errorf("without a token: Authorization = %q (%v), want none", got, err)
	}
}
