package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFlaskExample(t *testing.T) {
	s := start(t, nil, "-w", "2", "--chdir", "examples/flaskapp", "app:app")
	cases := []struct {
		method, path, body string
		hdr                map[string]string
		code               int
		want               string
	}{
		{"GET", "/", "", nil, 200, `{"status": "ok"}`},
		{"GET", "/2024", "", nil, 200, "2024"},
		{"GET", "/user/alice", "", nil, 500, ""},
		{"GET", "/nope/nope", "", nil, 404, ""},
		{"GET", "/static/hello.txt", "", nil, 200, ""},
		{"POST", "/login", "user=admin&password=secret", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 200, "welcome\n"},
		{"POST", "/login", "user=admin&password=guess", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 401, ""},
	}
	for _, c := range cases {
		code, body := s.do(c.method, c.path, strings.NewReader(c.body), c.hdr)
		if code != c.code || c.want != "" && body != c.want {
			t.Errorf("%s %s = %d %q, want %d %q", c.method, c.path, code, body, c.code, c.want)
		}
	}
	eventually(t, 5*time.Second, "the /user traceback in the log", func() bool {
		return strings.Contains(s.log.String(), "Exception: user unknown") && strings.Contains(s.log.String(), "in getuser")
	})
}

func TestDjangoProject(t *testing.T) {
	s := start(t, nil, "-w", "2", "--chdir", "examples/djangoproject", "mysite.wsgi:application")
	cases := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/", "", 200, `{"status": "ok"}`},
		{"GET", "/polls/", "", 200, `"questions"`},
		{"GET", "/polls/1/", "", 200, `"What's new?"`},
		{"GET", "/polls/9/", "", 404, ""},
		{"GET", "/polls/best-server/results/", "", 200, `"best-server"`},
		{"GET", "/archive/2024/", "", 200, `{"year": 2024}`},
		{"GET", "/archive/24/", "", 404, ""},
		{"GET", "/polls/boom/", "", 500, ""},
		{"POST", "/echo/", "raw body \x00 bytes", 200, "raw body \x00 bytes"},
	}
	for _, c := range cases {
		code, body := s.do(c.method, c.path, strings.NewReader(c.body), nil)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s = %d %q, want %d containing %q", c.method, c.path, code, body, c.code, c.want)
		}
	}
	eventually(t, 5*time.Second, "the Django traceback in the log", func() bool {
		return strings.Contains(s.log.String(), "RuntimeError: boom: deliberate failure")
	})
	// Django's own request handling must see the real client and host.
	req, _ := http.NewRequest("GET", s.url+"/polls/", nil)
	req.Host = "example.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("Host example.test: %d", resp.StatusCode)
	}
}

func TestCheckCommand(t *testing.T) {
	out, code := runCorral(t, "check", "--python", pythonBin, "--chdir", "examples/flaskapp", "app:app")
	if code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("check of the Flask app: exit %d:\n%s", code, out)
	}
	out, code = runCorral(t, "check", "--python", pythonBin, testdata("broken_import.py"))
	if code == 0 || !strings.Contains(out, "Traceback (most recent call last)") || !strings.Contains(out, "no_such_module_anywhere") {
		t.Errorf("check of a broken app: exit %d, want non-zero with the traceback:\n%s", code, out)
	}
	out, code = runCorral(t, "check", "--python", pythonBin, "--chdir", "examples/flaskapp", "app:missing")
	if code == 0 || !strings.Contains(out, "missing") {
		t.Errorf("check of a missing attribute: exit %d:\n%s", code, out)
	}
}

func TestBootFailure(t *testing.T) {
	out, code := runCorral(t, "-w", "2", "-b", "127.0.0.1:"+itoa(freePort(t)), "--python", pythonBin, testdata("broken_import.py"))
	if code == 0 {
		t.Fatalf("corral served an app that cannot import:\n%s", out)
	}
	if n := strings.Count(out, "Traceback (most recent call last)"); n != 1 {
		t.Errorf("the traceback appears %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "ModuleNotFoundError") {
		t.Errorf("no ModuleNotFoundError in the output:\n%s", out)
	}
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/corral.toml", "workers = \"four\"\nwokers = 2\n")
	out, code := runCorralIn(t, dir, "app:app")
	if code != 2 || !strings.Contains(out, "corral.toml") || !strings.Contains(out, `"workers"`) || !strings.Contains(out, `"wokers"`) {
		t.Errorf("bad config: exit %d, want 2 naming the file and both keys:\n%s", code, out)
	}
	out, code = runCorral(t, "--workers", "x", "app:app")
	if code != 2 || !strings.Contains(out, "--workers") {
		t.Errorf("bad flag: exit %d:\n%s", code, out)
	}
}
