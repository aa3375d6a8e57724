package admin

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
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
