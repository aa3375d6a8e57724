package static

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const hello = "hello, static world\n"

// fixture builds a served directory beside a secret file that must never
// be reachable:
//
//	secret.txt                 outside the root
//	root/hello.txt             plain file
//	root/app.js (+ .gz, .br)   precompressed siblings, newer than the file
//	root/old.css (+ .gz)       a stale sibling, older than the file
//	root/blob (+ .gz)          unknown type with a sibling
//	root/big.bin               larger than one send chunk
//	root/docs/index.html, root/empty/
//	root/.env, root/.git/config, root/sub/.hidden
//	root/link-in -> hello.txt, root/link-out -> ../secret.txt,
//	root/abs-link -> <abs>/root/hello.txt, root/dir-out -> ..
//	root/fifo                  a named pipe (opening it would block)
//	other/img/logo.svg         a second, nested mount
func fixture(t *testing.T) (root, other string, big []byte) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	other = filepath.Join(base, "other")
	write := func(name, content string, mtime time.Time) {
		t.Helper()
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	write("secret.txt", "top secret\n", t0)
	write("root/hello.txt", hello, t0)
	write("root/app.js", "console.log('identity');\n", t0)
	write("root/app.js.gz", gzipped(t, "console.log('identity');\n"), t0.Add(time.Second))
	write("root/app.js.br", "BROTLI-BYTES", t0.Add(time.Second))
	write("root/old.css", "body{}\n", t0)
	write("root/old.css.gz", gzipped(t, "p{}\n"), t0.Add(-time.Hour))
	write("root/blob", "\x00\x01binary", t0)
	write("root/blob.gz", gzipped(t, "\x00\x01binary"), t0)
	big = bytes.Repeat([]byte("0123456789abcdef"), (3*sendChunk+1000)/16)
	write("root/big.bin", string(big), t0)
	write("root/docs/index.html", "<h1>docs</h1>\n", t0)
	write("root/.env", "PASSWORD=x\n", t0)
	write("root/.git/config", "[core]\n", t0)
	write("root/sub/.hidden", "hidden\n", t0)
	write("other/img/logo.svg", "<svg/>", t0)
	if err := os.Mkdir(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"link-in":  "hello.txt",
		"link-out": "../secret.txt",
		"abs-link": filepath.Join(root, "hello.txt"),
		"dir-out":  "..",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, other, big
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// logEntry is one call of Config.Log.
type logEntry struct {
	path   string
	status int
	size   int64
}

type testServer struct {
	*httptest.Server
	h       *Handler
	appHits []string // paths that reached Next
	logs    []logEntry
	mu      sync.Mutex
}

func newServer(t *testing.T, maxAge time.Duration) (*testServer, []byte) {
	t.Helper()
	root, other, big := fixture(t)
	ts := &testServer{}
	mounts := []Mount{{"/static", root}, {"/static/img", filepath.Join(other, "img")}}
	if err := CheckMounts(mounts); err != nil {
		t.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.appHits = append(ts.appHits, r.URL.Path)
		ts.mu.Unlock()
		_, _ = io.WriteString(w, "from the app")
	})
	ts.h = New(Config{
		Mounts: mounts, MaxAge: maxAge, SendTimeout: 5 * time.Second, Next: app,
		Log: func(r *http.Request, status int, size int64, d time.Duration) {
			ts.mu.Lock()
			ts.logs = append(ts.logs, logEntry{r.URL.Path, status, size})
			ts.mu.Unlock()
		},
	})
	ts.Server = httptest.NewServer(ts.h)
	t.Cleanup(ts.Close)
	return ts, big
}

// do sends a raw request line, so paths reach the server exactly as
// written (no client-side cleaning or escaping).
func (ts *testServer) do(t *testing.T, method, target string, hdr ...string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
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
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return resp, string(body)
}

func TestServe(t *testing.T) {
	ts, _ := newServer(t, time.Hour)
	resp, _ := ts.do(t, "GET", "/static/hello.txt")
	helloTag := resp.Header.Get("Etag")
	helloMod := resp.Header.Get("Last-Modified")
	resp, _ = ts.do(t, "GET", "/static/app.js", "Accept-Encoding", "gzip")
	gzTag := resp.Header.Get("Etag")
	if helloTag == "" || helloMod == "" || gzTag == "" || gzTag == helloTag {
		t.Fatalf("validators: hello %q %q, app.js.gz %q", helloTag, helloMod, gzTag)
	}
	modTime, _ := http.ParseTime(helloMod)
	gzBody := gzipped(t, "console.log('identity');\n")
	n := len(hello)

	tests := []struct {
		name       string
		method     string
		target     string
		hdr        []string
		status     int
		body       *string           // nil = not checked
		want       map[string]string // header values; "" = must be absent
		bodyPrefix string
	}{
		{name: "file", method: "GET", target: "/static/hello.txt", status: 200, body: ptr(hello), want: map[string]string{
			"Content-Type": "text/plain; charset=utf-8", "Content-Length": fmt.Sprint(n), "Cache-Control": "public, max-age=3600",
			"Accept-Ranges": "bytes", "Etag": helloTag, "Last-Modified": "Wed, 01 May 2024 12:00:00 GMT", "Vary": "",
			"Content-Encoding": "", "X-Content-Type-Options": "nosniff",
		}},
		{name: "query ignored", method: "GET", target: "/static/hello.txt?v=3", status: 200, body: ptr(hello)},
		{name: "HEAD", method: "HEAD", target: "/static/hello.txt", status: 200, body: ptr(""), want: map[string]string{
			"Content-Length": fmt.Sprint(n), "Etag": helloTag}},
		{name: "percent-encoded name", method: "GET", target: "/static/h%65llo.txt", status: 200, body: ptr(hello)},

		// Conditional requests.
		{name: "If-None-Match hit", method: "GET", target: "/static/hello.txt", hdr: []string{"If-None-Match", helloTag},
			status: 304, body: ptr(""), want: map[string]string{"Etag": helloTag, "Cache-Control": "public, max-age=3600"}},
		{name: "If-None-Match list", method: "GET", target: "/static/hello.txt", hdr: []string{"If-None-Match", `"x", ` + helloTag},
			status: 304},
		{name: "If-None-Match star", method: "HEAD", target: "/static/hello.txt", hdr: []string{"If-None-Match", "*"}, status: 304},
		{name: "If-None-Match miss", method: "GET", target: "/static/hello.txt", hdr: []string{"If-None-Match", `"other"`},
			status: 200, body: ptr(hello)},
		{name: "If-Modified-Since equal", method: "GET", target: "/static/hello.txt", hdr: []string{"If-Modified-Since", helloMod},
			status: 304},
		{name: "If-Modified-Since later", method: "GET", target: "/static/hello.txt",
			hdr: []string{"If-Modified-Since", modTime.Add(time.Hour).Format(http.TimeFormat)}, status: 304},
		{name: "If-Modified-Since earlier", method: "GET", target: "/static/hello.txt",
			hdr: []string{"If-Modified-Since", modTime.Add(-time.Second).Format(http.TimeFormat)}, status: 200, body: ptr(hello)},
		{name: "If-None-Match wins over If-Modified-Since", method: "GET", target: "/static/hello.txt",
			hdr: []string{"If-None-Match", `"other"`, "If-Modified-Since", helloMod}, status: 200},
		{name: "If-Match miss", method: "GET", target: "/static/hello.txt", hdr: []string{"If-Match", `"other"`}, status: 412},

		// Ranges.
		{name: "range", method: "GET", target: "/static/hello.txt", hdr: []string{"Range", "bytes=0-4"}, status: 206,
			body: ptr("hello"), want: map[string]string{"Content-Range": fmt.Sprintf("bytes 0-4/%d", n), "Content-Length": "5"}},
		{name: "suffix range", method: "GET", target: "/static/hello.txt", hdr: []string{"Range", "bytes=-6"}, status: 206,
			body: ptr("world\n")},
		{name: "open range", method: "GET", target: "/static/hello.txt", hdr: []string{"Range", "bytes=7-"}, status: 206,
			body: ptr(hello[7:])},
		{name: "range past the end", method: "GET", target: "/static/hello.txt", hdr: []string{"Range", "bytes=1000-2000"},
			status: 416, want: map[string]string{"Content-Range": fmt.Sprintf("bytes */%d", n), "Etag": "", "Cache-Control": ""}},
		{name: "If-Range match", method: "GET", target: "/static/hello.txt", hdr: []string{"Range", "bytes=0-4", "If-Range", helloTag},
			status: 206, body: ptr("hello")},
		{name: "If-Range mismatch sends everything", method: "GET", target: "/static/hello.txt",
			hdr: []string{"Range", "bytes=0-4", "If-Range", `"old"`}, status: 200, body: ptr(hello)},
		{name: "HEAD range", method: "HEAD", target: "/static/hello.txt", hdr: []string{"Range", "bytes=0-4"}, status: 206, body: ptr("")},

		// Precompressed siblings.
		{name: "gzip sibling", method: "GET", target: "/static/app.js", hdr: []string{"Accept-Encoding", "gzip"}, status: 200,
			body: &gzBody, want: map[string]string{"Content-Encoding": "gzip", "Vary": "Accept-Encoding",
				"Content-Type": "text/javascript; charset=utf-8", "Content-Length": fmt.Sprint(len(gzBody)), "Etag": gzTag}},
		{name: "br preferred", method: "GET", target: "/static/app.js", hdr: []string{"Accept-Encoding", "gzip, deflate, br"},
			status: 200, body: ptr("BROTLI-BYTES"), want: map[string]string{"Content-Encoding": "br", "Vary": "Accept-Encoding"}},
		{name: "q-values", method: "GET", target: "/static/app.js", hdr: []string{"Accept-Encoding", "br;q=0.4, gzip;q=0.9"},
			status: 200, body: &gzBody, want: map[string]string{"Content-Encoding": "gzip"}},
		{name: "identity refused", method: "GET", target: "/static/app.js", hdr: []string{"Accept-Encoding", "identity;q=0, gzip"},
			status: 200, body: &gzBody, want: map[string]string{"Content-Encoding": "gzip"}},
		{name: "codings refused", method: "GET", target: "/static/app.js", hdr: []string{"Accept-Encoding", "br;q=0, gzip;q=0"},
			status: 200, body: ptr("console.log('identity');\n"), want: map[string]string{"Content-Encoding": "", "Vary": "Accept-Encoding"}},
		{name: "no Accept-Encoding", method: "GET", target: "/static/app.js", status: 200,
			body: ptr("console.log('identity');\n"), want: map[string]string{"Content-Encoding": "", "Vary": "Accept-Encoding"}},
		{name: "gzip 304", method: "GET", target: "/static/app.js", hdr: []string{"Accept-Encoding", "gzip", "If-None-Match", gzTag},
			status: 304, want: map[string]string{"Vary": "Accept-Encoding", "Etag": gzTag}},
		{name: "identity validator does not match gzip", method: "GET", target: "/static/app.js",
			hdr: []string{"Accept-Encoding", "gzip", "If-None-Match", helloTag}, status: 200},
		{name: "gzip range", method: "GET", target: "/static/app.js", hdr: []string{"Accept-Encoding", "gzip", "Range", "bytes=0-1"},
			status: 206, body: ptr("\x1f\x8b"), want: map[string]string{"Content-Encoding": "gzip", "Content-Range": fmt.Sprintf("bytes 0-1/%d", len(gzBody))}},
		{name: "gzip range past the end is not encoded", method: "GET", target: "/static/app.js",
			hdr: []string{"Accept-Encoding", "gzip", "Range", "bytes=5000-"}, status: 416, want: map[string]string{"Content-Encoding": ""}},
		{name: "HEAD gzip", method: "HEAD", target: "/static/app.js", hdr: []string{"Accept-Encoding", "gzip"}, status: 200,
			body: ptr(""), want: map[string]string{"Content-Encoding": "gzip", "Content-Length": fmt.Sprint(len(gzBody))}},
		{name: "stale sibling ignored", method: "GET", target: "/static/old.css", hdr: []string{"Accept-Encoding", "gzip"}, status: 200,
			body: ptr("body{}\n"), want: map[string]string{"Content-Encoding": "", "Vary": "", "Content-Type": "text/css; charset=utf-8"}},
		{name: "unknown type, compressed", method: "GET", target: "/static/blob", hdr: []string{"Accept-Encoding", "gzip"}, status: 200,
			want: map[string]string{"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"}},
		{name: "sibling asked for directly", method: "GET", target: "/static/app.js.gz", status: 200, body: &gzBody,
			want: map[string]string{"Content-Encoding": ""}},

		// Directories.
		{name: "index", method: "GET", target: "/static/docs/", status: 200, body: ptr("<h1>docs</h1>\n"),
			want: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{name: "index redirect", method: "GET", target: "/static/docs", status: 301, want: map[string]string{"Location": "/static/docs/"}},
		{name: "index redirect keeps the query", method: "GET", target: "/static/docs?a=1", status: 301,
			want: map[string]string{"Location": "/static/docs/?a=1"}},
		{name: "no index", method: "GET", target: "/static/empty/", status: 404},
		{name: "no index, no slash", method: "GET", target: "/static/empty", status: 404},
		{name: "mount root", method: "GET", target: "/static/", status: 404},
		{name: "mount root, no slash", method: "GET", target: "/static", status: 404},
		{name: "file with a slash", method: "GET", target: "/static/hello.txt/", status: 404},
		{name: "missing", method: "GET", target: "/static/nope.txt", status: 404, want: map[string]string{"Etag": "", "Cache-Control": ""}},
		{name: "fifo", method: "GET", target: "/static/fifo", status: 404},

		// Escapes and hidden files.
		{name: "dotdot", method: "GET", target: "/static/../secret.txt", status: 404},
		{name: "dotdot deep", method: "GET", target: "/static/docs/../../secret.txt", status: 404},
		{name: "encoded dotdot", method: "GET", target: "/static/%2e%2e/secret.txt", status: 404},
		{name: "encoded dotdot upper", method: "GET", target: "/static/%2E%2E/secret.txt", status: 404},
		{name: "encoded slash", method: "GET", target: "/static/..%2fsecret.txt", status: 404},
		{name: "all encoded", method: "GET", target: "/static/%2e%2e%2fsecret.txt", status: 404},
		{name: "encoded slash inside the root", method: "GET", target: "/static/docs%2findex.html", status: 200},
		{name: "backslash", method: "GET", target: `/static/..\secret.txt`, status: 404},
		{name: "encoded backslash", method: "GET", target: "/static/..%5csecret.txt", status: 404},
		{name: "absolute", method: "GET", target: "/static//etc/passwd", status: 404},
		{name: "dot segment", method: "GET", target: "/static/./hello.txt", status: 404},
		{name: "NUL", method: "GET", target: "/static/hello.txt%00.png", status: 404},
		{name: "symlink inside the root", method: "GET", target: "/static/link-in", status: 200, body: ptr(hello),
			want: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}, // sniffed: no extension
		{name: "symlink out of the root", method: "GET", target: "/static/link-out", status: 404},
		{name: "absolute symlink", method: "GET", target: "/static/abs-link", status: 404},
		{name: "directory symlink out of the root", method: "GET", target: "/static/dir-out/secret.txt", status: 404},
		{name: "dotfile", method: "GET", target: "/static/.env", status: 404},
		{name: "dot directory", method: "GET", target: "/static/.git/config", status: 404},
		{name: "nested dotfile", method: "GET", target: "/static/sub/.hidden", status: 404},
		{name: "encoded dotfile", method: "GET", target: "/static/%2eenv", status: 404},

		// Methods.
		{name: "POST", method: "POST", target: "/static/hello.txt", status: 405, want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "PUT", method: "PUT", target: "/static/new.txt", status: 405, want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "DELETE", method: "DELETE", target: "/static/hello.txt", status: 405},
		{name: "OPTIONS", method: "OPTIONS", target: "/static/hello.txt", status: 405},

		// Mounts.
		{name: "nested mount", method: "GET", target: "/static/img/logo.svg", status: 200, body: ptr("<svg/>"),
			want: map[string]string{"Content-Type": "image/svg+xml"}},
		{name: "not a prefix match", method: "GET", target: "/staticfile", status: 200, body: ptr("from the app")},
		{name: "app", method: "POST", target: "/login", status: 200, body: ptr("from the app")},
		{name: "dotdot outside the prefix is the app's", method: "GET", target: "/x/../static/hello.txt", status: 200,
			body: ptr("from the app")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.do(t, tt.method, tt.target, tt.hdr...)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s: status %d, want %d (body %q)", tt.method, tt.target, resp.StatusCode, tt.status, body)
			}
			if tt.body != nil && body != *tt.body {
				t.Errorf("%s %s: body %q, want %q", tt.method, tt.target, body, *tt.body)
			}
			for k, v := range tt.want {
				vs, present := resp.Header[http.CanonicalHeaderKey(k)]
				switch {
				case v == "" && present:
					t.Errorf("%s %s: %s: %q, want none", tt.method, tt.target, k, vs)
				case v != "" && (len(vs) != 1 || vs[0] != v):
					t.Errorf("%s %s: %s: %q, want %q", tt.method, tt.target, k, vs, v)
				}
			}
		})
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	want := []string{"/staticfile", "/login", "/x/../static/hello.txt"}
	if !slices.Equal(ts.appHits, want) {
		t.Errorf("requests that reached the app: %q, want %q", ts.appHits, want)
	}
}

func ptr(s string) *string { return &s }

func TestMultiRange(t *testing.T) {
	ts, _ := newServer(t, time.Hour)
	resp, body := ts.do(t, "GET", "/static/hello.txt", "Range", "bytes=0-4,7-12")
	if resp.StatusCode != 206 {
		t.Fatalf("status %d, want 206", resp.StatusCode)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q, want multipart/byteranges", resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(strings.NewReader(body), params["boundary"])
	var got []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		got = append(got, p.Header.Get("Content-Range")+" "+p.Header.Get("Content-Type")+" "+string(b))
	}
	n := len(hello)
	want := []string{
		fmt.Sprintf("bytes 0-4/%d text/plain; charset=utf-8 hello", n),
		fmt.Sprintf("bytes 7-12/%d text/plain; charset=utf-8 static", n),
	}
	if !slices.Equal(got, want) {
		t.Errorf("parts %q, want %q", got, want)
	}
}

// TestBigFile sends a file larger than one send chunk, whole and as a
// range crossing chunk boundaries, through the sendfile path.
func TestBigFile(t *testing.T) {
	ts, big := newServer(t, time.Hour)
	resp, body := ts.do(t, "GET", "/static/big.bin")
	if resp.StatusCode != 200 || body != string(big) {
		t.Fatalf("status %d, %d bytes, want 200 and %d bytes", resp.StatusCode, len(body), len(big))
	}
	lo, hi := sendChunk-10, 2*sendChunk+10
	resp, body = ts.do(t, "GET", "/static/big.bin", "Range", fmt.Sprintf("bytes=%d-%d", lo, hi))
	if resp.StatusCode != 206 || body != string(big[lo:hi+1]) {
		t.Fatalf("range: status %d, %d bytes, want 206 and %d bytes", resp.StatusCode, len(body), hi-lo+1)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if got := ts.logs[len(ts.logs)-2]; got != (logEntry{"/static/big.bin", 200, int64(len(big))}) {
		t.Errorf("access log entry %+v, want 200 and %d bytes", got, len(big))
	}
}

func TestAccessLog(t *testing.T) {
	ts, _ := newServer(t, time.Hour)
	ts.do(t, "GET", "/static/hello.txt")
	ts.do(t, "GET", "/static/hello.txt", "Range", "bytes=0-4")
	ts.do(t, "HEAD", "/static/hello.txt")
	ts.do(t, "GET", "/static/../secret.txt")
	ts.do(t, "POST", "/static/hello.txt")
	ts.do(t, "GET", "/elsewhere")
	ts.mu.Lock()
	defer ts.mu.Unlock()
	want := []logEntry{
		{"/static/hello.txt", 200, int64(len(hello))},
		{"/static/hello.txt", 206, 5},
		{"/static/hello.txt", 200, 0},
		{"/static/../secret.txt", 404, int64(len("404 Not Found\n"))},
		{"/static/hello.txt", 405, int64(len("405 Method Not Allowed\n"))},
	}
	if !slices.Equal(ts.logs, want) {
		t.Errorf("log entries\n%+v\nwant (the app's request is the app's to log)\n%+v", ts.logs, want)
	}
}

func TestNoCache(t *testing.T) {
	ts, _ := newServer(t, 0)
	resp, _ := ts.do(t, "GET", "/static/hello.txt")
	if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control %q with MaxAge 0, want no-cache", got)
	}
}

// TestSwitchedDirectory checks that a directory replaced while serving (a
// deploy switching a symlink) is seen without a restart.
func TestSwitchedDirectory(t *testing.T) {
	base := t.TempDir()
	for _, rel := range []string{"v1", "v2"} {
		if err := os.MkdirAll(filepath.Join(base, rel), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, rel, "v.txt"), []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	current := filepath.Join(base, "current")
	if err := os.Symlink("v1", current); err != nil {
		t.Fatal(err)
	}
	mounts := []Mount{{"/s", current}}
	if err := CheckMounts(mounts); err != nil {
		t.Fatal(err)
	}
	h := New(Config{Mounts: mounts, Next: http.NotFoundHandler()})
	get := func() string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/s/v.txt", nil))
		return rec.Body.String()
	}
	if got := get(); got != "v1" {
		t.Fatalf("before the switch: %q, want v1", got)
	}
	if err := os.Remove(current); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("v2", current); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "v2" {
		t.Errorf("after the switch: %q, want v2", got)
	}
}

// TestCheckMounts: a mount's directory must exist and be a directory.
// The form of --static entries (prefixes, PREFIX=DIR, duplicates) is
// config's, tested there.
func TestCheckMounts(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"static", "media"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mounts  []Mount
		wantErr string
	}{
		{mounts: []Mount{{"/static", filepath.Join(base, "static")}}},
		{mounts: []Mount{{"/static", filepath.Join(base, "static")}, {"/media", filepath.Join(base, "media")}}},
		{mounts: []Mount{{"/static", filepath.Join(base, "static=x")}}, wantErr: "no such file"},
		{mounts: []Mount{{"/static", filepath.Join(base, "missing")}}, wantErr: "no such file"},
		{mounts: []Mount{{"/static", filepath.Join(base, "file")}}, wantErr: "not a directory"},
		{mounts: []Mount{{"/static", filepath.Join(base, "static")}, {"/media", filepath.Join(base, "file")}}, wantErr: "not a directory"},
	}
	for _, tt := range tests {
		err := CheckMounts(tt.mounts)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("CheckMounts(%v): %v", tt.mounts, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("CheckMounts(%v): error %v, want one containing %q", tt.mounts, err, tt.wantErr)
		}
	}
}

func TestPrefixesAndMatch(t *testing.T) {
	h := New(Config{Mounts: []Mount{{"/static", "/x"}, {"/static/img", "/y"}, {"/media", "/z"}}})
	if got, want := h.Prefixes(), []string{"/static", "/static/img", "/media"}; !slices.Equal(got, want) {
		t.Errorf("Prefixes() = %q, want %q", got, want)
	}
	for p, want := range map[string]bool{
		"/static": true, "/static/": true, "/static/a.css": true, "/static/img/x.png": true, "/media/x": true,
		"/staticx": false, "/": false, "/med": false, "/api/static/x": false,
	} {
		if got := h.Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
}

// BenchmarkServe measures a small static file, the common case for
// assets, through a recorder (no network).
func BenchmarkServe(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.css"), []byte("body{}"), 0o644); err != nil {
		b.Fatal(err)
	}
	h := New(Config{Mounts: []Mount{{"/static", dir}}, Next: http.NotFoundHandler()})
	req := httptest.NewRequest("GET", "/static/a.css", nil)
	req.Header.Set("Accept-Encoding", "gzip, br")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
