package guard

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func loadRoutes(t testing.TB, name string) *RouteSet {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ParseRoutes(raw)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestMatcherFlask(t *testing.T) {
	m, warnings := Compile(loadRoutes(t, "flask_routes.json"), []string{"/assets"})
	if len(warnings) != 1 || !strings.Contains(warnings[0], "/broken") {
		t.Errorf("warnings = %q, want one about /broken", warnings)
	}
	cases := []struct {
		path string
		ok   bool
		rule string
	}{
		{"/", true, "/"},
		{"/login", true, "/login"},
		{"/login/", false, ""},
		{"/user/alice", true, "/user/<username>"},
		{"/user/", false, ""},
		{"/user/a/b", false, ""},
		{"/2024", true, "/<int:year>"},
		{"/2024x", false, ""},
		{"/robots.txt", true, "/robots.txt"},
		{"/robotsXtxt", false, ""},
		{"/static/css/site.css", true, "/static/<path:filename>"},
		{"/static/", false, ""},
		{"/admin/anything/below", true, ""},
		{"/admin", false, ""},
		{"/assets", true, ""},
		{"/assets/app.js", true, ""},
		{"/assetsX", false, ""},
		{"/broken/whatever", true, ""}, // an unusable regex errs towards known
		{"/.git/config", false, ""},
		{"/a//b", true, "/<path with //>"},
		{"/wp-login.php", false, ""},
		{"", false, ""},
	}
	for _, c := range cases {
		i, ok := m.Match(c.path)
		if ok != c.ok || m.Rule(i) != c.rule {
			t.Errorf("Match(%q) = %q %v, want %q %v", c.path, m.Rule(i), ok, c.rule, c.ok)
		}
	}
}

func TestMatcherDjango(t *testing.T) {
	m, _ := Compile(loadRoutes(t, "django_routes.json"), nil)
	for path, want := range map[string]bool{
		"/": true, "/echo/": true, "/polls/": true, "/polls/1/": true, "/polls/99/": true,
		"/polls/best-server/results/": true, "/archive/2024/": true,
		"/echo": true, "/echoes/": false, "/polls/x/": false, "/archive/24/": false, "/admin/": false, "/polls/1/2/": false,
	} {
		if _, ok := m.Match(path); ok != want {
			t.Errorf("Match(%q) = %v, want %v", path, ok, want)
		}
	}
}

func TestParseRoutesNull(t *testing.T) {
	for _, raw := range []string{"", "null", " null\n"} {
		rs, err := ParseRoutes([]byte(raw))
		if rs != nil || err != nil {
			t.Errorf("ParseRoutes(%q) = %v, %v; want nil, nil", raw, rs, err)
		}
	}
	if _, err := ParseRoutes([]byte("{")); err == nil {
		t.Error("ParseRoutes of broken JSON: no error")
	}
	var nilMatcher *Matcher
	if _, ok := nilMatcher.Match("/"); ok {
		t.Error("a nil matcher matched")
	}
}

func TestLearnedBounded(t *testing.T) {
	l := newLearned(3)
	for i := range 3 {
		if l.add(fmt.Sprintf("/p%d", i)) {
			t.Fatalf("full after %d", i)
		}
	}
	if !l.add("/p3") {
		t.Error("the fourth path did not report the table full")
	}
	if l.add("/p4") || l.has("/p3") || !l.has("/p0") || l.len() != 3 {
		t.Errorf("after full: len %d, has p3 %v", l.len(), l.has("/p3"))
	}
}

// hundredRoutes is an app with 100 route patterns, as in the benchmark.
func hundredRoutes() *RouteSet {
	rs := &RouteSet{Framework: "flask"}
	for i := range 50 {
		rs.Routes = append(rs.Routes, Route{Rule: fmt.Sprintf("/section%d/page", i), Regex: fmt.Sprintf("^/section%d/page$", i)})
		rs.Routes = append(rs.Routes, Route{Rule: fmt.Sprintf("/section%d/item/<int:id>", i), Regex: fmt.Sprintf("^/section%d/item/[0-9]+$", i)})
	}
	return rs
}

func BenchmarkMatch100(b *testing.B) {
	m, _ := Compile(hundredRoutes(), []string{"/static"})
	paths := []string{"/section7/page", "/section42/item/1234", "/static/app.css", "/wp-admin/setup.php", "/section49/item/x"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Match(paths[i%len(paths)])
	}
}
