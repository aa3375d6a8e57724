package front

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"corral/internal/fakeworker"
	"corral/internal/listen"
	"corral/internal/pool"
	"corral/internal/proto"
	"corral/internal/worker"
)

func TestAppendScope(t *testing.T) {
	h := New(Config{ScriptName: "/api"})
	r := httptest.NewRequest("GET", "http://example.com:8080/api/caf%C3%A9/x?a=1&b=%20", nil)
	r.RemoteAddr = "203.0.113.7:51234"
	r.Header["Cookie"] = []string{"a=1", "b=2"}
	r.Header.Set("X-Token", "t")
	r.Header.Set("Expect", "100-continue")
	r.TransferEncoding = []string{"chunked"}
	r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8000}))
	b := h.appendScope(proto.BeginRequest(nil), r, "https")
	b, err := proto.FinishRequest(b, 1, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	block, _, _ := proto.SplitRequest(b[proto.HeaderSize:])
	fixed, hdrs, err := proto.ParseScope(block)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"GET", "https", "1.1", "/api/caf\xc3\xa9/x", "/api/caf%C3%A9/x", "a=1&b=%20", "/api",
		"203.0.113.7", "51234", "127.0.0.1", "8000"}
	for i := range want {
		if fixed[i] != want[i] {
			t.Errorf("field %d = %q, want %q", i, fixed[i], want[i])
		}
	}
	got := map[string][]string{}
	for i := 0; i+1 < len(hdrs); i += 2 {
		got[hdrs[i]] = append(got[hdrs[i]], hdrs[i+1])
	}
	if len(got["host"]) != 1 || got["host"][0] != "example.com:8080" {
		t.Errorf("host = %q", got["host"])
	}
	if c := got["cookie"]; len(c) != 2 || c[0] != "a=1" || c[1] != "b=2" {
		t.Errorf("cookie = %q, want both values in order", c)
	}
	if got["x-token"] == nil || got["expect"] != nil || got["transfer-encoding"][0] != "chunked" {
		t.Errorf("headers %q", hdrs)
	}

	// HTTP/2, a Unix socket, no client address.
	r = httptest.NewRequest("POST", "/p", nil)
	r.ProtoMajor, r.ProtoMinor, r.RemoteAddr = 2, 0, "@"
	r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.UnixAddr{Name: "/run/app.sock", Net: "unix"}))
	b, _ = proto.FinishRequest(New(Config{}).appendScope(proto.BeginRequest(nil), r, "http"), 1, 0, nil)
	block, _, _ = proto.SplitRequest(b[proto.HeaderSize:])
	fixed, _, _ = proto.ParseScope(block)
	if fixed[2] != "2" || fixed[6] != "" || fixed[7] != "" || fixed[8] != "" || fixed[9] != "/run/app.sock" || fixed[10] != "" {
		t.Errorf("HTTP/2 on a Unix socket: %q", fixed)
	}
}

func TestRawPath(t *testing.T) {
	for in, want := range map[string]string{
		"/a%20b?x=1":                 "/a%20b",
		"/":                          "/",
		"http://h.example/p/q?r":     "/p/q",
		"https://h.example":          "/",
		"http://h.example?x":         "/",
		"/only?":                     "/only",
		"/semi;colon/%2F?z=%3F&a=?b": "/semi;colon/%2F",
	} {
		if got := rawPath(in); got != want {
			t.Errorf("rawPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUTF8Stream(t *testing.T) {
	samples := []string{"", "hello", "café", "日本語のテキスト", "emoji 😀😀 end", "\uFFFD ok", "a\xffb", "\xe2\x82", "\xed\xa0\x80", "x\xf0\x9f\x98"}
	for _, s := range samples {
		for cut := 0; cut <= len(s); cut++ {
			for cut2 := cut; cut2 <= len(s); cut2++ {
				var u utf8Stream
				ok := u.write([]byte(s[:cut])) && u.write([]byte(s[cut:cut2])) && u.write([]byte(s[cut2:])) && u.end()
				if want := utf8.ValidString(s); ok != want {
					t.Fatalf("%q cut at %d,%d: valid = %v, want %v", s, cut, cut2, ok, want)
				}
			}
		}
	}
}

// FuzzUTF8Stream checks the streaming check against utf8.Valid for any
// bytes cut anywhere.
func FuzzUTF8Stream(f *testing.F) {
	f.Add([]byte("café 😀"), uint16(3))
	f.Add([]byte("\xf0\x9f\x98\x80"), uint16(2))
	f.Fuzz(func(t *testing.T, b []byte, cut uint16) {
		c := int(cut) % (len(b) + 1)
		var u utf8Stream
		ok := u.write(b[:c]) && u.write(b[c:]) && u.end()
		if ok != utf8.Valid(b) {
			t.Fatalf("%q cut at %d: %v, want %v", b, c, ok, utf8.Valid(b))
		}
	})
}

// asgiServer is a Handler for fake ASGI workers behind a real listener
// with the framing guard, as corral serves it.
type asgiServer struct {
	url  string
	addr string
	h    *Handler
	p    *pool.Pool
	dir  string
	srv  *http.Server
}

func startASGIServer(t *testing.T, fcfg Config, pcfg pool.Config) *asgiServer {
	t.Helper()
	dir := t.TempDir()
	sp := worker.NewSpawner()
	t.Cleanup(sp.Close)
	if pcfg.Workers == 0 {
		pcfg.Workers = 1
	}
	pcfg.Spawner = sp
	pcfg.KillGrace = 300 * time.Millisecond
	pcfg.Worker = worker.Config{
		Python: os.Args[0], Bootstrap: "fake", Env: append(os.Environ(), fakeworker.Env(fakeworker.ModeASGI, dir)...),
		Boot:   worker.Boot{App: "app:application", WorkerConnections: 50},
		Logger: slog.New(slog.DiscardHandler),
	}
	p := pool.New(pcfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	fcfg.Pool, fcfg.ASGI = p, true
	h := New(fcfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(listen.FramingListener(ln, nil)) }()
	t.Cleanup(func() { srv.Close() })
	return &asgiServer{url: "http://" + ln.Addr().String(), addr: ln.Addr().String(), h: h, p: p, dir: dir, srv: srv}
}

func (s *asgiServer) events(t *testing.T, kind string) []fakeworker.Event {
	t.Helper()
	evs, err := fakeworker.Events(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []fakeworker.Event
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (s *asgiServer) waitEvent(t *testing.T, kind, key, val string) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		for _, e := range s.events(t, kind) {
			if key == "" || e.Args[key] == val {
				return
			}
		}
	}
	t.Fatalf("no event %s %s=%s", kind, key, val)
}

func (s *asgiServer) dial(t *testing.T, path string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+s.addr+path, opts)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", path, err, resp)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	c.SetReadLimit(-1)
	return c
}

func roundTrip(t *testing.T, c *websocket.Conn, typ websocket.MessageType, msg []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	gt, got, err := c.Read(ctx)
	if err != nil || gt != typ || !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes: type %v, %d bytes, %v", len(msg), gt, len(got), err)
	}
}

func closeStatus(t *testing.T, c *websocket.Conn) websocket.CloseError {
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
			t.Fatalf("read: %v, want a close", err)
		}
		return ce
	}
}

func TestWebSocketEchoAndClose(t *testing.T) {
	s := startASGIServer(t, Config{WSCompression: true}, pool.Config{})
	c := s.dial(t, "/ws/echo?sub=chat", &websocket.DialOptions{Subprotocols: []string{"other", "chat"},
		CompressionMode: websocket.CompressionNoContextTakeover})
	if c.Subprotocol() != "chat" {
		t.Errorf("subprotocol %q, want chat", c.Subprotocol())
	}
	roundTrip(t, c, websocket.MessageText, []byte("hello"))
	roundTrip(t, c, websocket.MessageBinary, bytes.Repeat([]byte("compressible "), 100))
	big := make([]byte, 3<<20+17)
	for i := range big {
		big[i] = byte(rand.IntN(256))
	}
	roundTrip(t, c, websocket.MessageBinary, big)
	if st := s.h.WebSocketStats(); st.Open != 1 || st.Opened != 1 {
		t.Errorf("stats %+v, want 1 open", st)
	}
	ctx := context.Background()
	if err := c.Write(ctx, websocket.MessageText, []byte("close")); err != nil {
		t.Fatal(err)
	}
	if ce := closeStatus(t, c); ce.Code != 4000 || ce.Reason != "bye" {
		t.Errorf("close from the app: %v, want 4000 bye", ce)
	}
	for end := time.Now().Add(5 * time.Second); s.h.WebSocketStats().Open != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("socket still counted open: %+v", s.h.WebSocketStats())
		}
	}
}

func TestWebSocketClientClose(t *testing.T) {
	s := startASGIServer(t, Config{}, pool.Config{})
	c := s.dial(t, "/ws/echo", nil)
	roundTrip(t, c, websocket.MessageText, []byte("hi"))
	if err := c.Close(4321, "client leaves"); err != nil {
		t.Errorf("close: %v", err)
	}
	s.waitEvent(t, "ws-close", "code", "4321")
	if e := s.events(t, "ws-close"); e[0].Args["reason"] != "client_leaves" {
		t.Errorf("reason %q", e[0].Args["reason"])
	}
}

func TestWebSocketLimits(t *testing.T) {
	s := startASGIServer(t, Config{WSMaxSize: 1000}, pool.Config{})
	c := s.dial(t, "/ws/echo", nil)
	roundTrip(t, c, websocket.MessageBinary, make([]byte, 1000))
	_ = c.Write(context.Background(), websocket.MessageBinary, make([]byte, 1001))
	if ce := closeStatus(t, c); ce.Code != websocket.StatusMessageTooBig {
		t.Errorf("oversized: %v, want 1009", ce)
	}
	s.waitEvent(t, "ws-close", "code", "1009")

	c = s.dial(t, "/ws/echo", nil)
	_ = c.Write(context.Background(), websocket.MessageText, []byte("bad \xff utf-8"))
	if ce := closeStatus(t, c); ce.Code != websocket.StatusInvalidFramePayloadData {
		t.Errorf("invalid UTF-8: %v, want 1007", ce)
	}
	s.waitEvent(t, "ws-close", "code", "1007")
	if n := len(s.events(t, "ws-recv")); n != 1 {
		t.Errorf("the app got %d messages, want only the valid one", n)
	}
}

func TestWebSocketFragmented(t *testing.T) {
	s := startASGIServer(t, Config{}, pool.Config{})
	c := s.dial(t, "/ws/echo", nil)
	ctx := context.Background()
	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"frag", "men", "ted é"} {
		if _, err := w.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, got, err := c.Read(ctx)
	if err != nil || string(got) != "fragmented é" {
		t.Fatalf("fragmented message: %q %v", got, err)
	}
	if e := s.events(t, "ws-recv"); len(e) != 1 {
		t.Errorf("the app got %d messages, want one whole", len(e))
	}
}

func TestWebSocketHandshakeAnswers(t *testing.T) {
	s := startASGIServer(t, Config{}, pool.Config{})
	ctx := context.Background()
	_, resp, err := websocket.Dial(ctx, "ws://"+s.addr+"/ws/deny", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("denial: %v %v", resp, err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "denied" {
		t.Errorf("denial body %q", b)
	}
	for _, path := range []string{"/ws/close", "/ws/return"} {
		if _, resp, err := websocket.Dial(ctx, "ws://"+s.addr+path, nil); err == nil || resp == nil || resp.StatusCode != 403 {
			t.Errorf("%s: %v %v, want 403", path, resp, err)
		}
	}
	// A broken handshake never reaches the app.
	req, _ := http.NewRequest("GET", s.url+"/ws/echo", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Version", "8")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 426 || resp.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Errorf("version 8: %v %v", resp, err)
	}
	if n := len(s.events(t, "recv")); n != 3 {
		t.Errorf("%d requests reached the worker, want 3", n)
	}
}

func TestWebSocketWorkerCrash(t *testing.T) {
	s := startASGIServer(t, Config{}, pool.Config{})
	c := s.dial(t, "/ws/crash", nil)
	if ce := closeStatus(t, c); ce.Code != websocket.StatusInternalError {
		t.Errorf("worker crash: %v, want 1011", ce)
	}
	c = s.dial(t, "/ws/error", nil)
	if ce := closeStatus(t, c); ce.Code != websocket.StatusInternalError {
		t.Errorf("app error: %v, want 1011", ce)
	}
}

func TestWebSocketShutdown(t *testing.T) {
	s := startASGIServer(t, Config{}, pool.Config{})
	c := s.dial(t, "/ws/hold", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() {
		s.h.ShutdownWebSockets(ctx)
		close(done)
	}()
	if ce := closeStatus(t, c); ce.Code != websocket.StatusGoingAway {
		t.Errorf("shutdown: %v, want 1001", ce)
	}
	s.waitEvent(t, "ws-close", "code", "1001")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ShutdownWebSockets did not return")
	}
	_, resp, err := websocket.Dial(context.Background(), "ws://"+s.addr+"/ws/echo", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("handshake after shutdown: %v %v, want 503", resp, err)
	}
}

func TestWebSocketKeepalive(t *testing.T) {
	s := startASGIServer(t, Config{WSPingInterval: 50 * time.Millisecond, WSPingTimeout: 200 * time.Millisecond}, pool.Config{})
	var pings sync.WaitGroup
	pings.Add(2)
	var n int
	var mu sync.Mutex
	c := s.dial(t, "/ws/echo", &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
		mu.Lock()
		defer mu.Unlock()
		if n++; n <= 2 {
			pings.Done()
		}
		return true
	}})
	readCtx := c.CloseRead(context.Background()) // answers pings
	pings.Wait()
	select {
	case <-readCtx.Done():
		t.Fatal("closed though the client answers pings")
	case <-time.After(300 * time.Millisecond):
	}

	// A client that reads nothing never answers: 1011.
	raw, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, _ = io.WriteString(raw, "GET /ws/hold HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	s.waitEvent(t, "ws-close", "code", "1011")
}

func TestASGIEarlyHintsAndTrailers(t *testing.T) {
	s := startASGIServer(t, Config{}, pool.Config{})
	var hints []textproto.MIMEHeader
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			if code == 103 {
				hints = append(hints, h)
			}
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/hint", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(hints) != 1 || !strings.Contains(hints[0].Get("Link"), "rel=preload") {
		t.Errorf("early hints %v", hints)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Link") != "" {
		t.Errorf("final response %d with Link %q: the hint's headers leaked into it", resp.StatusCode, resp.Header.Get("Link"))
	}

	resp, err = http.Get(s.url + "/trailers")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "body more" || resp.Trailer.Get("X-Checksum") != "abc123" {
		t.Errorf("trailers: body %q, trailer %v, transfer %v", b, resp.Trailer, resp.TransferEncoding)
	}

	// HTTP/1.0 gets no 103.
	raw := s.rawExchange(t, "GET /hint HTTP/1.0\r\n\r\n")
	if strings.Contains(raw, "103") || !strings.HasPrefix(raw, "HTTP/1.0 200") {
		t.Errorf("HTTP/1.0 early hint: %q", raw)
	}
}

func (s *asgiServer) rawExchange(t *testing.T, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, req)
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestASGIStreamAndDisconnect(t *testing.T) {
	s := startASGIServer(t, Config{}, pool.Config{})
	resp, err := http.Get(s.url + "/stream?n=0&ms=50") // endless, part by part
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != "part "+string(rune('0'+i))+"\n" {
			t.Fatalf("part %d: %q %v", i, line, err)
		}
	}
	resp.Body.Close() // the client goes away: the app's loop must end
	s.waitEvent(t, "cancel", "timeout", "false")
	s.waitEvent(t, "done", "how", "aborted")
}

func TestASGITimeout504(t *testing.T) {
	s := startASGIServer(t, Config{}, pool.Config{Timeout: 200 * time.Millisecond})
	resp, err := http.Get(s.url + "/untilcancel")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 504 {
		t.Errorf("status %d, want 504", resp.StatusCode)
	}
	s.waitEvent(t, "cancel", "timeout", "true")
	resp, err = http.Get(s.url + "/violation")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("violation: %d, want 500", resp.StatusCode)
	}
}
