package listen

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"corral/internal/addrset"
	"corral/internal/trust"
)

func TestActivationFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name    string
		getenv  func(string) string
		want    []string // names, in descriptor order; nil = no activation
		wantErr string
	}{
		{"none", env(), nil, ""},
		{"other pid", env("LISTEN_PID", "99", "LISTEN_FDS", "1"), nil, ""},
		{"no pid", env("LISTEN_FDS", "1"), nil, ""},
		{"one", env("LISTEN_PID", "42", "LISTEN_FDS", "1"), []string{"unknown"}, ""},
		{"named", env("LISTEN_PID", "42", "LISTEN_FDS", "3", "LISTEN_FDNAMES", "web:web:admin"), []string{"web", "web", "admin"}, ""},
		{"fewer names", env("LISTEN_PID", "42", "LISTEN_FDS", "2", "LISTEN_FDNAMES", "web"), []string{"web", "unknown"}, ""},
		{"zero", env("LISTEN_PID", "42", "LISTEN_FDS", "0"), []string{}, ""},
		{"bad count", env("LISTEN_PID", "42", "LISTEN_FDS", "x"), nil, "LISTEN_FDS"},
		{"negative", env("LISTEN_PID", "42", "LISTEN_FDS", "-1"), nil, "LISTEN_FDS"},
	}
	for _, tt := range tests {
		a, err := ActivationFromEnv(tt.getenv, 42)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error = %v, want one naming %s", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.want == nil {
			if a != nil {
				t.Errorf("%s: got %v, want no activation", tt.name, a.Names())
			}
			continue
		}
		if got := a.Names(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: names = %q, want %q", tt.name, got, tt.want)
		}
		for i, s := range a.socks {
			if s.fd != 3+i {
				t.Errorf("%s: socket %d has fd %d, want %d", tt.name, i, s.fd, 3+i)
			}
		}
	}
}

// activationOf passes the listeners' sockets as systemd would: dup'ed onto
// fresh descriptors, described by an Activation.
func activationOf(t *testing.T, names []string, ls ...net.Listener) *Activation {
	t.Helper()
	a := &Activation{}
	for i, l := range ls {
		f, err := l.(interface{ File() (*os.File, error) }).File()
		if err != nil {
			t.Fatal(err)
		}
		fd, err := syscall.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		a.socks = append(a.socks, activated{fd: fd, name: names[i]})
		l.Close()
	}
	t.Cleanup(func() { a.CloseRest() })
	return a
}

func TestOpenActivated(t *testing.T) {
	var ls []net.Listener
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	addrs := []string{ls[0].Addr().String(), ls[1].Addr().String(), ls[2].Addr().String()}
	a := activationOf(t, []string{"web", "admin", "web"}, ls...)
	opts := Options{Activation: a}

	web, err := Open(context.Background(), "systemd", "web", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(web)
	if len(web) != 2 || web[0].Addr().String() != addrs[0] || web[1].Addr().String() != addrs[2] {
		t.Fatalf("systemd:web opened %v, want %s and %s", web, addrs[0], addrs[2])
	}
	if _, err := Open(context.Background(), "systemd", "web", opts); err == nil || !strings.Contains(err.Error(), `no socket named "web"`) {
		t.Errorf("second systemd:web: error = %v, want none left", err)
	}
	if _, err := Open(context.Background(), "systemd", "nope", opts); err == nil || !strings.Contains(err.Error(), "web, admin, web") {
		t.Errorf("systemd:nope: error = %v, want one listing the names passed", err)
	}
	if _, err := Open(context.Background(), "systemd", "web", Options{}); err == nil || !strings.Contains(err.Error(), "LISTEN_FDS") {
		t.Errorf("systemd:web without activation: error = %v", err)
	}
	rest := a.CloseRest()
	if !slices.Equal(rest, []string{"admin"}) {
		t.Errorf("CloseRest = %q, want [admin]", rest)
	}

	// Served, and the passed descriptors themselves are closed: only the
	// listener's close-on-exec duplicate remains.
	go func() {
		c, err := web[0].Accept()
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "hi" {
		t.Errorf("read %q from the activated listener, want hi", b)
	}
	for _, s := range a.socks {
		if _, err := syscall.Dup(s.fd); err == nil {
			t.Errorf("passed descriptor %d still open", s.fd)
		}
	}
}

func TestOpenFDTakesActivated(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	a := activationOf(t, []string{"unknown"}, l)
	fd := a.socks[0].fd
	ls, err := Open(context.Background(), "fd", strconv.Itoa(fd), Options{Activation: a})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(ls)
	if ls[0].Addr().String() != addr {
		t.Errorf("fd://%d = %s, want %s", fd, ls[0].Addr(), addr)
	}
	if rest := a.CloseRest(); len(rest) != 0 {
		t.Errorf("fd://%d left %q untaken", fd, rest)
	}
	all, _ := a.All()
	if len(all) != 0 {
		t.Errorf("All after taking every socket = %v", all)
	}
	if _, err := Open(context.Background(), "fd", "1", Options{}); err == nil {
		t.Errorf("fd://1 opened standard output")
	}
}

func TestReusePort(t *testing.T) {
	ctx := context.Background()
	a, err := Open(ctx, "tcp", "127.0.0.1:0", Options{ReusePort: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(a)
	addr := a[0].Addr().String()
	if _, err := Open(ctx, "tcp", addr, Options{}); err == nil {
		t.Fatalf("second listener without ReusePort on %s: want EADDRINUSE", addr)
	}
	b, err := Open(ctx, "tcp", addr, Options{ReusePort: true, Backlog: 128})
	if err != nil {
		t.Fatalf("second listener with ReusePort: %v", err)
	}
	defer closeAll(b)

	// The kernel spreads connections by their addresses: both get some.
	got := map[int]int{}
	for i := range 64 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
	}
	for i, l := range []net.Listener{a[0], b[0]} {
		for {
			_ = l.(*drainListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
			c, err := l.Accept()
			if err != nil {
				break
			}
			got[i]++
			c.Close()
		}
	}
	if got[0] == 0 || got[1] == 0 || got[0]+got[1] != 64 {
		t.Errorf("accepted %d and %d of 64 connections, want both some", got[0], got[1])
	}
}

// TestDrainOnClose: connections queued on a SO_REUSEPORT listener when it
// closes are accepted, not reset.
func TestDrainOnClose(t *testing.T) {
	ls, err := Open(context.Background(), "tcp", "127.0.0.1:0", Options{ReusePort: true})
	if err != nil {
		t.Fatal(err)
	}
	l := ls[0]
	var clients []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("x"))
		clients = append(clients, c)
	}
	time.Sleep(20 * time.Millisecond) // the handshakes are done: all are queued
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		c, err := l.Accept()
		if err != nil {
			break
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil || b[0] != 'x' {
			t.Errorf("drained connection: read %q, %v", b, err)
		}
		c.Write([]byte("y"))
		c.Close()
		n++
	}
	if n != 5 {
		t.Fatalf("Accept after Close returned %d connections, want the 5 queued", n)
	}
	for i, c := range clients {
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "y" {
			t.Errorf("client %d read %q, %v; want the answer, not a reset", i, b, err)
		}
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Errorf("dial after Close succeeded")
	}
}

// TestDropSYNs: once a closing reuse-port listener drops SYNs, new
// connection attempts go unanswered (the client would retry, and reach
// another member of the group), while established connections go on.
func TestDropSYNs(t *testing.T) {
	ls, err := Open(context.Background(), "tcp", "127.0.0.1:0", Options{ReusePort: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(ls)
	l := ls[0].(*drainListener)
	before, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	srv, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := l.dropSYNs(); err != nil {
		t.Fatalf("attach the SYN filter: %v", err)
	}
	if c, err := net.DialTimeout("tcp", l.Addr().String(), 300*time.Millisecond); err == nil {
		c.Close()
		t.Errorf("a new connection got through the SYN filter")
	}
	before.Write([]byte("ping"))
	b := make([]byte, 4)
	_ = srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(srv, b); err != nil || string(b) != "ping" {
		t.Errorf("established connection after the filter: %q, %v", b, err)
	}
}

func TestUnixSocketMode(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		umask os.FileMode
		want  os.FileMode
	}{
		{0, 0o777},
		{0o007, 0o770},
		{0o077, 0o700},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, "s.sock")
		ls, err := Open(context.Background(), "unix", path, Options{Umask: tt.umask, Chown: true, UID: os.Getuid(), GID: os.Getgid()})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != tt.want {
			t.Errorf("umask %03o: socket mode %v, want %03o", tt.umask, fi.Mode(), tt.want)
		}
		closeAll(ls)
	}
	// A live socket is never replaced; a stale one is, and a file is not.
	path := filepath.Join(dir, "live.sock")
	ls, err := Open(context.Background(), "unix", path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(ls)
	if _, err := Open(context.Background(), "unix", path, Options{}); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, nil, 0o600)
	if _, err := Open(context.Background(), "unix", regular, Options{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listener over a regular file: %v", err)
	}
}

func TestProxyProtocol(t *testing.T) {
	only2 := trust.New(addrset.MustParse("127.0.0.2"))
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := ProxyProtocol(tcp, only2, time.Second)
	defer l.Close()
	port := tcp.Addr().(*net.TCPAddr).Port

	// serve answers each connection with the remote address it sees; a
	// connection whose header is refused fails its reads and writes, so
	// the client reads nothing before the close.
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 5)
				if _, err := io.ReadFull(c, b); err != nil {
					c.Write([]byte("error " + err.Error())) // fails: never seen
					return
				}
				c.Write([]byte(c.RemoteAddr().String() + " " + string(b)))
			}()
		}
	}()
	v1 := "PROXY TCP4 203.0.113.7 192.0.2.1 40000 443\r\n"
	v2 := func() string {
		h := proxyproto.HeaderProxyFromAddrs(2,
			&net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 40001},
			&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443})
		b, _ := h.Format()
		return string(b)
	}()
	tests := []struct {
		name, from, send, want string
	}{
		{"trusted v1", "127.0.0.2", v1 + "hello", "203.0.113.7:40000 hello"},
		{"trusted v2", "127.0.0.2", v2 + "hello", "[2001:db8::7]:40001 hello"},
		{"trusted, no header", "127.0.0.2", "hello", "127.0.0.2:"},
		{"untrusted v1", "127.0.0.3", v1 + "hello", ""},
		{"untrusted v2", "127.0.0.3", v2 + "hello", ""},
		{"untrusted, no header", "127.0.0.3", "hello", "127.0.0.3:"},
		{"trusted, malformed", "127.0.0.2", "PROXY TCP4 not-an-ip 192.0.2.1 1 2\r\nhello", ""},
	}
	for _, tt := range tests {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tt.from)}, Timeout: time.Second}
		c, err := d.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(tt.send))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if tt.want == "" && len(b) > 0 || !strings.HasPrefix(string(b), tt.want) {
			t.Errorf("%s: server saw %q, want %q...", tt.name, b, tt.want)
		}
	}
}
