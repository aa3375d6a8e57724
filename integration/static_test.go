package integration

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// staticDo sends one request with a raw request line (so traversal
// attempts reach corral exactly as written) and returns the response with
// its body read.
func staticDo(t *testing.T, s *server, method, target string, hdr ...string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := method + " " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
	for i := 0; i+1 < len(hdr); i += 2 {
		req += hdr[i] + ": " + hdr[i+1] + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return resp, string(b)
}

// TestStatic serves a --static directory (relative to --chdir) and checks
// that no static request, served or refused, reaches Python, while other
// paths still do.
func TestStatic(t *testing.T) {
	dir := t.TempDir()
	js := strings.Repeat("console.log('corral');\n", 50)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(js))
	_ = zw.Close()
	files := map[string]string{
		"secret.txt":                    "top secret\n",
		"app/assets/hello.txt":          "hello from disk\n",
		"app/assets/app.js":             js,
		"app/assets/app.js.gz":          gz.String(),
		"app/assets/app.js.br":          "pretend brotli",
		"app/assets/docs/index.html":    "<p>docs</p>\n",
		"app/assets/.env":               "SECRET=1\n",
		"app/assets/.git/HEAD":          "ref: refs/heads/main\n",
		"app/assets/img/pixel.png":      "\x89PNG\r\n\x1a\n",
		"app/assets/downloads/data.bin": strings.Repeat("x", 1<<20),
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, content)
	}
	// The siblings must not be older than the file, or they are ignored.
	later := time.Now().Add(time.Second)
	for _, name := range []string{"app.js.gz", "app.js.br"} {
		if err := os.Chtimes(filepath.Join(dir, "app/assets", name), later, later); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../../secret.txt", filepath.Join(dir, "app/assets/link-out")); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(dir, "calls")
	accessLog := filepath.Join(dir, "access.log")
	s := startApp(t, []string{"CALLS_FILE=" + calls}, "-w", "1", "--chdir", filepath.Join(dir, "app"),
		"--static", "/assets=assets", "--static-max-age", "10m", "--access-logfile", accessLog)

	resp, body := staticDo(t, s, "GET", "/assets/hello.txt")
	if resp.StatusCode != 200 || body != files["app/assets/hello.txt"] {
		t.Fatalf("GET hello.txt: %d %q", resp.StatusCode, body)
	}
	etag, lastMod := resp.Header.Get("Etag"), resp.Header.Get("Last-Modified")
	if etag == "" || lastMod == "" || resp.Header.Get("Cache-Control") != "public, max-age=600" ||
		resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("GET hello.txt headers: %v", resp.Header)
	}

	checks := []struct {
		name   string
		method string
		target string
		hdr    []string
		status int
		body   string // "" = not checked
		header string // "Name: value" expected, "" = none
	}{
		{"If-None-Match", "GET", "/assets/hello.txt", []string{"If-None-Match", etag}, 304, "", "Etag: " + etag},
		{"If-Modified-Since", "GET", "/assets/hello.txt", []string{"If-Modified-Since", lastMod}, 304, "", ""},
		{"HEAD", "HEAD", "/assets/hello.txt", nil, 200, "", "Content-Length: 16"},
		{"range", "GET", "/assets/hello.txt", []string{"Range", "bytes=6-9"}, 206, "from", "Content-Range: bytes 6-9/16"},
		{"range past the end", "GET", "/assets/hello.txt", []string{"Range", "bytes=100-"}, 416, "", "Content-Range: bytes */16"},
		{"big file range", "GET", "/assets/downloads/data.bin", []string{"Range", "bytes=1000-1009"}, 206, "xxxxxxxxxx", ""},
		{"gzip", "GET", "/assets/app.js", []string{"Accept-Encoding", "gzip, deflate"}, 200, gz.String(), "Content-Encoding: gzip"},
		{"br", "GET", "/assets/app.js", []string{"Accept-Encoding", "gzip, deflate, br"}, 200, "pretend brotli", "Content-Encoding: br"},
		{"gzip refused", "GET", "/assets/app.js", []string{"Accept-Encoding", "gzip;q=0"}, 200, js, "Vary: Accept-Encoding"},
		{"index", "GET", "/assets/docs/", nil, 200, "<p>docs</p>\n", "Content-Type: text/html; charset=utf-8"},
		{"index redirect", "GET", "/assets/docs", nil, 301, "", "Location: /assets/docs/"},
		{"no listing", "GET", "/assets/img/", nil, 404, "", ""},
		{"missing", "GET", "/assets/nope.css", nil, 404, "", ""},
		{"dotdot", "GET", "/assets/../secret.txt", nil, 404, "", ""},
		{"encoded dotdot", "GET", "/assets/%2e%2e/secret.txt", nil, 404, "", ""},
		{"encoded slash", "GET", "/assets/..%2f..%2fsecret.txt", nil, 404, "", ""},
		{"backslash", "GET", "/assets/..%5c..%5csecret.txt", nil, 404, "", ""},
		{"absolute", "GET", "/assets//etc/passwd", nil, 404, "", ""},
		{"symlink out", "GET", "/assets/link-out", nil, 404, "", ""},
		{"dotfile", "GET", "/assets/.env", nil, 404, "", ""},
		{"dot directory", "GET", "/assets/.git/HEAD", nil, 404, "", ""},
		{"POST", "POST", "/assets/hello.txt", []string{"Content-Length", "0"}, 405, "", "Allow: GET, HEAD"},
	}
	for _, c := range checks {
		resp, body := staticDo(t, s, c.method, c.target, c.hdr...)
		if resp.StatusCode != c.status {
			t.Errorf("%s: %s %s: status %d, want %d (%q)", c.name, c.method, c.target, resp.StatusCode, c.status, body)
			continue
		}
		if c.body != "" && body != c.body {
			t.Errorf("%s: body %.60q, want %.60q", c.name, body, c.body)
		}
		if strings.Contains(body, "secret") {
			t.Errorf("%s: the secret leaked: %q", c.name, body)
		}
		if k, v, ok := strings.Cut(c.header, ": "); ok && resp.Header.Get(k) != v {
			t.Errorf("%s: %s: %q, want %q", c.name, k, resp.Header.Get(k), v)
		}
	}
	if b, _ := os.ReadFile(calls); len(b) != 0 {
		t.Errorf("static requests reached the app:\n%s", b)
	}

	// Everything else is still the app's.
	for _, p := range []string{"/pid", "/assetsx/hello.txt", "/x/../assets/hello.txt"} {
		staticDo(t, s, "GET", p)
	}
	b, _ := os.ReadFile(calls)
	if want := "GET /pid\nGET /assetsx/hello.txt\nGET /x/../assets/hello.txt\n"; string(b) != want {
		t.Errorf("requests that reached the app:\n%s\nwant:\n%s", b, want)
	}

	eventually(t, 5*time.Second, "static requests in the access log", func() bool {
		b, _ := os.ReadFile(accessLog)
		return strings.Contains(string(b), `"GET /assets/hello.txt HTTP/1.1" 200 16`) &&
			strings.Contains(string(b), `"GET /assets/../secret.txt HTTP/1.1" 404`) &&
			strings.Contains(string(b), `"GET /pid HTTP/1.1" 200`)
	})
}

// TestStaticBadDirectory checks that a --static directory that does not
// exist stops corral at start with a configuration error naming it.
func TestStaticBadDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	out, code := runCorral(t, "--python", pythonBin, "-b", "127.0.0.1:0", "--admin-bind", "off",
		"--static", "/assets="+missing, testdata("wsgiapp.py")+":application")
	if code != 2 || !strings.Contains(out, missing) {
		t.Errorf("exit code %d, want 2 and a message naming %s:\n%s", code, missing, out)
	}
}
