package integration

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// routesJSON is the routes object of HELLO, as `corral routes --json`
// prints it.
type routesJSON struct {
	Framework string `json:"framework"`
	Routes    []struct {
		Rule     string   `json:"rule"`
		Regex    string   `json:"regex"`
		Methods  []string `json:"methods"`
		Endpoint string   `json:"endpoint"`
		Static   bool     `json:"static"`
	} `json:"routes"`
	Prefixes []string `json:"prefixes"`
	Warnings []string `json:"warnings"`
}

// routesOf runs `corral routes --json` and compiles every regex with Go's
// regexp, as the route guard does.
func routesOf(t *testing.T, args ...string) (*routesJSON, []*regexp.Regexp) {
	t.Helper()
	out, errOut, code := runSplit(t, append([]string{"routes", "--json", "--python", pythonBin}, args...)...)
	if code != 0 {
		t.Fatalf("corral routes --json %v: exit %d:\n%s%s", args, code, out, errOut)
	}
	var rs *routesJSON
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("corral routes --json %v: %v:\n%s", args, err, out)
	}
	if rs == nil {
		return nil, nil
	}
	var res []*regexp.Regexp
	for _, r := range rs.Routes {
		re, err := regexp.Compile(r.Regex)
		if err != nil {
			t.Errorf("route %q: Go cannot compile %q: %v", r.Rule, r.Regex, err)
			continue
		}
		if !strings.HasPrefix(r.Regex, "^") || !strings.HasSuffix(r.Regex, "$") {
			t.Errorf("route %q: regex %q is not anchored", r.Rule, r.Regex)
		}
		res = append(res, re)
	}
	return rs, res
}

// runSplit runs corral in the repository root and returns its standard
// output and standard error apart (--json output must parse whatever the
// log says).
func runSplit(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(corralBin, args...)
	cmd.Dir = repoRoot
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("corral %v did not finish within 60s:\n%s%s", args, out.String(), errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

func known(rs *routesJSON, res []*regexp.Regexp, path string) bool {
	for _, re := range res {
		if re.MatchString(path) {
			return true
		}
	}
	for _, p := range rs.Prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// checkPaths checks that the app's real paths are known and scanner
// paths are not.
func checkPaths(t *testing.T, rs *routesJSON, res []*regexp.Regexp, routed, probes []string) {
	t.Helper()
	for _, p := range routed {
		if !known(rs, res, p) {
			t.Errorf("%s: routed by the app, unknown to the routes", p)
		}
	}
	for _, p := range probes {
		if known(rs, res, p) {
			t.Errorf("%s: not routed by the app, known to the routes", p)
		}
	}
}

func TestRoutesFlaskExample(t *testing.T) {
	out, code := runCorral(t, "routes", "--python", pythonBin, "--chdir", "examples/flaskapp", "app:app")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		"app:app: flask app, 6 routes\n",
		"METHODS           RULE                     ENDPOINT                  REGEX\n",
		"GET,HEAD,OPTIONS  /static/<path:filename>  static [static]           ^/static/.+$\n",
		"GET,HEAD,OPTIONS  /user/<username>         getuser                   ^/user/[^/]+$\n",
		"GET,HEAD,OPTIONS  /<int:year>              getyear                   ^/[0-9]+$\n",
		"OPTIONS,POST      /login                   login                     ^/login$\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	rs, res := routesOf(t, "--chdir", "examples/flaskapp", "app:app")
	if rs.Framework != "flask" || len(rs.Routes) != 6 || len(rs.Prefixes) != 0 || len(rs.Warnings) != 0 {
		t.Errorf("routes: %+v", rs)
	}
	checkPaths(t, rs, res,
		[]string{"/", "/user/alice", "/2024", "/0042", "/login", "/static/hello.txt", "/static/css/site.css", "//user/alice", "/user//alice"},
		[]string{"/wp-admin", "/.env", "/user/alice/x", "/user/", "/2024/", "/login/", "/admin/", "/cgi-bin/test.cgi", "/static/"})
}

func TestRoutesDjangoProject(t *testing.T) {
	out, code := runCorral(t, "routes", "--python", pythonBin, "--chdir", "examples/djangoproject", "mysite.wsgi:application")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		"mysite.wsgi:application: django app, 7 routes\n",
		"*        /polls/<int:question_id>/     polls:detail   ^/polls/[0-9]+/?$\n",
		"*        /archive/(?P<year>[0-9]{4})/  archive        ^/archive/[0-9]{4}/?$\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	rs, res := routesOf(t, "--chdir", "examples/djangoproject", "mysite.wsgi:application")
	if rs.Framework != "django" || len(rs.Routes) != 7 || len(rs.Prefixes) != 0 || len(rs.Warnings) != 0 {
		t.Errorf("routes: %+v", rs)
	}
	checkPaths(t, rs, res,
		[]string{"/", "/echo/", "/echo", "/polls/", "/polls", "/polls/1/", "/polls/9/", "/polls/boom/",
			"/polls/best-server/results/", "/archive/2024/", "/archive/2024"},
		[]string{"/wp-login.php", "/admin/", "/.git/config", "/polls/x/", "/archive/24/", "/polls/1/extra/", "//"})
}

func TestRoutesPlainApp(t *testing.T) {
	out, code := runCorral(t, "routes", "--python", pythonBin, testdata("wsgiapp.py"))
	if code != 0 || !strings.Contains(out, "learn its routes from traffic") {
		t.Errorf("plain app: exit %d:\n%s", code, out)
	}
	out, errOut, code := runSplit(t, "routes", "--json", "--python", pythonBin, testdata("wsgiapp.py"))
	if code != 0 || strings.TrimSpace(out) != "null" {
		t.Errorf("plain app --json: exit %d:\n%s%s", code, out, errOut)
	}
}

func TestRoutesBrokenApp(t *testing.T) {
	out, code := runCorral(t, "routes", "--python", pythonBin, testdata("broken_import.py"))
	if code == 0 || !strings.Contains(out, "Traceback (most recent call last)") {
		t.Errorf("broken app: exit %d, want non-zero with the traceback:\n%s", code, out)
	}
}
