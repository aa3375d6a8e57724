package h1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"corral/internal/listen"
)

// stack is a server under test on 127.0.0.1: net/http alone, or the fast
// path with net/http behind it for the connections it hands over.
type stack struct {
	name     string
	addr     string
	shutdown func(context.Context) error
}

// startNetHTTP serves h with net/http alone.
func startNetHTTP(t testing.TB, h http.Handler, cfg func(*http.Server)) *stack {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveNetHTTP(t, ln, h, cfg)
}

func serveNetHTTP(t testing.TB, ln net.Listener, h http.Handler, cfg func(*http.Server)) *stack {
	hs := &http.Server{Handler: h, ErrorLog: discardLog()}
	if cfg != nil {
		cfg(hs)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return &stack{name: "net/http", addr: ln.Addr().String(), shutdown: hs.Shutdown}
}

// startFast serves h with the fast path, and net/http behind it.
func startFast(t testing.TB, h http.Handler, cfg func(*Server, *http.Server)) *stack {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveFast(t, ln, h, cfg)
}

func serveFast(t testing.TB, ln net.Listener, h http.Handler, cfg func(*Server, *http.Server)) *stack {
	fs := &Server{Handler: h, ErrorLog: discardLog()}
	hs := &http.Server{Handler: h, ErrorLog: discardLog()}
	if cfg != nil {
		cfg(fs, hs)
	}
	hl := fs.Listener(ln)
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(hl)
	}()
	t.Cleanup(func() {
		fs.Close()
		hs.Close()
		<-done
	})
	return &stack{name: "fast path", addr: ln.Addr().String(), shutdown: func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- hs.Shutdown(ctx) }()
		err := fs.Shutdown(ctx)
		if err2 := <-errc; err == nil {
			err = err2
		}
		return err
	}}
}

// echo answers with what it got: method, target, protocol, Host, Close,
// the header fields sorted and the body.
func echo(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s host=%q close=%v cl=%d\n", r.Method, r.RequestURI, r.Proto, r.Host, r.Close, r.ContentLength)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %q\n", k, r.Header[k])
	}
	body, err := io.ReadAll(r.Body)
	fmt.Fprintf(&b, "body %q %v\n", body, err)
	io.WriteString(w, b.String())
}

// TestServerCorpus sends every corpus file, alone and after a request
// the fast path serves, to net/http and to the fast path: the answers
// must be the same bytes (Date masked), whether the fast path served the
// request or handed the connection over.
func TestServerCorpus(t *testing.T) {
	h := http.HandlerFunc(echo)
	t.Run("plain", func(t *testing.T) {
		testServerCorpus(t, startNetHTTP(t, h, nil), startFast(t, h, nil))
	})
	// corral's stack: the framing check beneath, which refuses heads with
	// both Content-Length and Transfer-Encoding; the fast path declines
	// those and net/http, reading through the check, refuses them.
	t.Run("framing", func(t *testing.T) {
		framed := func() net.Listener {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			return listen.FramingListener(ln, nil)
		}
		fast := serveFast(t, framed(), h, nil)
		testServerCorpus(t, serveNetHTTP(t, framed(), h, nil), fast)
		const smuggle = "GET / HTTP/1.1\r\nHost: x\r\n\r\n" +
			"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
		if got := exchangeTCP(t, fast.addr, smuggle); strings.Count(got, "HTTP/1.1 200 OK") != 1 || !strings.Contains(got, "HTTP/1.1 400 Bad Request") {
			t.Errorf("Content-Length with Transfer-Encoding after a served request: got %q, want 200 then 400", got)
		}
	})
}

func testServerCorpus(t *testing.T, ref, fast *stack) {
	files := corpus(t)
	files["smuggle/cl-te"] = []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	files["smuggle/te-http10"] = []byte("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	const first = "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, name := range names {
		for _, prefix := range []string{"", first} {
			raw := prefix + string(files[name])
			want := maskDate(exchangeTCP(t, ref.addr, raw))
			got := maskDate(exchangeTCP(t, fast.addr, raw))
			if sameExchange(got, want) {
				continue
			}
			t.Errorf("%s (prefix %q): answers differ\n got: %q\nwant: %q", name, prefix, abbreviate(got), abbreviate(want))
		}
	}
}

// sameExchange reports whether two exchanges (exchangeTCP's record, Date
// masked) match. A close with unread input may reset the connection
// before the answer is read, on either side: then what was read counts.
func sameExchange(got, want string) bool {
	if got == want {
		return true
	}
	if !strings.Contains(got+want, "(read error") {
		return false
	}
	g, _, _ := strings.Cut(got, "(read error")
	w, _, _ := strings.Cut(want, "(read error")
	return strings.HasPrefix(g, w) || strings.HasPrefix(w, g)
}

// TestServerMixedConnection: requests the fast path serves, then one it
// hands over (a body), then more, on one connection.
func TestServerMixedConnection(t *testing.T) {
	h := http.HandlerFunc(echo)
	raw := "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\r\n" + // the CRLF net/http skips after a POST
		"POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
		"GET /5 HTTP/1.1\r\nHost: x\r\n\r\n"
	want := maskDate(exchangeTCP(t, startNetHTTP(t, h, nil).addr, raw))
	got := maskDate(exchangeTCP(t, startFast(t, h, nil).addr, raw))
	if got != want {
		t.Errorf("answers differ\n got: %q\nwant: %q", got, want)
	}
	if n := strings.Count(want, "HTTP/1.1 200 OK"); n != 5 {
		t.Errorf("net/http answered %d requests, want 5", n)
	}
}

// TestServerUnixSocket: the mixed connection of TestServerMixedConnection
// over a Unix socket (RemoteAddr and half-close differ from TCP's).
func TestServerUnixSocket(t *testing.T) {
	dir := t.TempDir()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "remote %q\n", r.RemoteAddr)
		echo(w, r)
	})
	unix := func(name string) net.Listener {
		ln, err := net.Listen("unix", filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	ref := serveNetHTTP(t, unix("ref.sock"), h, nil)
	fast := serveFast(t, unix("fast.sock"), h, nil)
	raw := "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /3 HTTP/1.0\r\n\r\n"
	want := maskDate(exchange(t, "unix", ref.addr, raw))
	got := maskDate(exchange(t, "unix", fast.addr, raw))
	if got != want {
		t.Errorf("answers differ\n got: %q\nwant: %q", got, want)
	}
	if n := strings.Count(want, " 200 OK"); n != 3 {
		t.Errorf("net/http answered %d requests, want 3: %q", n, want)
	}
}

// stateLog records the ConnState transitions per connection.
type stateLog struct {
	mu sync.Mutex
	m  map[net.Conn][]http.ConnState
	// order of first appearance
	conns []net.Conn
}

func (l *stateLog) hook(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[net.Conn][]http.ConnState{}
	}
	if _, ok := l.m[c]; !ok {
		l.conns = append(l.conns, c)
	}
	l.m[c] = append(l.m[c], st)
}

func (l *stateLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, c := range l.conns {
		parts = append(parts, fmt.Sprint(l.m[c]))
	}
	return strings.Join(parts, " ")
}

func TestServerConnState(t *testing.T) {
	h := http.HandlerFunc(echo)
	for _, c := range []struct {
		name, raw string
		want      string // the fast path's, where it differs from net/http's
	}{
		{"two requests", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", ""},
		{"close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", ""},
		{"nothing sent", "", ""},
		{"bad request", "GET / HTTP/1.1\r\n\r\n", "[new hijacked] [new active closed]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ref, fast stateLog
			rs := startNetHTTP(t, h, func(s *http.Server) { s.ConnState = ref.hook })
			fs := startFast(t, h, func(s *Server, hs *http.Server) { s.ConnState = fast.hook; hs.ConnState = fast.hook })
			exchangeTCP(t, rs.addr, c.raw)
			exchangeTCP(t, fs.addr, c.raw)
			// The last transition may come just after the client saw the close.
			waitFor(t, func() bool {
				return strings.HasSuffix(ref.String(), "closed]") && strings.HasSuffix(fast.String(), "closed]")
			})
			want := ref.String()
			if c.want != "" {
				want = c.want
			}
			if got := fast.String(); got != want {
				t.Errorf("got %s, want %s (net/http: %s)", got, want, ref.String())
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("condition not met within a second")
}

// TestServerPanic: a panic closes the connection after flushing what the
// 4 KiB buffer holds, and is logged with its stack; http.ErrAbortHandler
// is not logged.
func TestServerPanic(t *testing.T) {
	for _, c := range []struct {
		name   string
		value  any
		logged bool
	}{
		{"panic", "boom", true},
		{"abort", http.ErrAbortHandler, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, strings.Repeat("a", 3000)) // past the 2 KiB buffer: the head and a chunk are in the 4 KiB one
				panic(c.value)
			})
			var refLog, fastLog syncBuffer
			rs := startNetHTTP(t, h, func(s *http.Server) { s.ErrorLog = log.New(&refLog, "", 0) })
			fs := startFast(t, h, func(s *Server, _ *http.Server) { s.ErrorLog = log.New(&fastLog, "", 0) })
			const raw = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
			want := maskDate(exchangeTCP(t, rs.addr, raw))
			got := maskDate(exchangeTCP(t, fs.addr, raw))
			if got != want {
				t.Errorf("wire bytes differ\n got: %q\nwant: %q", abbreviate(got), abbreviate(want))
			}
			waitFor(t, func() bool { return (refLog.String() != "") == c.logged && (fastLog.String() != "") == c.logged })
			if c.logged && !strings.Contains(fastLog.String(), "http: panic serving 127.0.0.1:") || !strings.Contains(fastLog.String(), "boom") && c.logged {
				t.Errorf("log: got %q, want net/http's line with the value and stack", fastLog.String())
			}
			if c.logged && !strings.Contains(fastLog.String(), "goroutine ") {
				t.Errorf("log has no stack: %q", fastLog.String())
			}
		})
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestServerClientGone: a client that closes its connection cancels the
// running request's context at once, as with net/http.
func TestServerClientGone(t *testing.T) {
	for _, start := range []func(*testing.T, http.Handler) *stack{
		func(t *testing.T, h http.Handler) *stack { return startNetHTTP(t, h, nil) },
		func(t *testing.T, h http.Handler) *stack { return startFast(t, h, nil) },
	} {
		canceled := make(chan time.Duration, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t0 := time.Now()
			select {
			case <-r.Context().Done():
				canceled <- time.Since(t0)
			case <-time.After(5 * time.Second):
				canceled <- -1
			}
		})
		st := start(t, h)
		c, err := net.Dial("tcp", st.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(50 * time.Millisecond)
		c.Close()
		if d := <-canceled; d < 0 || d > time.Second {
			t.Errorf("%s: context canceled after %v, want at once", st.name, d)
		}
	}
}

// TestServerTimeouts: a head not finished within ReadHeaderTimeout, and
// a connection idle for IdleTimeout, are closed without an answer.
func TestServerTimeouts(t *testing.T) {
	h := http.HandlerFunc(echo)
	const timeout = 200 * time.Millisecond
	for _, c := range []struct {
		name, raw string
		read      bool // read a response first
	}{
		{"header", "GET / HTTP/1.1\r\nHost: x\r\n", false},
		{"header nothing sent", "", false},
		{"idle", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"idle then partial", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGE", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, st := range []*stack{
				startNetHTTP(t, h, func(s *http.Server) { s.ReadHeaderTimeout, s.IdleTimeout = timeout, timeout }),
				startFast(t, h, func(s *Server, hs *http.Server) {
					s.ReadHeaderTimeout, s.IdleTimeout = timeout, timeout
					hs.ReadHeaderTimeout, hs.IdleTimeout = timeout, timeout
				}),
			} {
				conn, err := net.Dial("tcp", st.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				t0 := time.Now()
				io.WriteString(conn, c.raw)
				conn.SetReadDeadline(time.Now().Add(3 * time.Second))
				got, err := io.ReadAll(conn)
				d := time.Since(t0)
				if err != nil {
					t.Errorf("%s: %v after %v, want a close", st.name, err, d)
				}
				if c.read != bytes.Contains(got, []byte("200 OK")) || bytes.Count(got, []byte("HTTP/1.1 2")) > 1 {
					t.Errorf("%s: got %q", st.name, got)
				}
				if d < timeout || d > timeout+time.Second {
					t.Errorf("%s: closed after %v, want about %v", st.name, d, timeout)
				}
			}
		})
	}
}

// TestServerShutdown: Shutdown closes an idle connection at once, lets
// an active one finish its response (with Connection: close), and
// returns once both are gone.
func TestServerShutdown(t *testing.T) {
	for _, kind := range []string{"net/http", "fast path"} {
		t.Run(kind, func(t *testing.T) {
			release := make(chan struct{})
			started := make(chan struct{}, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					started <- struct{}{}
					<-release
				}
				io.WriteString(w, "done "+r.URL.Path)
			})
			var st *stack
			if kind == "net/http" {
				st = startNetHTTP(t, h, nil)
			} else {
				st = startFast(t, h, nil)
			}
			idle := dialRead(t, st.addr, "GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
			active, err := net.Dial("tcp", st.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer active.Close()
			io.WriteString(active, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
			<-started

			done := make(chan error, 1)
			go func() { done <- st.shutdown(context.Background()) }()
			idle.SetReadDeadline(time.Now().Add(2 * time.Second))
			if rest, err := io.ReadAll(idle); err != nil || len(rest) > 0 {
				t.Errorf("idle connection: got %q, %v; want a close", rest, err)
			}
			select {
			case err := <-done:
				t.Fatalf("Shutdown returned %v with a handler running", err)
			case <-time.After(100 * time.Millisecond):
			}
			close(release)
			active.SetReadDeadline(time.Now().Add(2 * time.Second))
			resp, err := io.ReadAll(active)
			if err != nil || !bytes.Contains(resp, []byte("Connection: close\r\n")) || !bytes.HasSuffix(resp, []byte("done /slow")) {
				t.Errorf("active connection: got %q, %v; want the response with Connection: close, then a close", resp, err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			case <-time.After(2 * time.Second):
				t.Error("Shutdown did not return")
			}
		})
	}
}

// dialRead sends raw on a new connection and reads one response head
// and body of a small response; the connection stays open.
func dialRead(t *testing.T, addr, raw string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, raw)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || !bytes.Contains(buf[:n], []byte("200 OK")) {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	return c
}

// TestServerClose: Close ends every connection and the listener.
func TestServerClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &Server{Handler: http.HandlerFunc(echo)}
	hl := fs.Listener(ln)
	idle := dialRead(t, ln.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	fs.Close()
	idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if rest, err := io.ReadAll(idle); err != nil || len(rest) > 0 {
		t.Errorf("after Close: got %q, %v; want a close", rest, err)
	}
	if _, err := hl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: got %v, want net.ErrClosed", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts after Close")
	}
}

// TestServerContext: the request context carries the local address,
// ConnContext's values and the net/http server, as net/http's does.
func TestServerContext(t *testing.T) {
	type key struct{}
	got := make(chan []any, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		got <- []any{ctx.Value(http.LocalAddrContextKey) != nil, ctx.Value(key{}), ctx.Value(http.ServerContextKey) != nil, r.RemoteAddr != ""}
	})
	st := startFast(t, h, func(s *Server, hs *http.Server) {
		s.HTTPServer = hs
		s.ConnContext = func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, key{}, "v") }
	})
	exchangeTCP(t, st.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if g, want := <-got, []any{true, "v", true, true}; !slices.Equal(g, want) {
		t.Errorf("got %v, want %v", g, want)
	}
}

// TestServerHandlerReadDeadline: a read deadline a handler sets cancels
// its request when it passes (net/http's background read fails), and
// the connection goes on with the next request.
func TestServerHandlerReadDeadline(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/deadline" {
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			select {
			case <-r.Context().Done():
				io.WriteString(w, "canceled")
			case <-time.After(2 * time.Second):
				io.WriteString(w, "not canceled")
			}
			return
		}
		io.WriteString(w, "next")
	})
	for _, st := range []*stack{startNetHTTP(t, h, nil), startFast(t, h, nil)} {
		c, err := net.Dial("tcp", st.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /deadline HTTP/1.1\r\nHost: x\r\n\r\n")
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil || !bytes.HasSuffix(buf[:n], []byte("\r\n\r\ncanceled")) {
			t.Errorf("%s: first response %q, %v; want canceled", st.name, buf[:n], err)
		}
		io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
		n, err = c.Read(buf)
		if err != nil || !bytes.HasSuffix(buf[:n], []byte("\r\n\r\nnext")) {
			t.Errorf("%s: second response %q, %v; want next", st.name, buf[:n], err)
		}
	}
}

// FuzzServer sends arbitrary bytes (after a request the fast path serves,
// or alone) to net/http and to the fast path with net/http behind it:
// the answers must be the same bytes, Date masked.
func FuzzServer(f *testing.F) {
	for _, buf := range corpus(f) {
		f.Add(buf, false)
	}
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(s), true)
	}
	// Each path answers by echoing the request; /w writes per its query.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("w") {
		case "big":
			io.WriteString(w, strings.Repeat("b", 5000))
		case "flush":
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
		case "close":
			w.Header().Set("Connection", "close")
		case "204":
			w.WriteHeader(204)
		}
		echo(w, r)
	})
	ref := startNetHTTP(f, h, nil)
	fast := startFast(f, h, nil)
	f.Fuzz(func(t *testing.T, raw []byte, prefix bool) {
		if len(raw) > 16<<10 {
			return
		}
		if prefix {
			raw = append([]byte("GET /first HTTP/1.1\r\nHost: x\r\n\r\n"), raw...)
		}
		want := maskDate(exchangeTCP(t, ref.addr, string(raw)))
		got := maskDate(exchangeTCP(t, fast.addr, string(raw)))
		if sameExchange(got, want) {
			return
		}
		t.Errorf("answers to %q differ\n got: %q\nwant: %q", raw, abbreviate(got), abbreviate(want))
	})
}

// TestServerLogs: what net/http logs about a handler's mistakes, the
// fast path logs the same way.
func TestServerLogs(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "x1")
		w.WriteHeader(http.StatusAccepted)
		w.WriteHeader(http.StatusOK)
		http.Error(w, "late", http.StatusInternalServerError)
	})
	var refLog, fastLog syncBuffer
	rs := startNetHTTP(t, h, func(s *http.Server) { s.ErrorLog = log.New(&refLog, "", 0) })
	fs := startFast(t, h, func(s *Server, _ *http.Server) { s.ErrorLog = log.New(&fastLog, "", 0) })
	const raw = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	want := maskDate(exchangeTCP(t, rs.addr, raw))
	got := maskDate(exchangeTCP(t, fs.addr, raw))
	if got != want {
		t.Errorf("wire bytes differ\n got: %q\nwant: %q", got, want)
	}
	if got, want := fastLog.String(), refLog.String(); got != want || want == "" {
		t.Errorf("log differs\n got: %q\nwant: %q", got, want)
	}
}

// TestServerIdleHoldsNoBuffers: between requests a connection holds no
// pooled buffer: nothing pending, the response's buffers returned.
func TestServerIdleHoldsNoBuffers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &Server{Handler: http.HandlerFunc(echo)}
	fs.Listener(ln)
	defer fs.Close()
	dialRead(t, ln.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, func() bool {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		for c := range fs.conns {
			c.mu.Lock()
			idle := c.phase == phaseIdle && c.pending == nil && c.cancel == nil
			c.mu.Unlock()
			return idle
		}
		return false
	})
}

// TestServerH2CPriorKnowledge: with unencrypted HTTP/2 on the net/http
// server (corral's --h2c), a connection that starts with the HTTP/2
// preface is declined by the fast path and served by net/http as HTTP/2.
func TestServerH2CPriorKnowledge(t *testing.T) {
	h := http.HandlerFunc(echo)
	h2c := func(s *http.Server) {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.Protocols = &p
	}
	for _, st := range []*stack{
		startNetHTTP(t, h, h2c),
		startFast(t, h, func(_ *Server, hs *http.Server) { h2c(hs) }),
	} {
		c, err := net.Dial("tcp", st.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		// The preface, then an empty SETTINGS frame.
		io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
		frame := make([]byte, 9)
		if _, err := io.ReadFull(c, frame); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if frame[3] != 0x4 { // SETTINGS
			t.Errorf("%s: first frame %x, want a SETTINGS frame", st.name, frame)
		}
	}
}

// TestServerLingeringClose: behind the framing check with lingering
// closes (corral's stack), a connection closed after an answer that left
// a request half read lingers, and the fast path does not wait for the
// lingering to end before it reports the connection closed.
func TestServerLingeringClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lg := listen.NewLinger(listen.LingerConfig{Time: 3 * time.Second, Timeout: 3 * time.Second})
	closed := make(chan time.Time, 4)
	st := serveFast(t, listen.FramingListener(ln, lg), http.HandlerFunc(echo), func(s *Server, _ *http.Server) {
		s.ConnState = func(c net.Conn, cs http.ConnState) {
			if cs == http.StateClosed {
				closed <- time.Now()
			}
		}
	})
	c, err := net.Dial("tcp", st.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /half")
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || !bytes.Contains(buf[:n], []byte("200 OK")) {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	t0 := time.Now()
	select {
	case at := <-closed:
		if d := at.Sub(t0); d > time.Second {
			t.Errorf("StateClosed %v after the answer, want at once", d)
		}
	case <-time.After(2 * time.Second):
		t.Error("no StateClosed while the connection lingers")
	}
	// The connection lingers: still open for the client, which may go on
	// sending, until it closes.
	if _, err := io.WriteString(c, "more"); err != nil {
		t.Errorf("write while lingering: %v", err)
	}
}

// TestServerConcurrentPipelining: many connections at once, each sending
// pipelined requests in pieces of random size, some of which the fast
// path hands over (a body): every answer arrives, in order.
func TestServerConcurrentPipelining(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "[%s %s]", r.URL.Path, body)
	})
	st := startFast(t, h, nil)
	const conns, reqs = 16, 40
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var raw, want strings.Builder
			for j := range reqs {
				if i%4 == 0 && j == reqs/2 {
					fmt.Fprintf(&raw, "POST /%d-%d HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", i, j)
					fmt.Fprintf(&want, "[/%d-%d abc]", i, j)
					continue
				}
				fmt.Fprintf(&raw, "GET /%d-%d HTTP/1.1\r\nHost: x\r\n\r\n", i, j)
				fmt.Fprintf(&want, "[/%d-%d ]", i, j)
			}
			c, err := net.Dial("tcp", st.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			go func() {
				b := []byte(raw.String())
				for k := 0; len(b) > 0; k++ {
					n := min(len(b), 1+(i*7+k*13)%97)
					c.Write(b[:n])
					b = b[n:]
					if k%5 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Errorf("conn %d: %v", i, err)
			}
			var bodies strings.Builder
			for _, part := range strings.SplitAfter(string(got), "]") {
				if k := strings.LastIndex(part, "\r\n\r\n"); k >= 0 {
					bodies.WriteString(part[k+4:])
				}
			}
			if bodies.String() != want.String() {
				t.Errorf("conn %d: got %q, want %q", i, abbreviate(bodies.String()), abbreviate(want.String()))
			}
		}()
	}
	wg.Wait()
}

// TestServerSlowRemoteAddr: a connection whose RemoteAddr blocks (a
// PROXY protocol connection reads its header to answer) does not hold
// up the others, as with net/http.
func TestServerSlowRemoteAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	sl := &slowAddrListener{Listener: ln, release: release}
	st := serveFast(t, sl, http.HandlerFunc(echo), nil)
	stuck, err := net.Dial("tcp", st.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	if got := exchangeTCP(t, st.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.Contains(got, "200 OK") {
		t.Errorf("second connection: got %q", got)
	}
}

// slowAddrListener's first connection blocks in RemoteAddr until release.
type slowAddrListener struct {
	net.Listener
	release chan struct{}
	n       int
}

func (l *slowAddrListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.n++
	if l.n == 1 {
		return &slowAddrConn{Conn: c, release: l.release}, nil
	}
	return c, nil
}

type slowAddrConn struct {
	net.Conn
	release chan struct{}
}

func (c *slowAddrConn) RemoteAddr() net.Addr {
	<-c.release
	return c.Conn.RemoteAddr()
}
