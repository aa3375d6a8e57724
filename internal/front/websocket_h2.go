package front

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// WebSockets over HTTP/2 (RFC 8441): the client opens a stream with an
// extended CONNECT (:protocol websocket), a 200 accepts it, and the
// stream's two directions carry the WebSocket frames; there is no key to
// answer. net/http's server takes such requests only when corral runs with
// GODEBUG=http2xconnect=1 (Go reads it once, at start, and has no other
// switch); it then advertises SETTINGS_ENABLE_CONNECT_PROTOCOL, and
// browsers open WebSockets on their HTTP/2 connection.
//
// github.com/coder/websocket speaks HTTP/1.1 only, so acceptH2 gives it
// the request as HTTP/1.1 would carry it and the stream as the hijacked
// connection. Everything after the handshake is the same as for HTTP/1.1.

// h2DummyKey stands for the Sec-WebSocket-Key an HTTP/2 handshake does
// not have; the accept value computed from it is not sent.
const h2DummyKey = "AAAAAAAAAAAAAAAAAAAAAA=="

// acceptH2 accepts the WebSocket of an extended CONNECT. The stream it
// returns (also on some errors) must be waited for before the handler
// returns.
func acceptH2(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) (*websocket.Conn, *h2Stream, error) {
	r1 := r.Clone(r.Context())
	r1.Method, r1.Proto, r1.ProtoMajor, r1.ProtoMinor = http.MethodGet, "HTTP/1.1", 1, 1
	delete(r1.Header, ":protocol")
	r1.Header.Set("Connection", "Upgrade")
	r1.Header.Set("Upgrade", "websocket")
	r1.Header.Set("Sec-WebSocket-Key", h2DummyKey)
	s := &h2Stream{w: w, body: r.Body, rc: http.NewResponseController(w)}
	conn, err := websocket.Accept(s, r1, opts)
	return conn, s, err
}

// h2Stream is an HTTP/2 stream as an http.ResponseWriter that can be
// hijacked (for the handshake) and as the net.Conn it hijacks to.
type h2Stream struct {
	w    http.ResponseWriter
	body io.ReadCloser
	rc   *http.ResponseController

	mu      sync.Mutex
	closed  bool
	writing bool
	writes  sync.WaitGroup
}

func (s *h2Stream) Header() http.Header { return s.w.Header() }

// WriteHeader turns the library's 101 into HTTP/2's 200, without the
// HTTP/1.1 fields (connection-specific ones are not allowed in HTTP/2).
func (s *h2Stream) WriteHeader(code int) {
	if code != http.StatusSwitchingProtocols {
		s.w.WriteHeader(code)
		return
	}
	h := s.w.Header()
	delete(h, "Upgrade")
	delete(h, "Connection")
	delete(h, "Sec-Websocket-Accept")
	s.w.WriteHeader(http.StatusOK)
	_ = s.rc.Flush()
}

// Hijack hands the stream over as a connection; the library reads and
// writes it through the bufio pair it returns.
func (s *h2Stream) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return s, bufio.NewReadWriter(bufio.NewReader(s), bufio.NewWriter(s)), nil
}

func (s *h2Stream) Read(p []byte) (int, error) { return s.body.Read(p) }

// Write sends p on the stream at once (the library buffers frames itself).
func (s *h2Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, net.ErrClosed
	}
	s.writing = true
	s.writes.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.writing = false
		s.mu.Unlock()
		s.writes.Done()
	}()
	n, err := s.w.Write(p)
	if err == nil {
		err = s.rc.Flush()
	}
	return n, err
}

// Close ends both directions: reads fail, and a write blocked on a client
// that does not read is cut by resetting the stream. The handler's return
// then ends the stream cleanly (END_STREAM).
func (s *h2Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	writing := s.writing
	s.mu.Unlock()
	if writing {
		_ = s.rc.SetWriteDeadline(time.Now())
	}
	return s.body.Close()
}

// wait returns once no write is in progress and none can start.
func (s *h2Stream) wait() {
	_ = s.Close()
	s.writes.Wait()
}

type h2Addr struct{}

func (h2Addr) Network() string { return "h2" }
func (h2Addr) String() string  { return "http2-stream" }

func (s *h2Stream) LocalAddr() net.Addr  { return h2Addr{} }
func (s *h2Stream) RemoteAddr() net.Addr { return h2Addr{} }

var errNoDeadline = errors.New("deadlines are not supported on a WebSocket over HTTP/2")

// The library does not use deadlines (it closes the connection when a
// context ends).
func (s *h2Stream) SetDeadline(time.Time) error      { return errNoDeadline }
func (s *h2Stream) SetReadDeadline(time.Time) error  { return errNoDeadline }
func (s *h2Stream) SetWriteDeadline(time.Time) error { return errNoDeadline }
