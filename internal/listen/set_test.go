package listen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"corral/internal/addrset"
	"corral/internal/trust"
)

// layers records the order in which OpenAll's wrappers saw a listener.
type layers struct {
	mu   sync.Mutex
	seen []string
}

func (l *layers) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, s)
}

func (l *layers) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = nil
}

func (l *layers) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen)
}

// tagListener records in rec each connection it accepts, with its tag.
type tagListener struct {
	net.Listener
	tag string
	rec *layers
}

func (t tagListener) Accept() (net.Conn, error) {
	c, err := t.Listener.Accept()
	if err == nil {
		t.rec.add("accept " + t.tag)
	}
	return c, err
}

// TestOpenAllPlain opens two addresses and checks the layers: the guard
// sees the socket's own listener, and every connection passes it and
// comes out of the framing check.
func TestOpenAllPlain(t *testing.T) {
	var rec layers
	set, err := OpenAll(context.Background(), Config{
		Addrs:          []Addr{{"tcp", "127.0.0.1:0"}, {"unix", filepath.Join(t.TempDir(), "s.sock")}},
		MaxConnections: 10,
		Guard: func(l net.Listener) net.Listener {
			rec.add(fmt.Sprintf("guard %T", l))
			return tagListener{l, "guard", &rec}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if got, want := rec.get(), []string{
		"guard *net.TCPListener", "guard *net.UnixListener",
	}; !slices.Equal(got, want) {
		t.Errorf("layers = %q, want %q", got, want)
	}
	ls := set.Listeners()
	if len(ls) != 2 {
		t.Fatalf("%d listeners, want 2", len(ls))
	}
	tcp := ls[0].Addr().String()
	if got, want := ls[0].String(), "http://"+tcp; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := ls[1].String(); !strings.HasPrefix(got, "unix:/") || !strings.HasSuffix(got, "/s.sock") {
		t.Errorf("String() = %q, want unix:PATH", got)
	}
	for _, l := range ls {
		rec.reset()
		accepted := make(chan string, 1)
		go func() {
			c, err := l.Accept()
			if err == nil {
				accepted <- fmt.Sprintf("%T", c)
				c.Close()
			}
		}()
		c, err := net.Dial(l.Addr().Network(), l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(c)
		c.Close()
		if got, want := rec.get(), []string{"accept guard"}; !slices.Equal(got, want) {
			t.Errorf("%s: connection went through %q, want %q", l, got, want)
		}
		if got, want := <-accepted, "*listen.framingConn"; got != want {
			t.Errorf("%s: accepted a %s, want %s", l, got, want)
		}
	}
}

// TestOpenAllTLS: over TLS the framing check wraps each decrypted HTTP/1
// stream, and never an HTTP/2 connection; requests see their TLS state
// through ConfigureServer.
func TestOpenAllTLS(t *testing.T) {
	dir := t.TempDir()
	cert := writeCert(t, dir, "one")
	certs, err := LoadCerts(TLSFiles{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	set, err := OpenAll(context.Background(), Config{
		Addrs:         []Addr{{"tcp", "127.0.0.1:0"}},
		TLS:           certs.Config(),
		HeaderTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	l := set.Listeners()[0]
	if got, want := l.String(), "https://"+l.Addr().String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s tls=%t", r.Proto, r.TLS != nil)
	})}
	set.ConfigureServer(srv)
	var rec layers
	track := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			if tc, ok := c.(*tlsHTTP1Conn); ok {
				c = tc.Conn // the TLS state's carrier, around the HTTP/1 stream
			}
			rec.add(fmt.Sprintf("%T", c))
		}
		if track != nil {
			track(c, st)
		}
	}
	go srv.Serve(l)
	defer srv.Close()

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	url := "https://" + l.Addr().String() + "/"
	if got, want := get(t, client(pool, true), url), "HTTP/2.0 tls=true"; got != want {
		t.Errorf("HTTP/2 client got %q, want %q", got, want)
	}
	if got, want := get(t, client(pool, false), url), "HTTP/1.1 tls=true"; got != want {
		t.Errorf("HTTP/1.1 client got %q, want %q", got, want)
	}
	if got, want := rec.get(), []string{"*tls.Conn", "*listen.framingConn"}; !slices.Equal(got, want) {
		t.Errorf("connections served: %q, want the HTTP/2 one as is and the HTTP/1 one framed", got)
	}
}

// TestOpenAllProxyProtocol: the PROXY protocol layer sits above the
// guard and the limit, and believes trusted peers only.
func TestOpenAllProxyProtocol(t *testing.T) {
	set, err := OpenAll(context.Background(), Config{
		Addrs:          []Addr{{"tcp", "127.0.0.1:0"}},
		MaxConnections: 1,
		ProxyProtocol:  true,
		Trusted:        trust.New(addrset.MustParse("127.0.0.1")),
		HeaderTimeout:  time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	l := set.Listeners()[0]
	go func() {
		c, err := l.Accept()
		if err == nil {
			fmt.Fprint(c, c.RemoteAddr().String())
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "PROXY TCP4 203.0.113.7 192.0.2.1 40000 443\r\n")
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "203.0.113.7:40000" {
		t.Errorf("RemoteAddr = %q, want the one the header names", b)
	}
}

// TestOpenAllActivation: with PreferActivation, the sockets systemd
// passed replace the addresses; without it, an address takes its socket
// by name and the rest are closed.
func TestOpenAllActivation(t *testing.T) {
	passed := func() (*Activation, []string) {
		var ls []net.Listener
		var addrs []string
		for range 2 {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ls = append(ls, l)
			addrs = append(addrs, l.Addr().String())
		}
		return activationOf(t, []string{"web", "admin"}, ls...), addrs
	}

	act, addrs := passed()
	var logs bytes.Buffer
	set, err := OpenAll(context.Background(), Config{
		Addrs:            []Addr{{"tcp", "127.0.0.1:0"}},
		Options:          Options{Activation: act},
		PreferActivation: true,
		Logger:           slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range set.Listeners() {
		got = append(got, l.Addr().String())
	}
	set.Close()
	if !slices.Equal(got, addrs) {
		t.Errorf("PreferActivation opened %q, want the passed %q", got, addrs)
	}
	if !strings.Contains(logs.String(), "using the sockets systemd passed") || !strings.Contains(logs.String(), "names=web,admin") {
		t.Errorf("log %q does not say the passed sockets are used", logs.String())
	}

	act, addrs = passed()
	logs.Reset()
	set, err = OpenAll(context.Background(), Config{
		Addrs:   []Addr{{"systemd", "web"}},
		Options: Options{Activation: act},
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if ls := set.Listeners(); len(ls) != 1 || ls[0].Addr().String() != addrs[0] {
		t.Errorf("systemd:web opened %v, want %s", ls, addrs[0])
	}
	if !strings.Contains(logs.String(), "closed sockets systemd passed that no --bind names") || !strings.Contains(logs.String(), "sockets=admin") {
		t.Errorf("log %q does not warn about the unused socket", logs.String())
	}
	if rest := act.CloseRest(); len(rest) != 0 {
		t.Errorf("sockets left open: %q", rest)
	}
}

// TestOpenAllFails: when one address cannot be opened, OpenAll closes
// what it opened and the sockets systemd passed.
func TestOpenAllFails(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	act := activationOf(t, []string{"web"}, other)

	_, err = OpenAll(context.Background(), Config{
		Addrs:   []Addr{{"tcp", freeAddr}, {"tcp", busy.Addr().String()}},
		Options: Options{Activation: act},
	})
	if err == nil || !strings.Contains(err.Error(), "listen on tcp "+busy.Addr().String()) {
		t.Fatalf("error = %v, want one naming the busy address", err)
	}
	if l, err := net.Listen("tcp", freeAddr); err != nil {
		t.Errorf("the first address stayed open: %v", err)
	} else {
		l.Close()
	}
	if rest := act.CloseRest(); len(rest) != 0 {
		t.Errorf("sockets systemd passed left open: %q", rest)
	}
}

// TestListenerStopAccepting: once stopped, the listener takes no new
// connection, and Accept returns only after Close, with net.ErrClosed.
func TestListenerStopAccepting(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newListener(raw, "test")
	accepted := make(chan error, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				accepted <- err
				return
			}
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	l.StopAccepting()
	l.StopAccepting() // idempotent
	if c, err := net.DialTimeout("tcp", raw.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Errorf("a connection after StopAccepting got through")
	}
	select {
	case err := <-accepted:
		t.Fatalf("Accept returned %v before Close", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still blocked after Close")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestListenerAcceptError: an Accept error while the listener has not
// been stopped is returned at once, as it is.
func TestListenerAcceptError(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newListener(raw, "test")
	raw.Close() // closed underneath: not a stop
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Accept on a closed socket succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept waited instead of returning the error")
	}
}

// quiesceServer serves "ok" on a set of one TCP listener.
func quiesceServer(t *testing.T) (*Set, *http.Server, string) {
	t.Helper()
	set, err := OpenAll(context.Background(), Config{Addrs: []Addr{{"tcp", "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})}
	set.ConfigureServer(srv)
	l := set.Listeners()[0]
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close(); set.Close() })
	return set, srv, l.Addr().String()
}

// TestQuiesce: a connection accepted before the stop but whose request
// comes later is still answered (with keep-alive off) after Quiesce and
// Shutdown; new connections are refused.
func TestQuiesce(t *testing.T) {
	set, srv, addr := quiesceServer(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond) // accepted, in StateNew

	quiesced := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		set.Quiesce(context.Background(), srv)
		quiesced <- time.Since(start)
		srv.Shutdown(context.Background())
	}()
	time.Sleep(100 * time.Millisecond) // Quiesce is waiting for the request
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("a new connection was accepted while quiescing")
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the request sent after the stop: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "ok" || !resp.Close {
		t.Errorf("got %d %q close=%t, want 200 ok with the connection closed", resp.StatusCode, b, resp.Close)
	}
	if d := <-quiesced; d >= firstRequestWait {
		t.Errorf("Quiesce took %v: it did not return at the first request", d)
	}
}

// TestQuiesceBound: a connection that never sends a request holds
// Quiesce up to its bound, not longer; ctx cuts the wait shorter.
func TestQuiesceBound(t *testing.T) {
	set, srv, addr := quiesceServer(t)
	set.firstRequestWait = 200 * time.Millisecond
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond)
	if n := set.conns.count(); n != 1 {
		t.Fatalf("%d connections waiting for a first request, want 1", n)
	}
	start := time.Now()
	set.Quiesce(context.Background(), srv)
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("Quiesce took %v, want about its bound of 200ms", d)
	}

	set.firstRequestWait = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	set.Quiesce(ctx, srv) // stopped already: waits again for c, until ctx ends
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Quiesce took %v after its context ended", d)
	}
}
