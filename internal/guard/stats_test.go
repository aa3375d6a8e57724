package guard

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"corral/internal/front"
)

func TestJailStats(t *testing.T) {
	r := newRig(t, nil)
	r.g.SetRoutes(nil) // learned mode: every unknown path is a probe
	scanner := "192.0.2.66:1000"
	for i := range 15 { // 10 probes ban; 5 more are blocked
		r.do(scanner, "GET", fmt.Sprintf("/probe%d", i), nil)
	}
	if _, err := r.g.Ban("198.51.100.1", time.Hour, "manual", "test"); err != nil {
		t.Fatal(err)
	}
	want := []JailStat{
		{Jail: "manual", Bans: 1, Active: 1},
		{Jail: "probe", Bans: 1, Active: 1, Blocked: 5},
	}
	if got := r.g.JailStats(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("JailStats() = %+v, want %+v", got, want)
	}
	// An ended ban's counts stay in its jail's.
	r.clock.add(11 * time.Minute)
	r.g.expire(r.clock.now())
	if ok, err := r.g.Unban("198.51.100.1", "test"); !ok || err != nil {
		t.Fatalf("unban: %v %v", ok, err)
	}
	want = []JailStat{
		{Jail: "manual", Bans: 1},
		{Jail: "probe", Bans: 1, Blocked: 5},
	}
	if got := r.g.JailStats(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the bans ended: JailStats() = %+v, want %+v", got, want)
	}
}

func TestRouteLabels(t *testing.T) {
	raw, err := os.ReadFile("testdata/flask_routes.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		script string
		path   string
		want   string
	}{
		{"", "/user/alice", "/user/<username>"},
		{"", "/2024", "/<int:year>"},
		{"", "/assets/app.js", "/assets/"},
		{"", "/assets", "/assets"},
		{"", "/admin/anything/below", "/admin/"},
		{"", "/wp-login.php", ""},
		{"/mount", "/mount/user/bob", "/user/<username>"},
		{"/mount", "/mount", "/"},
		{"/mount", "/elsewhere", ""},
	} {
		g, err := New(Config{Enabled: true, Jails: DefaultJails(), Static: []string{"/assets"}, ScriptName: tc.script})
		if err != nil {
			t.Fatal(err)
		}
		g.SetRoutes(raw)
		if got := g.Route(tc.path); got != tc.want {
			t.Errorf("script name %q: Route(%q) = %q, want %q", tc.script, tc.path, got, tc.want)
		}
	}
}

// noter records the route the guard tells it.
type noter struct {
	http.ResponseWriter
	route string
	noted bool
}

func (n *noter) NoteRoute(r string) { n.route, n.noted = r, true }

var _ front.RouteNoter = (*noter)(nil)

func TestGuardNotesRoute(t *testing.T) {
	raw, err := os.ReadFile("testdata/flask_routes.json")
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, nil)
	r.g.SetRoutes(raw)
	for path, want := range map[string]string{"/user/ann": "/user/<username>", "/nope": "", "/admin/x": "/admin/"} {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "192.0.2.9:1"
		n := &noter{ResponseWriter: httptest.NewRecorder()}
		r.h.ServeHTTP(n, req)
		if !n.noted || n.route != want {
			t.Errorf("GET %s: noted %v %q, want %q", path, n.noted, n.route, want)
		}
	}
}
