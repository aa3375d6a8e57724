package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The ASGI apps of these tests are in testdata: asgi_fastapi.py (FastAPI,
// with lifespan state and WebSockets), asgi_raw.py (a plain ASGI app that
// reports its scope), asgi_starlette.py, asgi_lifespan_fail.py; and the
// Django example project's mysite.asgi.

// startFastAPI runs corral on the FastAPI app; its markers go to the
// returned directory.
func startFastAPI(t *testing.T, args ...string) (*server, string) {
	t.Helper()
	dir := t.TempDir()
	s := start(t, []string{"CORRAL_IT_DIR=" + dir}, append(args, testdata("asgi_fastapi.py")+":app")...)
	return s, dir
}

// waitMark waits for the FastAPI app's marker file and returns its text.
func waitMark(t *testing.T, dir, name string) string {
	t.Helper()
	var b []byte
	eventually(t, 10*time.Second, "the app's marker "+name, func() bool {
		var err error
		b, err = os.ReadFile(filepath.Join(dir, name))
		return err == nil
	})
	return string(b)
}

func getJSON(t *testing.T, s *server, path string, v any) int {
	t.Helper()
	code, body := s.get(path)
	if err := json.Unmarshal([]byte(body), v); err != nil && code == 200 {
		t.Fatalf("GET %s: %d %q: %v", path, code, body, err)
	}
	return code
}

func TestASGIFastAPI(t *testing.T) {
	s, dir := startFastAPI(t, "-w", "2")
	if !strings.Contains(s.log.String(), "serving an ASGI app") {
		t.Errorf("no ASGI line in the log:\n%s", s.log)
	}
	var hello map[string]any
	if code := getJSON(t, s, "/json", &hello); code != 200 || hello["hello"] != "world" {
		t.Errorf("/json = %d %v", code, hello)
	}

	// Path and query validation.
	var item map[string]any
	if code := getJSON(t, s, "/items/42?q=x&limit=3", &item); code != 200 || item["item_id"] != 42.0 || item["q"] != "x" || item["limit"] != 3.0 {
		t.Errorf("/items/42 = %d %v", code, item)
	}
	for _, path := range []string{"/items/forty-two", "/items/42?limit=many"} {
		if code, body := s.get(path); code != 422 || !strings.Contains(body, "int_parsing") {
			t.Errorf("%s = %d %q, want 422", path, code, body)
		}
	}

	// Bodies: JSON, invalid JSON, and one large enough to be pulled.
	code, body := s.do("POST", "/items", strings.NewReader(`{"name": "pen", "price": 1.25, "tags": ["a"]}`),
		map[string]string{"Content-Type": "application/json"})
	if code != 200 || !strings.Contains(body, `"total":2.5`) {
		t.Errorf("POST /items = %d %q", code, body)
	}
	if code, _ := s.do("POST", "/items", strings.NewReader(`{"name": 1`), map[string]string{"Content-Type": "application/json"}); code != 422 {
		t.Errorf("POST /items with broken JSON = %d, want 422", code)
	}
	big := make([]byte, 5<<20+3)
	_, _ = rand.Read(big)
	sum := sha256.Sum256(big)
	var up map[string]any
	code, body = s.do("POST", "/upload", bytes.NewReader(big), nil)
	if err := json.Unmarshal([]byte(body), &up); err != nil || code != 200 || up["bytes"] != float64(len(big)) || up["sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("POST /upload of 5 MiB = %d %q", code, body)
	}
	if n, _ := up["chunks"].(float64); n < 2 {
		t.Errorf("a 5 MiB body came in %v chunk(s), want it pulled in several", up["chunks"])
	}

	// Lifespan state in every request, from each worker's own startup.
	var st map[string]any
	if code := getJSON(t, s, "/state", &st); code != 200 || st["db"] != fmt.Sprintf("connected by %.0f", st["pid"]) {
		t.Errorf("/state = %d %v", code, st)
	}

	// FileResponse.
	if code, body := s.get("/file"); code != 200 || body != "A file served by FileResponse.\n" {
		t.Errorf("/file = %d %q", code, body)
	}

	// Background task: runs after the response.
	if code, _ := s.do("POST", "/background?tag=b1", nil, nil); code != 200 {
		t.Errorf("POST /background = %d", code)
	}
	if got := waitMark(t, dir, "background-b1"); got != "ran" {
		t.Errorf("background task wrote %q", got)
	}

	// StreamingResponse: the first chunk arrives while the app still produces.
	start := time.Now()
	resp, err := http.Get(s.url + "/stream?n=5&ms=200")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	first := time.Since(start)
	rest, _ := io.ReadAll(br)
	resp.Body.Close()
	if err != nil || line != "chunk 0\n" || string(rest) != "chunk 1\nchunk 2\nchunk 3\nchunk 4\n" {
		t.Errorf("/stream: %q %q %v", line, rest, err)
	}
	if first > 600*time.Millisecond || time.Since(start) < 800*time.Millisecond {
		t.Errorf("/stream: first chunk after %v, all after %v: not streamed", first, time.Since(start))
	}

	// A violation by a raw ASGI app: 500 and one log line naming it.
	if code, _ := s.get("/violation/x"); code != 500 {
		t.Errorf("/violation = %d, want 500", code)
	}
	eventually(t, 5*time.Second, "the violation in the log", func() bool {
		return strings.Contains(s.log.String(), "ASGI protocol violation")
	})
	records := 0 // log records; a record's traceback continues on the lines below it
	for _, line := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(line, " ERROR ") && strings.Contains(line, "ASGI protocol violation") {
			records++
		}
	}
	if records != 1 {
		t.Errorf("%d log records name the violation, want 1:\n%s", records, s.log)
	}
	if code := getJSON(t, s, "/json", &hello); code != 200 {
		t.Errorf("after the violation: %d", code)
	}

	// Lifespan shutdown runs in every worker at exit.
	pids := s.workerPids()
	s.stop()
	for _, pid := range pids {
		waitMark(t, dir, fmt.Sprintf("shutdown-%d", pid))
	}
}

func TestASGISSEDisconnectEndsTheLoop(t *testing.T) {
	s, dir := startFastAPI(t, "-w", "1")
	resp, err := http.Get(s.url + "/sse?tag=s1")
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: tick %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		_, _ = br.ReadString('\n')
	}
	resp.Body.Close()
	waitMark(t, dir, "sse-ended-s1")
	eventually(t, 5*time.Second, "the stream to leave the worker", func() bool {
		return strings.Contains(s.status(t), `"in_flight": 0`)
	})
}

// status returns /status from the admin API as JSON text.
func (s *server) status(t *testing.T) string {
	t.Helper()
	out, code := runCorral(t, "status", "--json", "--admin-bind", s.adminSock(t))
	if code != 0 && code != 3 {
		t.Fatalf("corral status: %d %s", code, out)
	}
	return out
}

// adminSock is the admin socket the server announced in its log.
func (s *server) adminSock(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(s.log.String(), "\n") {
		if i := strings.Index(line, "admin API listening address="); i >= 0 {
			return strings.Fields(line[i+len("admin API listening address="):])[0]
		}
	}
	t.Fatalf("no admin socket in the log:\n%s", s.log)
	return ""
}

func TestASGIScope(t *testing.T) {
	s := start(t, []string{"SCRIPT_NAME=/mnt"}, "-w", "1", testdata("asgi_raw.py")+":app")
	req, _ := http.NewRequest("POST", s.url+"/mnt/caf%C3%A9/a%2Fb?x=1&y=%20", strings.NewReader("payload"))
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sc map[string]struct {
		Type  string          `json:"type"`
		Value json.RawMessage `json:"value"`
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(raw, &sc); err != nil {
		t.Fatalf("%d %s: %v", resp.StatusCode, raw, err)
	}
	str := func(k string) string {
		var v string
		_ = json.Unmarshal(sc[k].Value, &v)
		return v
	}
	types := map[string]string{
		"type": "str", "asgi": "dict", "http_version": "str", "method": "str", "scheme": "str", "path": "str",
		"raw_path": "bytes", "query_string": "bytes", "root_path": "str", "headers": "list", "client": "tuple",
		"server": "tuple", "extensions": "dict",
	}
	for k, want := range types {
		if got := sc[k].Type; got != want && !(want == "tuple" && got == "list") {
			t.Errorf("scope[%q] is %s, want %s", k, got, want)
		}
	}
	for k, want := range map[string]string{
		"type": "http", "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/mnt/café/a/b",
		"raw_path": "/mnt/caf%C3%A9/a%2Fb", "query_string": "x=1&y=%20", "root_path": "/mnt", "body": "payload",
	} {
		if got := str(k); got != want {
			t.Errorf("scope[%q] = %q, want %q", k, got, want)
		}
	}
	h := string(sc["headers"].Value)
	for _, want := range []string{`"x-multi"`, `"one"`, `"two"`, `"host"`, `"content-type"`} {
		if !strings.Contains(h, want) {
			t.Errorf("headers %s lack %s", h, want)
		}
	}
	if strings.Index(h, `"one"`) > strings.Index(h, `"two"`) {
		t.Errorf("repeated header values out of order: %s", h)
	}
	if c := string(sc["client"].Value); !strings.Contains(c, `"127.0.0.1"`) || !strings.Contains(c, `"int"`) {
		t.Errorf("client %s", c)
	}
	if sv := string(sc["server"].Value); !strings.Contains(sv, fmt.Sprintf(`%q`, "127.0.0.1")) {
		t.Errorf("server %s", sv)
	}
	for _, ext := range []string{"http.response.trailers", "http.response.early_hint", "http.response.pathsend"} {
		if !strings.Contains(string(sc["extensions"].Value), ext) {
			t.Errorf("extensions %s lack %s", sc["extensions"].Value, ext)
		}
	}
	if v := string(sc["asgi"].Value); !strings.Contains(v, `"3.0"`) {
		t.Errorf("asgi %s", v)
	}

	// pathsend, trailers, early hints.
	if code, body := s.get("/pathsend"); code != 200 || body != "A file served by FileResponse.\n" {
		t.Errorf("/pathsend = %d %q", code, body)
	}
	resp, err = http.Get(s.url + "/trailers")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "body with trailers" || resp.Trailer.Get("X-Checksum") != "c0ffee" {
		t.Errorf("/trailers: %q, trailers %v", b, resp.Trailer)
	}
	var hints []textproto.MIMEHeader
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		if code == 103 {
			hints = append(hints, h)
		}
		return nil
	}})
	req, _ = http.NewRequestWithContext(ctx, "GET", s.url+"/hints", nil)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(hints) != 1 || !strings.Contains(hints[0].Get("Link"), "rel=preload") || resp.StatusCode != 200 {
		t.Errorf("/hints: %d, hints %v", resp.StatusCode, hints)
	}
}

func TestASGIStarletteAndDjango(t *testing.T) {
	s := start(t, nil, "-w", "1", testdata("asgi_starlette.py")+":app")
	req, _ := http.NewRequest("GET", s.url+"/user/ada", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "user ada" || resp.Header.Get("X-Stamp") != "starlette" {
		t.Errorf("Starlette /user/ada = %d %q %v", resp.StatusCode, b, resp.Header)
	}
	if code, body := s.do("POST", "/echo", strings.NewReader("raw \x00 bytes"), nil); code != 200 || body != "raw \x00 bytes" {
		t.Errorf("Starlette /echo = %d %q", code, body)
	}
	c := dialWS(t, s, "/chat", nil)
	wsRoundTrip(t, c, websocket.MessageText, []byte("shout"), []byte("SHOUT"))
	_ = c.Close(websocket.StatusNormalClosure, "")

	d := start(t, nil, "-w", "1", "--chdir", "examples/djangoproject", "mysite.asgi:application")
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/polls/", "", 200, `"questions"`},
		{"GET", "/polls/1/", "", 200, `"What's new?"`},
		{"GET", "/polls/9/", "", 404, ""},
		{"GET", "/archive/2024/", "", 200, `{"year": 2024}`},
		{"POST", "/echo/", "raw body \x00 bytes", 200, "raw body \x00 bytes"},
	} {
		code, body := d.do(tc.method, tc.path, strings.NewReader(tc.body), nil)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("Django ASGI %s %s = %d %q, want %d with %q", tc.method, tc.path, code, body, tc.code, tc.want)
		}
	}
}

func TestASGILifespanStartupFailure(t *testing.T) {
	out, code := runCorral(t, "-b", "127.0.0.1:"+itoa(freePort(t)), "--python", pythonBin, "-w", "2", "--lifespan", "on",
		testdata("asgi_lifespan_fail.py")+":app")
	if code == 0 || !strings.Contains(out, "database unreachable at db:5432") {
		t.Errorf("exit %d, want non-zero with the app's message:\n%s", code, out)
	}
}

func TestASGICheckCommand(t *testing.T) {
	out, code := runCorral(t, "check", "--python", pythonBin, testdata("asgi_fastapi.py")+":app")
	if code != 0 || !strings.Contains(out, "OK (ASGI 3.0") {
		t.Errorf("check of the FastAPI app: exit %d:\n%s", code, out)
	}
	out, code = runCorral(t, "check", "--python", pythonBin, "--interface", "wsgi", testdata("asgi_fastapi.py")+":app")
	if code == 0 || !strings.Contains(out, "ASGI") {
		t.Errorf("check with --interface wsgi: exit %d:\n%s", code, out)
	}
	out, code = runCorral(t, "check", "--python", pythonBin, "-k", "uvicorn.workers.UvicornWorker", testdata("asgi_raw.py")+":app")
	if code != 0 || !strings.Contains(out, "OK (ASGI") {
		t.Errorf("check with -k uvicorn.workers.UvicornWorker: exit %d:\n%s", code, out)
	}
}

func dialWS(t *testing.T, s *server, path string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+s.addr+path, opts)
	if err != nil {
		t.Fatalf("WebSocket %s: %v %v", path, err, resp)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func wsRoundTrip(t *testing.T, c *websocket.Conn, typ websocket.MessageType, msg, want []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	gt, got, err := c.Read(ctx)
	if err != nil || gt != typ || !bytes.Equal(got, want) {
		t.Fatalf("reply to %d bytes: type %v, %d bytes, %v", len(msg), gt, len(got), err)
	}
}

func wsClosed(t *testing.T, c *websocket.Conn) websocket.CloseError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("read: %v, want a close frame", err)
		}
		return ce
	}
}

func TestASGIWebSockets(t *testing.T) {
	s, dir := startFastAPI(t, "-w", "2", "--ws-max-size", "2M")
	ctx := context.Background()

	// Text, binary, 1 MB both ways, a subprotocol, compression.
	c, resp, err := websocket.Dial(ctx, "ws://"+s.addr+"/ws/echo?tag=t1", &websocket.DialOptions{
		Subprotocols: []string{"chat.v1"}, CompressionMode: websocket.CompressionContextTakeover})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	if c.Subprotocol() != "chat.v1" || !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Errorf("handshake: subprotocol %q, extensions %q", c.Subprotocol(), resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	wsRoundTrip(t, c, websocket.MessageText, []byte("héllo"), []byte("héllo"))
	wsRoundTrip(t, c, websocket.MessageBinary, []byte{0, 1, 2, 255}, []byte{0, 1, 2, 255})
	mb := make([]byte, 1<<20)
	_, _ = rand.Read(mb)
	wsRoundTrip(t, c, websocket.MessageBinary, mb, mb)
	if err := c.Write(ctx, websocket.MessageText, []byte("big")); err != nil { // the app sends 1 MB
		t.Fatal(err)
	}
	if typ, got, err := c.Read(ctx); err != nil || typ != websocket.MessageBinary || !bytes.Equal(got, bytes.Repeat([]byte("x"), 1<<20)) {
		t.Errorf("1 MB from the app: %v, %d bytes, %v", typ, len(got), err)
	}
	// Fragmented by the client: the app sees one message.
	w, _ := c.Writer(ctx, websocket.MessageText)
	for _, p := range []string{"frag", "men", "ted"} {
		_, _ = w.Write([]byte(p))
	}
	_ = w.Close()
	if _, got, err := c.Read(ctx); err != nil || string(got) != "fragmented" {
		t.Errorf("fragmented message: %q %v", got, err)
	}
	// Server-initiated close with code and reason.
	_ = c.Write(ctx, websocket.MessageText, []byte("close"))
	if ce := wsClosed(t, c); ce.Code != 4001 || ce.Reason != "bye from the app" {
		t.Errorf("app's close: %v, want 4001 bye from the app", ce)
	}

	// Client-initiated close: the app hears code and reason.
	c = dialWS(t, s, "/ws/echo?tag=t2", nil)
	wsRoundTrip(t, c, websocket.MessageText, []byte("x"), []byte("x"))
	_ = c.Close(4242, "client done")
	if got := waitMark(t, dir, "ws-disconnect-t2"); got != "4242 client done" {
		t.Errorf("the app heard %q, want 4242 client done", got)
	}

	// Over --ws-max-size: 1009; invalid UTF-8: 1007.
	c = dialWS(t, s, "/ws/echo?tag=t3", nil)
	_ = c.Write(ctx, websocket.MessageBinary, make([]byte, 2<<20+1))
	if ce := wsClosed(t, c); ce.Code != websocket.StatusMessageTooBig {
		t.Errorf("oversized message: %v, want 1009", ce)
	}
	if got := waitMark(t, dir, "ws-disconnect-t3"); !strings.HasPrefix(got, "1009") {
		t.Errorf("the app heard %q, want 1009", got)
	}
	c = dialWS(t, s, "/ws/echo?tag=t4", nil)
	_ = c.Write(ctx, websocket.MessageText, []byte("not \xc3\x28 utf-8"))
	if ce := wsClosed(t, c); ce.Code != websocket.StatusInvalidFramePayloadData {
		t.Errorf("invalid UTF-8: %v, want 1007", ce)
	}

	// Refusals: close before accept is 403, a denial response is itself.
	if _, resp, err := websocket.Dial(ctx, "ws://"+s.addr+"/ws/refuse", nil); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("/ws/refuse: %v %v, want 403", resp, err)
	}
	_, resp, err = websocket.Dial(ctx, "ws://"+s.addr+"/ws/deny", nil)
	if err == nil && resp != nil {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("/ws/deny accepted: %d %q", resp.StatusCode, b)
	} else if resp == nil || resp.StatusCode != 401 {
		t.Errorf("/ws/deny: %v %v, want 401", resp, err)
	} else if b, _ := io.ReadAll(resp.Body); string(b) != "no entry" {
		t.Errorf("/ws/deny body %q", b)
	}

	// Counted in /status while open.
	c = dialWS(t, s, "/ws/echo?tag=t5", nil)
	wsRoundTrip(t, c, websocket.MessageText, []byte("x"), []byte("x"))
	var doc struct {
		Interface  string `json:"interface"`
		WebSockets struct {
			Open int `json:"open"`
		} `json:"websockets"`
		Workers []struct {
			WebSockets int `json:"websockets"`
		} `json:"workers"`
	}
	st := s.status(t)
	if err := json.Unmarshal([]byte(st), &doc); err != nil || doc.Interface != "asgi" || doc.WebSockets.Open != 1 ||
		doc.Workers[0].WebSockets+doc.Workers[1].WebSockets != 1 {
		t.Errorf("/status with one socket open: %v\n%s", err, st)
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
}

func TestASGIWebSocketWorkerCrash(t *testing.T) {
	s, _ := startFastAPI(t, "-w", "1")
	c := dialWS(t, s, "/ws/crash", nil)
	if _, msg, err := c.Read(context.Background()); err != nil || string(msg) != "about to crash" {
		t.Fatalf("first message: %q %v", msg, err)
	}
	if ce := wsClosed(t, c); ce.Code != websocket.StatusInternalError {
		t.Errorf("worker crash: %v, want 1011", ce)
	}
	eventually(t, 10*time.Second, "a replacement worker", func() bool { return len(s.workerPids()) == 2 })
	if code, _ := s.get("/pid"); code != 200 {
		t.Errorf("after the crash: %d", code)
	}
}

func TestASGIWebSocketGracefulShutdown(t *testing.T) {
	s, dir := startFastAPI(t, "-w", "1", "--graceful-timeout", "1")
	c := dialWS(t, s, "/ws/echo?tag=g", nil)
	wsRoundTrip(t, c, websocket.MessageText, []byte("x"), []byte("x"))
	begun := time.Now()
	s.signal(15)
	if ce := wsClosed(t, c); ce.Code != websocket.StatusGoingAway {
		t.Errorf("shutdown: %v, want 1001", ce)
	}
	if d := time.Since(begun); d < 900*time.Millisecond {
		t.Errorf("closed after %v, before the graceful timeout", d)
	}
	if got := waitMark(t, dir, "ws-disconnect-g"); !strings.HasPrefix(got, "1001") {
		t.Errorf("the app heard %q, want 1001", got)
	}
	if code := s.wait(15 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func TestASGITimeoutCancelsTheTask(t *testing.T) {
	s, dir := startFastAPI(t, "-w", "1", "--timeout", "1")
	_, pid := s.get("/pid")
	started := time.Now()
	if code, _ := s.get("/sleep?tag=t&s=30"); code != 504 {
		t.Errorf("/sleep past --timeout = %d, want 504", code)
	}
	if d := time.Since(started); d > 3*time.Second {
		t.Errorf("504 after %v", d)
	}
	waitMark(t, dir, "cancelled-t")
	if _, again := s.get("/pid"); again != pid {
		t.Errorf("served by %s after the timeout, want the same worker %s", again, pid)
	}
	if !strings.Contains(s.log.String(), "request timed out; its task is cancelled") {
		t.Errorf("no timeout line:\n%s", s.log)
	}
}

func TestASGIBlockedLoopIsReported(t *testing.T) {
	s, _ := startFastAPI(t, "-w", "1", "--timeout", "30")
	done := make(chan int, 1)
	go func() {
		code, _ := s.get("/block?s=2")
		done <- code
	}()
	time.Sleep(300 * time.Millisecond)
	// A request beside the blocked one waits for the loop.
	started := time.Now()
	if code, _ := s.get("/pid"); code != 200 {
		t.Errorf("/pid beside a blocked loop = %d", code)
	}
	waited := time.Since(started)
	if code := <-done; code != 200 {
		t.Errorf("/block = %d", code)
	}
	if waited < time.Second {
		t.Errorf("a request on a blocked loop took %v, want it to wait for the loop", waited)
	}
	eventually(t, 10*time.Second, "the blocked loop in the log, with its stack", func() bool {
		log := s.log.String()
		return strings.Contains(log, "event loop blocked; its stacks follow") && strings.Contains(log, "blocking_call") &&
			strings.Contains(log, "event loop answers again")
	})
	if n := len(s.workerPids()); n != 1 {
		t.Errorf("%d workers started; a loop blocked under --timeout is not replaced", n)
	}
}

func TestASGIBlockedLoopPastTimeoutIsReplaced(t *testing.T) {
	s, _ := startFastAPI(t, "-w", "1", "--timeout", "2", "--stuck-after", "0")
	go s.get("/block?s=60")
	eventually(t, 15*time.Second, "the blocked worker's replacement", func() bool {
		return strings.Contains(s.log.String(), "event loop blocked past --timeout") && len(s.workerPids()) == 2
	})
	if code, _ := s.get("/pid"); code != 200 {
		t.Errorf("after the replacement: %d", code)
	}
}

// TestASGISlowClients: 400 connections that trickle their request heads
// hold no worker connection: with 2 connections per worker, requests go
// on at once.
func TestASGISlowClients(t *testing.T) {
	s, _ := startFastAPI(t, "-w", "1", "--worker-connections", "2", "--header-timeout", "30", "--max-connections", "1000")
	var conns []net.Conn
	for range 400 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		_, _ = io.WriteString(c, "GET /json HTTP/1.1\r\nHost: x\r\n")
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	start := time.Now()
	for range 20 {
		wg.Go(func() {
			if code, _ := s.get("/json"); code != 200 {
				t.Errorf("beside 400 slow clients: %d", code)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("20 requests beside 400 slow clients took %v", d)
	}
	// And slow uploads: a body trickling in holds no worker either.
	for _, c := range conns[:50] {
		_, _ = io.WriteString(c, "Content-Length: 1000\r\n\r\nab")
	}
	if code, _ := s.get("/json"); code != 200 {
		t.Errorf("beside 50 slow uploads: %d", code)
	}
}

func TestASGIOverTLSAndHTTP2(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := newCert(t, "localhost", false).write(t, dir)
	addr := "127.0.0.1:" + itoa(freePort(t))
	s := launch(t, exec.Command(corralBin, "--python", pythonBin, "-w", "1", "-b", addr, "--certfile", certFile, "--keyfile", keyFile,
		testdata("asgi_raw.py")+":app"), 1, nil)
	s.addr = addr
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := cl.Get("https://" + addr + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !strings.Contains(string(b), `"http_version": {"type": "str", "value": "2"}`) ||
		!strings.Contains(string(b), `"scheme": {"type": "str", "value": "https"}`) {
		t.Errorf("HTTP/2: proto %s, scope %s", resp.Proto, b)
	}
	resp, err = cl.Get("https://" + addr + "/trailers")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "body with trailers" || resp.Trailer.Get("X-Checksum") != "c0ffee" {
		t.Errorf("HTTP/2 trailers: %q %v", b, resp.Trailer)
	}
	// wss:// over HTTP/1.1.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wtr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}}
	c, _, err := websocket.Dial(ctx, "wss://"+addr+"/ws", &websocket.DialOptions{HTTPClient: &http.Client{Transport: wtr}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, msg, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(msg), `"scheme": {"type": "str", "value": "wss"}`) {
		t.Errorf("wss scope: %s %v", msg, err)
	}
	if ce := wsClosed(t, c); ce.Code != websocket.StatusNormalClosure {
		t.Errorf("close %v", ce)
	}
}

func TestASGIPreloadAndRecycling(t *testing.T) {
	s, _ := startFastAPI(t, "-w", "2", "--preload", "--max-requests", "5")
	zygotePid(t, s)
	seen := map[string]bool{}
	for deadline := time.Now().Add(15 * time.Second); len(seen) < 4 && time.Now().Before(deadline); {
		var st map[string]any
		// Each forked worker ran its own lifespan startup.
		if code := getJSON(t, s, "/state", &st); code != 200 || st["db"] != fmt.Sprintf("connected by %.0f", st["pid"]) {
			t.Fatalf("/state = %d %v", code, st)
		}
		seen[fmt.Sprint(st["pid"])] = true
	}
	if len(seen) < 4 {
		t.Errorf("with --max-requests 5, requests were served by %d workers, want recycling", len(seen))
	}
	if n := strings.Count(s.log.String(), "reason=max-requests"); n < 2 {
		t.Errorf("%d workers retired for max-requests", n)
	}
}

// TestASGIReloadUnixSocketAndStatic: --reload restarts ASGI workers when
// the app's file changes (an open WebSocket gets 1012); a Unix socket
// listener gives the scope's server as [path, None]; --static files are
// served beside the app.
func TestASGIReloadUnixSocketAndStatic(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "live.py")
	src := func(version string) string {
		return `VERSION = "` + version + `"  # ` + strings.Repeat("x", len(version)) + `

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan")
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    body = ("%s %r" % (VERSION, scope["server"])).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
`
	}
	writeFile(t, app, src("v1"))
	writeFile(t, filepath.Join(dir, "hello.txt"), "static hello\n")
	sock := filepath.Join(dir, "app.sock")
	s := start(t, nil, "-w", "1", "--reload", "--graceful-timeout", "1", "-b", "unix:"+sock,
		"--static", "/assets="+dir, "--chdir", dir, "live:app")
	if _, body := s.get("/"); !strings.HasPrefix(body, "v1 ") {
		t.Fatalf("/ = %q", body)
	}
	if got := fetch(t, unixClient(sock), "http://corral/"); got != fmt.Sprintf("v1 ('%s', None)", sock) && got != fmt.Sprintf("v1 ['%s', None]", sock) {
		t.Errorf("over the Unix socket: %q, want the server as (path, None)", got)
	}
	if code, body := s.get("/assets/hello.txt"); code != 200 || body != "static hello\n" {
		t.Errorf("static file: %d %q", code, body)
	}
	c := dialWS(t, s, "/ws", nil)
	eventually(t, 10*time.Second, "the watcher", func() bool {
		return strings.Contains(s.log.String(), "watching the app's files")
	})
	writeFile(t, app, src("v2"))
	eventually(t, 20*time.Second, "the edited code to answer", func() bool {
		_, body := s.get("/")
		return strings.HasPrefix(body, "v2 ")
	})
	if ce := wsClosed(t, c); ce.Code != websocket.StatusServiceRestart {
		t.Errorf("a WebSocket of the reloaded worker: %v, want 1012", ce)
	}
}

// TestASGIGuard: the guard stands in front of an ASGI app as of a WSGI
// one: a client probing for paths the app does not have is banned, its
// WebSocket handshakes too, while other clients' sockets work.
func TestASGIGuard(t *testing.T) {
	g := startGuard(t, "", []string{"CORRAL_IT_DIR=" + t.TempDir()}, "-w", "1", testdata("asgi_fastapi.py")+":app")
	prober := clientFrom("127.0.0.2")
	for i := range 12 {
		guardFetch(prober, "GET", fmt.Sprintf("%s/wp-admin/%d.php", g.url, i), "", nil)
	}
	if code, _, _ := guardFetch(prober, "GET", g.url+"/json", "", nil); code != 403 && code != 0 {
		t.Errorf("a banned prober's request: %d, want 403 or a closed connection", code)
	}
	dial := func(ip string) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return websocket.Dial(ctx, "ws://"+g.addr+"/ws/echo", &websocket.DialOptions{HTTPClient: clientFrom(ip)})
	}
	if c, _, err := dial("127.0.0.2"); err == nil {
		c.CloseNow()
		t.Error("the banned prober opened a WebSocket")
	}
	c, _, err := dial("127.0.0.3")
	if err != nil {
		t.Fatalf("another client's WebSocket: %v", err)
	}
	defer c.CloseNow()
	wsRoundTrip(t, c, websocket.MessageText, []byte("ok"), []byte("ok"))
}
