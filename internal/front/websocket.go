package front

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"corral/internal/pool"
	"corral/internal/proto"
)

// WebSockets end here (ASGI apps only): the handshake is checked before
// the app sees it, and once the app accepts, corral speaks the protocol
// with the client (github.com/coder/websocket) — pings, fragments, UTF-8,
// sizes, compression, the close handshake — and the app sees whole
// messages through the pool (pool.Call.SendWS and NextWS). Each direction
// is bounded: a client message is read whole (at most WSMaxSize) and goes
// to the worker when its flow-control window has room, the client's next
// messages waiting in the socket meanwhile; the app's messages wait in
// the pool, which pauses the app's sends when a client does not read.

// wantsWebSocket reports whether r asks to upgrade to a WebSocket, or,
// over HTTP/2, to open one with an extended CONNECT (RFC 8441; any
// :protocol, so that checkHandshake refuses the others).
func wantsWebSocket(r *http.Request) bool {
	if r.ProtoMajor == 2 {
		return r.Method == http.MethodConnect && r.Header[":protocol"] != nil
	}
	return headerHasToken(r.Header, "Upgrade", "websocket")
}

// headerHasToken reports whether a comma-separated header field of r
// lists token (case-insensitively).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// checkHandshake checks a WebSocket opening handshake (RFC 6455 section
// 4.2.1) before the app sees it, so that an app never accepts a
// handshake that cannot complete.
func checkHandshake(w *recorder, r *http.Request) (int, string) {
	if r.ProtoMajor == 2 {
		// RFC 8441 section 5: a CONNECT with :protocol websocket (net/http
		// checked the rest of its form), a version, and no key.
		switch {
		case !strings.EqualFold(r.Header.Get(":protocol"), "websocket"):
			return http.StatusNotImplemented, "unsupported :protocol"
		case r.Header.Get("Sec-WebSocket-Version") != "13":
			w.Header().Set("Sec-WebSocket-Version", "13")
			return http.StatusUpgradeRequired, "unsupported WebSocket version"
		}
		return 0, ""
	}
	switch {
	case !r.ProtoAtLeast(1, 1) || r.ProtoMajor > 1:
		return http.StatusBadRequest, "WebSocket needs HTTP/1.1"
	case r.Method != http.MethodGet:
		return http.StatusMethodNotAllowed, "WebSocket handshake must be a GET"
	case !headerHasToken(r.Header, "Connection", "Upgrade"):
		return http.StatusBadRequest, "WebSocket handshake without Connection: Upgrade"
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		w.Header().Set("Sec-WebSocket-Version", "13")
		return http.StatusUpgradeRequired, "unsupported WebSocket version"
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return http.StatusBadRequest, "WebSocket handshake without one Sec-WebSocket-Key"
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return http.StatusBadRequest, "invalid Sec-WebSocket-Key"
	}
	return 0, ""
}

// serveWebSocket runs a WebSocket request: the app answers the handshake
// (accept, deny with an HTTP response, or close: 403), and an accepted
// socket is served until either side closes it.
func (h *Handler) serveWebSocket(w *recorder, r *http.Request) int {
	if code, msg := checkHandshake(w, r); code != 0 {
		return h.fail(w, code, msg)
	}
	if !h.ws.admit() {
		w.Header().Set("Retry-After", "1")
		return h.fail(w, http.StatusServiceUnavailable, "")
	}
	app := r
	if r.ProtoMajor == 2 {
		// The app sees an HTTP/2 WebSocket as the spec has it: a GET's
		// scope, without the :protocol pseudo-header.
		app = r.Clone(r.Context())
		app.Method = http.MethodGet
		delete(app.Header, ":protocol")
	}
	frame := proto.BeginRequest(make([]byte, 0, 1024))
	frame = h.appendScope(frame, app, schemeOf(w, r))
	frame, err := proto.FinishRequest(frame, 0, proto.FlagWebSocket, nil)
	if err != nil {
		return h.fail(w, http.StatusRequestHeaderFieldsTooLarge, "")
	}
	call, err := h.cfg.Pool.Submit(&pool.Request{
		Frame: frame, Method: app.Method, Path: r.URL.Path, Class: w.class, WebSocket: true,
	})
	if err != nil {
		return h.failCall(w, r, err)
	}
	defer call.Release()
	code, _, headers, err := call.Head(r.Context())
	if err != nil {
		return h.failCall(w, r, err)
	}
	if code != http.StatusSwitchingProtocols {
		return h.writeResponse(w, r, call, code, headers) // the app denied the socket
	}
	hdr := w.Header()
	for i := 0; i+1 < len(headers); i += 2 {
		k := http.CanonicalHeaderKey(headers[i])
		if hopByHop[k] || strings.HasPrefix(k, "Sec-Websocket-") {
			continue
		}
		hdr[k] = append(hdr[k], headers[i+1])
	}
	opts := &websocket.AcceptOptions{
		InsecureSkipVerify: true, // Origin is the app's to check, as with uvicorn
		CompressionMode:    websocket.CompressionDisabled,
	}
	if sub := call.Subprotocol(); sub != "" {
		opts.Subprotocols = []string{sub}
	}
	if h.cfg.WSCompression {
		// Without context takeover a socket holds no compressor between
		// messages: memory stays flat however many sockets are open.
		opts.CompressionMode = websocket.CompressionNoContextTakeover
	}
	var conn *websocket.Conn
	if r.ProtoMajor == 2 {
		var stream *h2Stream
		conn, stream, err = acceptH2(w, r, opts)
		if stream != nil {
			defer stream.wait() // the stream must not be written once this handler returns
		}
	} else {
		conn, err = websocket.Accept(w, r, opts)
	}
	if err != nil {
		// The handshake was checked; what fails here is the connection.
		call.CloseWS(1006, "")
		return 0
	}
	s := &wsSession{h: h, call: call, conn: conn, closeDone: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.ws.add(s)
	defer h.ws.remove(s)
	s.run()
	w.bytes = s.sent.Load()
	return 0
}

// sockets tracks the open WebSockets, for graceful shutdown and status.
type sockets struct {
	mu      sync.Mutex
	open    map[*wsSession]struct{}
	closing bool // ShutdownWebSockets began: no new sockets
	total   int64
	idle    chan struct{} // closed when none is open, if ShutdownWebSockets waits

	// Whole messages relayed, from clients to apps and back.
	in, out atomic.Int64
}

func (s *sockets) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closing
}

func (s *sockets) add(ws *wsSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open[ws] = struct{}{}
	s.total++
	if s.closing {
		go ws.shutdown()
	}
}

func (s *sockets) remove(ws *wsSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, ws)
	if len(s.open) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// WebSocketStats counts WebSockets.
type WebSocketStats struct {
	Open   int   `json:"open"`   // accepted and not yet closed
	Opened int64 `json:"opened"` // accepted since the start
	// Whole messages relayed since the start: from clients to the app
	// (In) and from the app to clients (Out).
	MessagesIn  int64 `json:"messages_in"`
	MessagesOut int64 `json:"messages_out"`
}

// WebSocketStats returns the WebSocket counters.
func (h *Handler) WebSocketStats() WebSocketStats {
	h.ws.mu.Lock()
	defer h.ws.mu.Unlock()
	return WebSocketStats{Open: len(h.ws.open), Opened: h.ws.total, MessagesIn: h.ws.in.Load(), MessagesOut: h.ws.out.Load()}
}

// wsShutdownWait bounds how long ShutdownWebSockets waits, after closing
// the sockets, for their close handshakes and their apps to finish.
const wsShutdownWait = 5 * time.Second

// ShutdownWebSockets is the WebSockets' part of a graceful shutdown, to be
// called with the HTTP server's Shutdown, which does not track the
// HTTP/1.1 connections it has handed over and waits for HTTP/2 sockets
// (handlers still) until they are closed. New handshakes are refused from
// now on; open sockets may go on until ctx ends, then each is closed with
// 1001 (going away), the app told so, and ShutdownWebSockets waits a few
// seconds for them to be gone.
func (h *Handler) ShutdownWebSockets(ctx context.Context) {
	s := &h.ws
	s.mu.Lock()
	s.closing = true
	if len(s.open) == 0 {
		s.mu.Unlock()
		return
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return
	case <-ctx.Done():
	}
	s.mu.Lock()
	var open []*wsSession
	for ws := range s.open {
		open = append(open, ws)
	}
	s.mu.Unlock()
	h.log.Info("closing open WebSockets (1001)", "count", len(open))
	for _, ws := range open {
		go ws.shutdown()
	}
	t := time.NewTimer(wsShutdownWait)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

// wsSession is one accepted WebSocket.
type wsSession struct {
	h    *Handler
	call *pool.Call
	conn *websocket.Conn
	// ctx ends when the session does: the client's side is done (closed,
	// lost, refused), or the app's.
	ctx    context.Context
	cancel context.CancelFunc

	closedWith atomic.Int32  // the code corral closed the socket with, 0 = none yet
	closeDone  chan struct{} // closed when that close has finished
	stalled    atomic.Bool   // the reader waits for the app's window: pongs are not read
	sent       atomic.Int64  // message bytes to the client
}

// run serves the socket until both directions are done.
func (s *wsSession) run() {
	// readMessage enforces WSMaxSize, so that the client is told the limit
	// in words of its own (the library's reason is off by one byte).
	s.conn.SetReadLimit(-1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		s.read()
	}()
	if s.h.cfg.WSPingInterval > 0 {
		go s.keepalive()
	}
	s.write()
	s.cancel()
	<-readDone
	_ = s.conn.CloseNow()
}

// close closes the socket with code and reason; the close handshake waits
// up to 5s for the client. Whoever comes first closes, later callers wait
// until that is done.
func (s *wsSession) close(code int, reason string) {
	if !s.closedWith.CompareAndSwap(0, int32(code)) {
		<-s.closeDone
		return
	}
	s.closeNow(code, reason)
}

func (s *wsSession) closeNow(code int, reason string) {
	_ = s.conn.Close(websocket.StatusCode(code), cutReason(reason))
	close(s.closeDone)
}

// shutdown closes the socket for a graceful shutdown: the client gets
// 1001 (going away), and the app hears it too.
func (s *wsSession) shutdown() {
	const code, reason = 1001, "server shutting down"
	if s.closedWith.CompareAndSwap(0, code) {
		go s.closeNow(code, reason)
	}
	s.call.CloseWS(code, reason)
}

// cutReason makes a close reason fit a close frame (123 bytes), cutting
// at a character boundary.
func cutReason(r string) string {
	if len(r) <= proto.MaxCloseReason {
		return r
	}
	r = r[:proto.MaxCloseReason]
	for len(r) > 0 && !utf8.ValidString(r) {
		r = r[:len(r)-1]
	}
	return r
}

// read takes the client's messages to the app until the client closes,
// the connection fails, or the app is done. The app then hears why, once.
func (s *wsSession) read() {
	defer s.cancel()
	for {
		typ, rd, err := s.conn.Reader(s.ctx)
		if err != nil {
			s.readEnded(err)
			return
		}
		text := typ == websocket.MessageText
		parts, size, err := s.readMessage(rd, text)
		if err != nil {
			s.readEnded(err)
			return
		}
		s.stalled.Store(true)
		err = s.call.SendWS(s.ctx, text, parts, size)
		s.stalled.Store(false)
		if err != nil {
			return // the app is done, or the session is
		}
		s.h.ws.in.Add(1)
	}
}

var (
	errInvalidUTF8 = errors.New("invalid UTF-8 in a text message")
	errTooBig      = errors.New("message over the size limit")
)

// readMessage reads one message in parts of at most proto.MaxPayload
// bytes, each with pool.WSHeadroom spare bytes in front, checking that a
// text message is UTF-8 and that the message (decompressed) is at most
// WSMaxSize bytes: one byte more ends it.
func (s *wsSession) readMessage(rd io.Reader, text bool) (parts [][]byte, size int64, err error) {
	var u utf8Stream
	limit := s.h.cfg.WSMaxSize
	part := make([]byte, pool.WSHeadroom, pool.WSHeadroom+4096)
	for {
		if len(part) == cap(part) {
			if len(part)-pool.WSHeadroom == proto.MaxPayload {
				if text && !u.write(part[pool.WSHeadroom:]) {
					return nil, 0, errInvalidUTF8
				}
				parts = append(parts, part)
				part = make([]byte, pool.WSHeadroom, pool.WSHeadroom+4096)
			} else {
				grown := make([]byte, len(part), min(2*cap(part), pool.WSHeadroom+proto.MaxPayload))
				copy(grown, part)
				part = grown
			}
		}
		buf := part[len(part):cap(part)]
		if room := limit - size; int64(len(buf)) > room {
			buf = buf[:room+1] // one byte over the limit tells
		}
		n, err := rd.Read(buf)
		part = part[:len(part)+n]
		size += int64(n)
		if size > limit {
			return nil, 0, errTooBig
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
	}
	if text && (!u.write(part[pool.WSHeadroom:]) || !u.end()) {
		return nil, 0, errInvalidUTF8
	}
	return append(parts, part), size, nil
}

// readEnded tells the app why the client's side ended and closes the
// socket if the client's misbehaviour ended it.
func (s *wsSession) readEnded(err error) {
	code, reason := 1006, ""
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		code, reason = int(ce.Code), ce.Reason
		if !utf8.ValidString(reason) {
			reason = strings.ToValidUTF8(reason, "\uFFFD")
		}
	case errors.Is(err, errTooBig):
		// The app hears what the client was told.
		code, reason = 1009, fmt.Sprintf("message over %d bytes", s.h.cfg.WSMaxSize)
		s.close(code, reason)
	case errors.Is(err, errInvalidUTF8):
		code, reason = 1007, "invalid UTF-8"
		s.close(code, reason)
	case s.closedWith.Load() != 0:
		code = int(s.closedWith.Load()) // corral closed it: ping timeout, shutdown, the app
	}
	s.call.CloseWS(code, reason)
}

// write takes the app's messages to the client until the app closes or
// finishes, or the client's side is done.
func (s *wsSession) write() {
	var w io.WriteCloser // the writer of a message that comes in parts
	for {
		ev, err := s.call.NextWS(s.ctx)
		switch {
		case err == io.EOF: // the app returned without closing
			s.close(1000, "")
			return
		case err != nil && s.ctx.Err() != nil:
			return // the client's side ended
		case errors.Is(err, pool.ErrRestarting):
			s.close(1012, "server restarting") // the client may reconnect at once
			return
		case err != nil:
			s.close(1011, "")
			return
		case ev.Close:
			code := ev.Code
			if !proto.ValidCloseCode(code) {
				s.h.log.Warn("the app closed a WebSocket with a code that cannot be sent; sending 1000",
					"request", s.call.String(), "code", code)
				code = 1000
			}
			s.close(code, ev.Reason)
			return
		}
		typ := websocket.MessageBinary
		if ev.Text {
			typ = websocket.MessageText
		}
		switch {
		case w == nil && !ev.More:
			err = s.conn.Write(s.ctx, typ, ev.Data)
		default:
			if w == nil {
				w, err = s.conn.Writer(s.ctx, typ)
			}
			if err == nil {
				_, err = w.Write(ev.Data)
			}
			if err == nil && !ev.More {
				err = w.Close()
				w = nil
			}
		}
		if err != nil {
			return // the connection is broken: the reader ends too
		}
		s.sent.Add(int64(len(ev.Data)))
		if !ev.More {
			s.h.ws.out.Add(1)
		}
	}
}

// keepalive pings the client every WSPingInterval and closes the socket
// with 1011 when a pong does not come within WSPingTimeout. While the
// reader waits for the app (flow control), pongs are not read, so no ping
// is sent and a late pong is not held against the client.
func (s *wsSession) keepalive() {
	t := time.NewTicker(s.h.cfg.WSPingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if s.stalled.Load() {
			continue
		}
		ctx, cancel := s.ctx, context.CancelFunc(func() {})
		if d := s.h.cfg.WSPingTimeout; d > 0 {
			ctx, cancel = context.WithTimeout(s.ctx, d)
		}
		err := s.conn.Ping(ctx)
		cancel()
		if err != nil && s.ctx.Err() == nil && !s.stalled.Load() {
			s.h.log.Debug("WebSocket client did not answer a ping; closing", "request", s.call.String())
			s.close(1011, "keepalive ping timeout")
			s.cancel()
			return
		}
	}
}

// utf8Stream checks that a byte stream given in pieces is UTF-8.
type utf8Stream struct {
	carry [utf8.UTFMax]byte
	n     int // bytes of an incomplete character carried over
}

// write checks p, following what came before; it reports false as soon
// as the stream cannot be UTF-8.
func (u *utf8Stream) write(p []byte) bool {
	for u.n > 0 {
		if len(p) == 0 {
			return true // still incomplete
		}
		u.carry[u.n] = p[0]
		u.n++
		p = p[1:]
		if utf8.FullRune(u.carry[:u.n]) {
			if r, size := utf8.DecodeRune(u.carry[:u.n]); r == utf8.RuneError && size == 1 {
				return false
			}
			u.n = 0
		}
	}
	// Hold back an incomplete character at the end.
	cut := len(p)
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(p[:cut]) {
		return false
	}
	u.n = copy(u.carry[:], p[cut:])
	return true
}

// end reports whether the stream ended at a character boundary.
func (u *utf8Stream) end() bool { return u.n == 0 }
