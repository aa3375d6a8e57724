package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startApp serves the validator-wrapped test app.
func startApp(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	return start(t, env, append(args, testdata("wsgiapp.py")+":application")...)
}

func envOf(t *testing.T, s *server, path string, hdr map[string]string) map[string]any {
	t.Helper()
	code, body := s.do(http.MethodGet, path, nil, hdr)
	if code != 200 {
		t.Fatalf("GET %s = %d %s", path, code, body)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("environ JSON: %v: %s", err, body)
	}
	return env
}

func TestEnviron(t *testing.T) {
	s := startApp(t, nil, "-w", "2")
	env := envOf(t, s, "/env?a=1&b=%20", map[string]string{"X-Custom": "yes", "User-Agent": "it"})
	want := map[string]any{
		"REQUEST_METHOD":    "GET",
		"SCRIPT_NAME":       "",
		"PATH_INFO":         "/env",
		"QUERY_STRING":      "a=1&b=%20",
		"SERVER_NAME":       "127.0.0.1",
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"REMOTE_ADDR":       "127.0.0.1",
		"HTTP_X_CUSTOM":     "yes",
		"HTTP_USER_AGENT":   "it",
		"wsgi.url_scheme":   "http",
		"wsgi.multithread":  false,
		"wsgi.multiprocess": true,
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("environ[%q] = %#v, want %#v", k, env[k], v)
		}
	}
	if env["SERVER_PORT"] != strings.Split(s.addr, ":")[1] {
		t.Errorf("SERVER_PORT = %v, want the port of %s", env["SERVER_PORT"], s.addr)
	}
	if _, ok := env["REMOTE_PORT"]; !ok {
		t.Error("no REMOTE_PORT")
	}
	if _, ok := env["CONTENT_LENGTH"]; ok {
		t.Error("CONTENT_LENGTH present for a GET without body")
	}
	if !strings.HasPrefix(fmt.Sprint(env["SERVER_SOFTWARE"]), "corral/") {
		t.Errorf("SERVER_SOFTWARE = %v", env["SERVER_SOFTWARE"])
	}

	env = envOf(t, startApp(t, nil, "-w", "1", "--threads", "4"), "/env", nil)
	if env["wsgi.multithread"] != true || env["wsgi.multiprocess"] != false {
		t.Errorf("-w 1 --threads 4: multithread %v multiprocess %v, want true false", env["wsgi.multithread"], env["wsgi.multiprocess"])
	}
}

// processGODEBUG is GODEBUG in the environment process pid was started
// with ("<unset>" if it had none).
func processGODEBUG(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := strings.CutPrefix(string(kv), "GODEBUG="); ok {
			return v
		}
	}
	return "<unset>"
}

// TestMasterRuntimeSetting: the master runs with the Go runtime setting
// that keeps sysmon from deep sleep (package sysmon), added to the user's
// GODEBUG, while the workers get the user's environment unchanged; a user
// who chooses schedtrace keeps it.
func TestMasterRuntimeSetting(t *testing.T) {
	s := startApp(t, []string{"GODEBUG=madvdontneed=1"}, "-w", "1")
	if got, want := processGODEBUG(t, s.cmd.Process.Pid), "madvdontneed=1,schedtrace=2147483647"; got != want {
		t.Errorf("master started with GODEBUG=%q, want %q", got, want)
	}
	pids := s.workerPids()
	if len(pids) == 0 {
		t.Fatalf("no worker ready in the log:\n%s", s.log)
	}
	if got := processGODEBUG(t, pids[0]); got != "madvdontneed=1" {
		t.Errorf("worker started with GODEBUG=%q, want the user's madvdontneed=1", got)
	}
	if code, _ := s.get("/length"); code != 200 {
		t.Errorf("GET /length = %d after the re-exec", code)
	}

	s = startApp(t, []string{"GODEBUG=schedtrace=0"}, "-w", "1")
	if got := processGODEBUG(t, s.cmd.Process.Pid); got != "schedtrace=0" {
		t.Errorf("GODEBUG=schedtrace=0: master started with GODEBUG=%q, want it untouched", got)
	}
}

// TestHTTP1NetHTTP: --http1 net/http leaves every plain connection to
// Go's net/http server, as before the fast path (package h1), and the
// answers are the same: keep-alive GETs, a POST with a body, HEAD.
func TestHTTP1NetHTTP(t *testing.T) {
	for _, engine := range []string{"net/http", "corral"} {
		s := startApp(t, nil, "-w", "1", "--http1", engine)
		for i := 0; i < 3; i++ {
			if code, body := s.get("/length"); code != 200 || body != "hello" {
				t.Errorf("--http1 %s: GET /length = %d %q", engine, code, body)
			}
		}
		if code, body := s.do(http.MethodPost, "/echo", strings.NewReader("a body"), nil); code != 200 || body != "a body" {
			t.Errorf("--http1 %s: POST /echo = %d %q", engine, code, body)
		}
		if code, body := s.do(http.MethodHead, "/length", nil, nil); code != 200 || body != "" {
			t.Errorf("--http1 %s: HEAD /length = %d %q", engine, code, body)
		}
	}
}

// TestScriptName: an app mounted under a prefix (SCRIPT_NAME in the
// environment, as with gunicorn) sees the prefix in SCRIPT_NAME and the
// rest of the path in PATH_INFO.
func TestScriptName(t *testing.T) {
	s := startApp(t, nil, "-w", "1", "-e", "SCRIPT_NAME=/mount/")
	env := envOf(t, s, "/mount/env", nil)
	if env["SCRIPT_NAME"] != "/mount" || env["PATH_INFO"] != "/env" {
		t.Errorf("GET /mount/env: SCRIPT_NAME %q PATH_INFO %q, want /mount and /env", env["SCRIPT_NAME"], env["PATH_INFO"])
	}
	// Outside the mount the whole path is passed on, as gunicorn does.
	if env = envOf(t, s, "/env", nil); env["PATH_INFO"] != "/env" {
		t.Errorf("GET /env outside the mount: PATH_INFO %q, want /env", env["PATH_INFO"])
	}
}

func TestPathDecoding(t *testing.T) {
	s := startApp(t, nil, "-w", "1")
	cases := []struct {
		raw  string
		want []byte
	}{
		{"/caf%C3%A9", []byte("/café")},
		{"/a%2Fb", []byte("/a/b")},
		{"/sp%20ace", []byte("/sp ace")},
		{"/%E2%82%AC", []byte("/€")},
		{"/latin%E9", []byte{'/', 'l', 'a', 't', 'i', 'n', 0xe9}},
	}
	for _, c := range cases {
		env := envRaw(t, s, "/env"+c.raw)
		got := toBytes(env["path_bytes"])
		if want := append([]byte("/env"), c.want...); !bytes.Equal(got, want) {
			t.Errorf("PATH_INFO bytes for %s = %q, want %q", c.raw, got, want)
		}
	}
}

// envRaw fetches the environ the app sees for a raw request path under
// /env (the app answers its environ for any path starting with /env).
func envRaw(t *testing.T, s *server, rawPath string) map[string]any {
	t.Helper()
	out := s.raw([]byte("GET "+rawPath+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 5*time.Second)
	if statusOf(out) != 200 {
		t.Fatalf("GET %s: %s", rawPath, out)
	}
	body := bodyOf(t, out)
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("GET %s: %v: %q", rawPath, err, body)
	}
	return env
}

// bodyOf decodes the body of the first response in raw server output.
func bodyOf(t *testing.T, raw string) string {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("parse response: %v\n%s", err, raw)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response body: %v\n%s", err, raw)
	}
	return string(b)
}

func toBytes(v any) []byte {
	var out []byte
	if a, ok := v.([]any); ok {
		for _, x := range a {
			out = append(out, byte(x.(float64)))
		}
	}
	return out
}

func TestRepeatedHeaders(t *testing.T) {
	s := startApp(t, nil, "-w", "1")
	out := s.raw([]byte("GET /env HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\nCookie: a=1\r\nCookie: b=2\r\nConnection: close\r\n\r\n"), 5*time.Second)
	body := bodyOf(t, out)
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if env["HTTP_X_A"] != "1, 2" {
		t.Errorf("HTTP_X_A = %q, want %q", env["HTTP_X_A"], "1, 2")
	}
	if env["HTTP_COOKIE"] != "a=1; b=2" {
		t.Errorf("HTTP_COOKIE = %q, want %q", env["HTTP_COOKIE"], "a=1; b=2")
	}
	resp, err := http.Get(s.url + "/repeat")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("Set-Cookie = %q, want [a=1 b=2]", got)
	}
}

func TestBodies(t *testing.T) {
	s := startApp(t, nil, "-w", "2")
	code, body := s.do(http.MethodPost, "/echo", strings.NewReader("hello body"), nil)
	if code != 200 || body != "hello body" {
		t.Fatalf("echo = %d %q", code, body)
	}
	code, body = s.do(http.MethodPost, "/lines", strings.NewReader("a\nb\nc"), nil)
	if code != 200 || body != "3" {
		t.Fatalf("lines = %d %q", code, body)
	}

	// 10 MB, chunked (the length is unknown to the client library), pulled
	// by the worker in READ/DATA rounds.
	data := make([]byte, 10<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	sum := sha256.Sum256(data)
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(data); off += 100_000 {
			_, _ = pw.Write(data[off:min(off+100_000, len(data))])
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/digest", pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if req.TransferEncoding == nil && req.ContentLength != -1 && req.ContentLength != 0 {
		t.Fatalf("request was not chunked")
	}
	var got struct {
		Length        int    `json:"length"`
		Sha256        string `json:"sha256"`
		ContentLength string `json:"content_length"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Length != len(data) || got.Sha256 != hex.EncodeToString(sum[:]) {
		t.Errorf("digest = %+v, want length %d sha256 %x", got, len(data), sum)
	}
	if got.ContentLength != fmt.Sprint(len(data)) {
		t.Errorf("CONTENT_LENGTH for the chunked upload = %q, want the decoded length %d", got.ContentLength, len(data))
	}
}

func TestStreaming(t *testing.T) {
	s := startApp(t, nil, "-w", "1")
	marker := filepath.Join(t.TempDir(), "go-on")
	resp, err := http.Get(s.url + "/stream?" + marker)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if te := resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
		t.Errorf("Transfer-Encoding = %v, want chunked", te)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	// The app is now blocked until the marker exists: the first chunk
	// reached us before the generator finished.
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestWriteCallableAndLength(t *testing.T) {
	s := startApp(t, nil, "-w", "1")
	if code, body := s.get("/write"); code != 200 || body != "written returned" {
		t.Errorf("write() = %d %q", code, body)
	}
	resp, err := http.Get(s.url + "/length")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ContentLength != 5 || string(b) != "hello" {
		t.Errorf("Content-Length %d body %q", resp.ContentLength, b)
	}
}

func TestHead(t *testing.T) {
	s := startApp(t, nil, "-w", "1")
	out := s.raw([]byte("HEAD /length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 5*time.Second)
	if statusOf(out) != 200 || !strings.Contains(out, "Content-Length: 5\r\n") {
		t.Fatalf("HEAD answer lacks status 200 or Content-Length: 5:\n%s", out)
	}
	if _, body, _ := strings.Cut(out, "\r\n\r\n"); body != "" {
		t.Errorf("HEAD answer has a body: %q", body)
	}
}

func TestKeepAlive(t *testing.T) {
	s := startApp(t, nil, "-w", "1")
	reused := 0
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/pid", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) {
				if info.Reused {
					reused++
				}
			},
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if reused != 4 {
		t.Errorf("%d of 4 follow-up requests reused the connection", reused)
	}
}

func TestExpectContinue(t *testing.T) {
	s := startApp(t, nil, "-w", "1")
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("interim answer %q, %v; want 100 Continue", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // blank line after the 100
		t.Fatal(err)
	}
	fmt.Fprint(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Errorf("final answer %d %q", resp.StatusCode, b)
	}

	// A body over the limit is refused before the client sends it.
	s2 := startApp(t, nil, "-w", "1", "--max-body-size", "10")
	out := s2.raw([]byte("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"), 3*time.Second)
	if statusOf(out) != 413 {
		t.Errorf("oversized body with Expect: got %q, want 413 without 100 Continue", out)
	}
}

func TestMalformedAndOversized(t *testing.T) {
	t.Parallel() // long and mostly waiting: overlaps the other parallel tests (harness_test.go)
	calls := filepath.Join(t.TempDir(), "calls")
	s := startApp(t, []string{"CALLS_FILE=" + calls}, "-w", "1", "--max-body-size", "1000",
		"--limit-request-line", "200", "--limit-request-fields", "10", "--limit-request-field_size", "100")
	cases := []struct {
		name string
		req  string
		want int
	}{
		{"garbage", "HELLO\r\n\r\n", 400},
		{"bad version", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505},
		{"long uri", "GET /" + strings.Repeat("a", 300) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
		{"too many fields", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: 1\r\n", 20) + "\r\n", 431},
		{"long field", "GET / HTTP/1.1\r\nHost: x\r\nX-A: " + strings.Repeat("b", 200) + "\r\n\r\n", 431},
		{"huge head", "GET / HTTP/1.1\r\nHost: x\r\nX-A: " + strings.Repeat("b", 1<<20) + "\r\n\r\n", 431},
		{"body too large", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("x", 5000), 413},
		{"chunked too large", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + strings.Repeat("x", 2000) + "\r\n0\r\n\r\n", 413},
		{"bad chunk", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400},
		{"underscore header", "GET / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\n\r\n", 400},
		{"NUL in path", "GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CL and TE", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
	}
	for _, c := range cases {
		out := s.raw([]byte(c.req), 3*time.Second)
		if got := statusOf(out); got != c.want {
			t.Errorf("%s: status %d, want %d:\n%.300s", c.name, got, c.want, out)
		}
		if _, body, _ := strings.Cut(out, "\r\n\r\n"); len(body) > 200 {
			t.Errorf("%s: error body is %d bytes, want a short one", c.name, len(body))
		}
	}
	if b, _ := os.ReadFile(calls); len(b) != 0 {
		t.Errorf("refused requests reached the app:\n%s", b)
	}
	if code, _ := s.get("/pid"); code != 200 {
		t.Errorf("server unwell after bad input: %d", code)
	}
}

func TestAppException(t *testing.T) {
	s := startApp(t, nil, "-w", "1")
	code, body := s.get("/error")
	if code != 500 || strings.Contains(body, "boom") {
		t.Fatalf("exception answer %d %q; want 500 with a generic body", code, body)
	}
	eventually(t, 5*time.Second, "traceback in the error log", func() bool {
		log := s.log.String()
		return strings.Contains(log, "Traceback (most recent call last)") && strings.Contains(log, "RuntimeError: boom from the test app")
	})
	if code, _ := s.get("/pid"); code != 200 {
		t.Errorf("after the exception: %d", code)
	}
}

func TestWorkerCrash(t *testing.T) {
	s := startApp(t, nil, "-w", "1")
	_, pid1 := s.get("/pid")
	if code, _ := s.get("/crash"); code != 502 {
		t.Fatalf("crash answer %d, want 502", code)
	}
	var pid2 string
	eventually(t, 20*time.Second, "a replacement worker", func() bool {
		code, body := s.get("/pid")
		pid2 = body
		return code == 200
	})
	if pid1 == pid2 {
		t.Errorf("same worker pid %s after the crash", pid1)
	}
}

func TestQueueFull(t *testing.T) {
	s := startApp(t, nil, "-w", "1", "--max-queue", "1", "--queue-timeout", "30")
	var wg sync.WaitGroup
	codes := make(chan int, 3)
	for i := 0; i < 2; i++ { // one runs, one waits in the queue
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := s.get("/slow?2")
			codes <- code
		}()
	}
	time.Sleep(500 * time.Millisecond)
	resp, err := http.Get(s.url + "/pid")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third request: %d Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("a queued request got %d", c)
		}
	}

	s2 := startApp(t, nil, "-w", "1", "--queue-timeout", "0.3")
	go s2.get("/slow?2")
	time.Sleep(300 * time.Millisecond)
	if code, _ := s2.get("/pid"); code != 503 {
		t.Errorf("after the queue timeout: %d, want 503", code)
	}
}

func TestGracefulShutdown(t *testing.T) {
	s := startApp(t, nil, "-w", "2")
	var wg sync.WaitGroup
	results := make(chan string, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(s.url + "/slow?1.5")
			if err != nil {
				results <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- fmt.Sprintf("%d %s", resp.StatusCode, b)
		}()
	}
	time.Sleep(500 * time.Millisecond)
	s.signal(syscall.SIGTERM)
	wg.Wait()
	close(results)
	for r := range results {
		if r != "200 slept" {
			t.Errorf("in-flight request during shutdown: %s", r)
		}
	}
	if code := s.wait(20 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if _, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		t.Error("still accepting connections after shutdown")
	}
}

func TestNoOrphansAfterSIGKILL(t *testing.T) {
	s := startApp(t, nil, "-w", "3")
	eventually(t, 10*time.Second, "three workers", func() bool { return len(s.workerPids()) == 3 })
	pids := s.workerPids()
	s.signal(syscall.SIGKILL)
	s.wait(10 * time.Second)
	for _, pid := range pids {
		if err := waitGone(pid, 10*time.Second); err != nil {
			t.Errorf("worker %d outlived its master: %v", pid, err)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
