package listen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// watchedConn counts the bytes read from it and reports its Close.
type watchedConn struct {
	net.Conn
	read   atomic.Int64
	closed chan struct{}
	once   sync.Once
}

func watch(c net.Conn) *watchedConn { return &watchedConn{Conn: c, closed: make(chan struct{})} }

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *watchedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func (c *watchedConn) CloseWrite() error { return closeWrite(c.Conn) }

// waitClosed waits up to d for c to be closed and returns how long it took.
func (c *watchedConn) waitClosed(t *testing.T, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-c.closed:
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("connection not closed within %v", d)
		return 0
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}

// closeNow calls k.close and fails if it blocks.
func closeNow(t *testing.T, k *closer, linger bool) {
	t.Helper()
	start := time.Now()
	_ = k.close(linger)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("close blocked for %v", d)
	}
}

// TestLingerByteCap: a client that keeps sending is cut off after
// MaxBytes.
func TestLingerByteCap(t *testing.T) {
	srv, cli := net.Pipe()
	w := watch(srv)
	lg := NewLinger(LingerConfig{MaxBytes: 1 << 20, Timeout: 5 * time.Second, Time: 10 * time.Second})
	closeNow(t, &closer{l: lg, c: w}, true)
	sent := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(cli, io.LimitReader(neverEnding('x'), 4<<20))
		sent <- n
	}()
	w.waitClosed(t, 5*time.Second)
	if got, want := w.read.Load(), int64(1<<20); got != want {
		t.Errorf("read %d bytes, want the cap of %d", got, want)
	}
	if n := <-sent; n >= 4<<20 {
		t.Errorf("the client sent all %d bytes; want its writes to fail at the cap", n)
	}
	// The slot is given back just after the close.
	eventually(t, func() bool { return lg.Stats().Lingering == 0 })
	if st := lg.Stats(); st.Lingered != 1 || st.Lingering != 0 {
		t.Errorf("stats %+v, want 1 lingered, none lingering", st)
	}
}

// TestLingerIdleTimeout: a client that goes quiet is dropped after
// Timeout, long before Time.
func TestLingerIdleTimeout(t *testing.T) {
	srv, cli := net.Pipe()
	w := watch(srv)
	lg := NewLinger(LingerConfig{Timeout: 100 * time.Millisecond, Time: 10 * time.Second})
	closeNow(t, &closer{l: lg, c: w}, true)
	if _, err := cli.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	d := w.waitClosed(t, 5*time.Second)
	if d < 90*time.Millisecond || d > 2*time.Second {
		t.Errorf("closed after %v, want about the idle timeout of 100ms", d)
	}
	if got := w.read.Load(); got != 10 {
		t.Errorf("read %d bytes, want 10", got)
	}
}

// TestLingerTime: a client that trickles bytes, never idle for Timeout, is
// dropped after Time.
func TestLingerTime(t *testing.T) {
	srv, cli := net.Pipe()
	w := watch(srv)
	lg := NewLinger(LingerConfig{Timeout: time.Second, Time: 300 * time.Millisecond})
	closeNow(t, &closer{l: lg, c: w}, true)
	go func() {
		for {
			if _, err := cli.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	d := w.waitClosed(t, 5*time.Second)
	if d < 250*time.Millisecond || d > 900*time.Millisecond {
		t.Errorf("closed after %v, want about the lingering time of 300ms", d)
	}
}

// TestLingerHalfClose: over TCP the client reads the answer and then the
// end of the stream while it is still sending; when it closes, the
// connection closes at once rather than after the idle timeout. Whether
// the drain starts at CloseWrite (net/http's path) or at Close, Close
// returns at once.
func TestLingerHalfClose(t *testing.T) {
	for _, viaCloseWrite := range []bool{true, false} {
		t.Run(fmt.Sprint("CloseWrite ", viaCloseWrite), func(t *testing.T) {
			srv, cli := tcpPair(t)
			w := watch(srv)
			lg := NewLinger(LingerConfig{Timeout: 5 * time.Second})
			k := &closer{l: lg, c: w}
			if _, err := io.WriteString(w, "answer"); err != nil {
				t.Fatal(err)
			}
			if viaCloseWrite {
				if err := k.closeWrite(); err != nil {
					t.Fatalf("closeWrite: %v", err)
				}
				time.Sleep(50 * time.Millisecond) // net/http sleeps here
				closeNow(t, k, false)
			} else {
				closeNow(t, k, true)
			}
			// The client still sends (more than socket buffers hold), then
			// reads the answer and the server's end of stream.
			if _, err := io.Copy(cli, io.LimitReader(neverEnding('y'), 8<<20)); err != nil {
				t.Fatalf("the client's writes failed: %v", err)
			}
			_ = cli.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(cli)
			if err != nil || string(got) != "answer" {
				t.Fatalf("client read %q, %v; want the answer, then EOF", got, err)
			}
			cli.Close()
			if d := w.waitClosed(t, 3*time.Second); d > time.Second {
				t.Errorf("closed %v after the client closed", d)
			}
			if got := w.read.Load(); got != 8<<20 {
				t.Errorf("drained %d bytes, want %d", got, 8<<20)
			}
		})
	}
}

// TestLingerMaxConns: beyond MaxConns lingering connections, Close closes
// at once; slots come back when drains end.
func TestLingerMaxConns(t *testing.T) {
	lg := NewLinger(LingerConfig{MaxConns: 2, Timeout: 5 * time.Second})
	var clients []net.Conn
	var conns []*watchedConn
	for range 3 {
		srv, cli := net.Pipe()
		w := watch(srv)
		closeNow(t, &closer{l: lg, c: w}, true)
		clients, conns = append(clients, cli), append(conns, w)
	}
	conns[2].waitClosed(t, time.Second) // no slot: closed at once
	for _, w := range conns[:2] {
		select {
		case <-w.closed:
			t.Error("a connection with a slot closed before its client")
		default:
		}
	}
	if st := lg.Stats(); st.Lingering != 2 || st.Lingered != 2 || st.Skipped != 1 {
		t.Errorf("stats %+v, want 2 lingering, 2 lingered, 1 skipped", st)
	}
	for i, c := range clients[:2] {
		c.Close()
		conns[i].waitClosed(t, time.Second)
	}
	eventually(t, func() bool { return lg.Stats().Lingering == 0 })
	// A slot is free again.
	srv, cli := net.Pipe()
	defer cli.Close()
	closeNow(t, &closer{l: lg, c: watch(srv)}, true)
	if st := lg.Stats(); st.Lingering != 1 || st.Skipped != 1 {
		t.Errorf("after the drains: stats %+v, want 1 lingering, still 1 skipped", st)
	}
}

// TestLingerOff: a closer without a Linger, or asked not to linger, closes
// at once.
func TestLingerOff(t *testing.T) {
	for _, k := range []*closer{{l: nil}, {l: NewLinger(LingerConfig{})}} {
		srv, cli := net.Pipe()
		defer cli.Close()
		w := watch(srv)
		k.c = w
		closeNow(t, k, k.l == nil)
		w.waitClosed(t, 100*time.Millisecond)
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// lingerServer is an http.Server over a FramingListener with lingering:
// /limited answers 413 without reading a body of more than 1000 bytes,
// /deny answers 403 without reading, the rest reads the body and
// answers 200.
func lingerServer(t *testing.T) (addr string, lg *Linger) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lg = NewLinger(LingerConfig{Timeout: 2 * time.Second})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/limited" && r.ContentLength > 1000:
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		case r.URL.Path == "/deny":
			http.Error(w, "denied", http.StatusForbidden)
		default:
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, n)
		}
	})
	srv := &http.Server{Handler: h, IdleTimeout: 200 * time.Millisecond}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(FramingListener(ln, lg))
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String(), lg
}

// sendThenRead writes head and body bytes of body on a new connection,
// all of it before reading, as Python's http.client does, then reads one
// response. It returns the status and the error of the writes.
func sendThenRead(t *testing.T, addr, head string, body int64) (int, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	wrote := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, io.MultiReader(strings.NewReader(head), io.LimitReader(neverEnding('b'), body)))
		wrote <- err
	}()
	werr := <-wrote
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, errors.Join(werr, err)
	}
	resp.Body.Close()
	return resp.StatusCode, werr
}

// TestFramingLingers runs answers given before the request was read
// through net/http: the client, which sends everything before reading,
// gets the answer, not a reset.
func TestFramingLingers(t *testing.T) {
	const big = 8 << 20 // more than loopback socket buffers take in
	cases := []struct {
		name string
		head string
		body int64
		want int
	}{
		// net/http half-closes: 256 KiB or more of the body left unread.
		{"413 by Content-Length", fmt.Sprintf("POST /limited HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", big), big, 413},
		{"403 unread", fmt.Sprintf("POST /deny HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", big), big, 403},
		{"403 unread, chunked", "POST /deny HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800000\r\n", big, 403},
		// net/http answers 400 and closes without half-closing; the
		// framing tracker knows the client is still sending.
		{"400 for a malformed head", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nBad Header\r\nContent-Length: %d\r\n\r\n", big), big, 400},
		{"400 for Content-Length with Transfer-Encoding", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n800000\r\n", big), big, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr, lg := lingerServer(t)
			code, werr := sendThenRead(t, addr, c.head, c.body)
			if code != c.want || werr != nil {
				t.Errorf("status %d, write error %v; want %d and all sent", code, werr, c.want)
			}
			if st := lg.Stats(); st.Lingered != 1 {
				t.Errorf("stats %+v, want 1 lingered", st)
			}
		})
	}
}

// TestFramingLingersAfterExpect: a client that sent Expect: 100-continue
// gets 413 without 100 Continue; net/http closes without half-closing,
// having read no body. A client that sends the body anyway still reads
// the end of the stream, not a reset.
func TestFramingLingersAfterExpect(t *testing.T) {
	addr, lg := lingerServer(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "POST /limited HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", 8<<20)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("answer %v, %v; want 413", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if _, err := io.Copy(c, io.LimitReader(neverEnding('b'), 8<<20)); err != nil {
		t.Errorf("sending the body after the 413: %v", err)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the answer: %q, %v; want the end of the stream", rest, err)
	}
	if st := lg.Stats(); st.Lingered != 1 {
		t.Errorf("stats %+v, want 1 lingered", st)
	}
}

// TestFramingNoLingerWhenRead: connections whose requests were read whole
// close without lingering: after Connection: close, and after the idle
// timeout.
func TestFramingNoLingerWhenRead(t *testing.T) {
	addr, lg := lingerServer(t)
	if code, err := sendThenRead(t, addr, "POST /limited HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 500\r\n\r\n", 500); code != 200 || err != nil {
		t.Errorf("small body: %d, %v", code, err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v, %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if _, err := br.ReadByte(); err != io.EOF { // the idle timeout closes it
		t.Fatalf("after the idle timeout: %v, want EOF", err)
	}
	if st := lg.Stats(); st.Lingered != 0 || st.Skipped != 0 {
		t.Errorf("stats %+v, want no lingering", st)
	}
}

// rawConn is a wrapper without CloseWrite that gives its connection with
// Raw, as PROXY protocol connections do.
type rawConn struct {
	net.Conn
	raw net.Conn
}

func (c rawConn) Raw() net.Conn { return c.raw }

// TestCloseWriteLooksThrough: the half-close reaches the TCP connection
// through a wrapper that only has Raw.
func TestCloseWriteLooksThrough(t *testing.T) {
	srv, cli := tcpPair(t)
	if err := closeWrite(rawConn{Conn: srv, raw: srv}); err != nil {
		t.Fatalf("closeWrite: %v", err)
	}
	_ = cli.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := cli.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read %v, want EOF", err)
	}
	p, _ := net.Pipe()
	defer p.Close()
	if err := closeWrite(p); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("closeWrite of a pipe: %v, want ErrUnsupported", err)
	}
}

// TestLingerRetryAtClose: when CloseWrite finds no free slot, Close tries
// again; only a Close that finds none counts as skipped.
func TestLingerRetryAtClose(t *testing.T) {
	lg := NewLinger(LingerConfig{MaxConns: 1, Timeout: 5 * time.Second})
	srv1, cli1 := net.Pipe()
	w1 := watch(srv1)
	closeNow(t, &closer{l: lg, c: w1}, true) // takes the only slot

	srv2, cli2 := net.Pipe()
	defer cli2.Close()
	w2 := watch(srv2)
	k := &closer{l: lg, c: w2}
	if err := k.closeWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("closeWrite of a pipe: %v", err)
	}
	cli1.Close()
	w1.waitClosed(t, time.Second)
	eventually(t, func() bool { return lg.Stats().Lingering == 0 })
	closeNow(t, k, false) // net/http's Close after its CloseWrite
	if st := lg.Stats(); st.Lingering != 1 || st.Lingered != 2 || st.Skipped != 0 {
		t.Errorf("stats %+v, want the second connection lingering, none skipped", st)
	}

	srv3, cli3 := net.Pipe()
	defer cli3.Close()
	w3 := watch(srv3)
	k3 := &closer{l: lg, c: w3}
	_ = k3.closeWrite()
	closeNow(t, k3, false)
	w3.waitClosed(t, time.Second)
	if st := lg.Stats(); st.Skipped != 1 {
		t.Errorf("stats %+v, want 1 skipped", st)
	}
}
