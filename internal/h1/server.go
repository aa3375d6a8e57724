package h1

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.x connections on the fast path and hands every
// connection it does not fully understand to net/http (see Listener).
// Its fields mirror the http.Server fields corral uses, with the same
// meaning; set them before Listener is called.
type Server struct {
	// Handler serves the requests; nil means http.DefaultServeMux.
	Handler http.Handler
	// ReadHeaderTimeout bounds the reading of a request head, from the
	// connection's accept or from the first bytes of a later request;
	// IdleTimeout bounds the wait for the next request. 0 = no limit.
	// Both are enforced by a sweeper with a resolution of a fraction of
	// the shorter one (at most a second late), without per-request
	// deadline changes.
	ReadHeaderTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes is net/http's; the fast path itself serves heads up
	// to maxFastHead bytes and hands longer ones to net/http.
	MaxHeaderBytes int
	// ConnState, ConnContext, BaseContext and ErrorLog are net/http's.
	// A connection handed to net/http leaves in http.StateHijacked; net/http
	// then reports it, as a new net.Conn, from http.StateNew.
	ConnState   func(net.Conn, http.ConnState)
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	BaseContext func(net.Listener) context.Context
	ErrorLog    *log.Logger
	// HTTPServer, if set, is the value of http.ServerContextKey in the
	// requests' contexts: the net/http server the connections go to.
	HTTPServer *http.Server

	inShutdown        atomic.Bool
	disableKeepAlives atomic.Bool

	mu        sync.Mutex
	listeners map[*handoffListener]struct{}
	conns     map[*conn]struct{}
	sweeping  bool // the sweeper runs; it stops after a shutdown, once no connection is left
}

// maxFastHead is the longest head the fast path serves itself: longer
// ones are rare (large cookies) and go to net/http, which keeps the read
// buffer and the cost of re-parsing a head that arrives in pieces small.
const maxFastHead = 16 << 10

// Listener starts serving the connections l accepts, in a goroutine of
// its own, and returns the listener net/http must serve
// (http.Server.Serve): its Accept yields the connections the fast path
// hands over, which replay the bytes already read before reading more,
// and then the errors of l's Accept. Closing it closes l.
func (s *Server) Listener(l net.Listener) net.Listener {
	hl := &handoffListener{
		l:     l,
		s:     s,
		conns: make(chan net.Conn),
		errs:  make(chan error),
		done:  make(chan struct{}),
	}
	ctx := context.Background()
	if s.BaseContext != nil {
		ctx = s.BaseContext(hl)
		if ctx == nil {
			panic("BaseContext returned a nil context")
		}
	}
	if s.HTTPServer != nil {
		ctx = context.WithValue(ctx, http.ServerContextKey, s.HTTPServer)
	}
	s.mu.Lock()
	if s.listeners == nil {
		s.listeners = map[*handoffListener]struct{}{}
	}
	s.listeners[hl] = struct{}{}
	if !s.sweeping && s.sweepEvery() > 0 {
		s.sweeping = true
		go s.sweep()
	}
	s.mu.Unlock()
	go hl.acceptLoop(ctx)
	return hl
}

// SetKeepAlivesEnabled is net/http's: with false, every connection closes
// after its current response.
func (s *Server) SetKeepAlivesEnabled(v bool) { s.disableKeepAlives.Store(!v) }

func (s *Server) doKeepAlives() bool { return !s.disableKeepAlives.Load() && !s.inShutdown.Load() }

// Shutdown stops accepting (closing the listeners), closes the idle
// connections (and those still waiting for their first request after 5
// seconds), lets the active ones finish their response and close, and
// returns when none is left or when ctx ends (then with its error), as
// http.Server.Shutdown does. Connections already handed to net/http are
// net/http's to shut down.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.closeListeners()
	const maxPoll = 500 * time.Millisecond
	poll := time.Millisecond
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		if s.closeIdleConns() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			poll = min(poll*2, maxPoll)
			t.Reset(poll)
		}
	}
}

// Close closes the listeners and every connection at once. It returns
// nil.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		c.closeNow()
	}
	s.mu.Unlock()
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	ls := make([]*handoffListener, 0, len(s.listeners))
	for hl := range s.listeners {
		ls = append(ls, hl)
	}
	s.mu.Unlock()
	for _, hl := range ls {
		hl.Close()
	}
}

// closeIdleConns closes the idle connections, as net/http's, and reports
// whether no connection is left.
func (s *Server) closeIdleConns() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for c := range s.conns {
		c.closeIfIdle(now)
	}
	return len(s.conns) == 0
}

// sweepEvery is the sweeper's period: a quarter of the shorter timeout,
// between 10 ms and 1 s; 0 without timeouts.
func (s *Server) sweepEvery() time.Duration {
	d := s.ReadHeaderTimeout
	if d <= 0 || s.IdleTimeout > 0 && s.IdleTimeout < d {
		d = s.IdleTimeout
	}
	if d <= 0 {
		return 0
	}
	return min(max(d/4, 10*time.Millisecond), time.Second)
}

// sweep closes the connections whose head or idle wait is over.
func (s *Server) sweep() {
	t := time.NewTicker(s.sweepEvery())
	defer t.Stop()
	for now := range t.C {
		ns := now.UnixNano()
		s.mu.Lock()
		for c := range s.conns {
			c.expire(ns)
		}
		if s.inShutdown.Load() && len(s.conns) == 0 {
			s.sweeping = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

func (s *Server) track(c *conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.conns == nil {
			s.conns = map[*conn]struct{}{}
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

func (s *Server) handler() http.Handler {
	if s.Handler != nil {
		return s.Handler
	}
	return http.DefaultServeMux
}

// handoffListener is what Listener returns.
type handoffListener struct {
	l     net.Listener
	s     *Server
	conns chan net.Conn
	errs  chan error
	done  chan struct{}
	once  sync.Once
}

func (hl *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-hl.conns:
		return c, nil
	case err := <-hl.errs:
		return nil, err
	case <-hl.done:
		return nil, net.ErrClosed
	}
}

// Close stops the accept loop and closes the listener beneath.
func (hl *handoffListener) Close() error {
	var err error
	hl.once.Do(func() {
		close(hl.done)
		err = hl.l.Close()
		hl.s.mu.Lock()
		delete(hl.s.listeners, hl)
		hl.s.mu.Unlock()
	})
	return err
}

func (hl *handoffListener) Addr() net.Addr { return hl.l.Addr() }

// deliver hands c to net/http; false if the listener is closed (the
// caller then closes c).
func (hl *handoffListener) deliver(c net.Conn) bool {
	select {
	case hl.conns <- c:
		return true
	case <-hl.done:
		return false
	}
}

// acceptLoop serves what l accepts. Accept errors go to net/http's
// Accept, which retries temporary ones; the loop waits as net/http does
// before it accepts again after one, and stops after any other.
func (hl *handoffListener) acceptLoop(ctx context.Context) {
	var delay time.Duration
	for {
		rwc, err := hl.l.Accept()
		if err != nil {
			select {
			case hl.errs <- err:
			case <-hl.done:
				return
			}
			var te interface{ Temporary() bool }
			if !errors.As(err, &te) || !te.Temporary() {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
			case <-hl.done:
				return
			}
			continue
		}
		delay = 0
		if _, ok := rwc.(interface{ ConnectionState() tls.ConnectionState }); ok {
			// TLS stays on net/http (a *tls.Conn, or a decrypted stream
			// that net/http would give its TLS state).
			go func() {
				if !hl.deliver(rwc) {
					rwc.Close()
				}
			}()
			continue
		}
		c := newConn(ctx, hl, rwc)
		c.setState(http.StateNew)
		go c.serve()
	}
}

// Connection phases, for the timeouts and Shutdown.
const (
	phaseHead   = iota // reading a request head (ReadHeaderTimeout)
	phaseIdle          // after a response, before 4 bytes of the next request (IdleTimeout)
	phaseActive        // a handler runs
	phaseGone          // closed or handed over
)

// conn is one connection on the fast path. Its serve goroutine parses
// the heads and runs the handlers; its read goroutine (readLoop) reads
// ahead into pending, so that a client that goes away cancels the
// running request's context at once, with no per-request goroutine or
// deadline change.
type conn struct {
	s          *Server
	hl         *handoffListener
	rwc        net.Conn
	ctx        context.Context
	remoteAddr string
	wire       wire

	mu      sync.Mutex
	cond    sync.Cond
	pending []byte // read, not yet parsed; nil when empty
	scanned int    // how much of pending parseHeadFrom checked (see there)
	// pendingBuf is the pooled buffer pending started in.
	pendingBuf *[]byte
	rerr       error // why readLoop stopped; it reads no more
	stop       bool  // serve asked readLoop to stop (a handover)
	closed     bool
	cancel     context.CancelFunc // the running request's; nil between requests
	phase      int
	deadline   int64 // unix ns when the current phase times out; 0: never
	state      http.ConnState
	stateAt    time.Time
	rdone      chan struct{}
	// readDeadlineSet notes that a handler set a read deadline; it is
	// cleared after the response, as net/http does before the next head.
	readDeadlineSet bool
}

func newConn(ctx context.Context, hl *handoffListener, rwc net.Conn) *conn {
	c := &conn{s: hl.s, hl: hl, rwc: rwc, rdone: make(chan struct{})}
	c.cond.L = &c.mu
	if c.s.ConnContext != nil {
		ctx = c.s.ConnContext(ctx, rwc)
		if ctx == nil {
			panic("ConnContext returned nil")
		}
	}
	c.ctx = ctx // completed in serve
	c.wire = wire{
		conn:            rwc,
		keepAlives:      c.s.doKeepAlives,
		logf:            c.s.logf,
		setReadDeadline: c.setReadDeadline,
	}
	c.s.track(c, true)
	return c
}

// setState records st and runs the ConnState hook.
func (c *conn) setState(st http.ConnState) {
	c.mu.Lock()
	c.state, c.stateAt = st, time.Now()
	c.mu.Unlock()
	if c.s.ConnState != nil {
		c.s.ConnState(c.rwc, st)
	}
}

// setReadDeadline is the handler's ResponseController.SetReadDeadline.
// It governs readLoop's reads: when it passes, the request is canceled,
// as net/http's background read does.
func (c *conn) setReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadlineSet = true
	c.mu.Unlock()
	return c.rwc.SetReadDeadline(t)
}

// setPhaseLocked enters phase p with its timeout; c.mu is held.
func (c *conn) setPhaseLocked(p int) {
	if c.phase == phaseActive && p != phaseActive {
		c.cond.Broadcast() // readLoop may wait for the handler's end
	}
	c.phase = p
	var d time.Duration
	switch p {
	case phaseHead:
		d = c.s.ReadHeaderTimeout
	case phaseIdle:
		d = c.s.IdleTimeout
	}
	c.deadline = 0
	if d > 0 {
		c.deadline = time.Now().Add(d).UnixNano()
	}
}

// expire closes c if its head or idle wait is over (net/http's read
// deadline: the connection closes without an answer).
func (c *conn) expire(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if (c.phase == phaseHead || c.phase == phaseIdle) && c.deadline != 0 && now > c.deadline && !c.stop && !c.closed {
		c.closeLocked()
	}
}

// closeIfIdle closes c if net/http's Shutdown would: idle, or new for
// more than 5 seconds.
func (c *conn) closeIfIdle(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.state
	if st == http.StateNew && c.stateAt.Unix() < now.Unix()-5 {
		st = http.StateIdle
	}
	if st == http.StateIdle && !c.stop {
		c.closeLocked()
	}
}

func (c *conn) closeNow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stop {
		c.closeLocked()
	}
}

func (c *conn) closeLocked() {
	if !c.closed {
		c.closed = true
		c.rwc.Close()
		c.cond.Broadcast()
	}
}

// readLoop reads ahead into pending until an error, a close, or a stop
// for a handover. While idle it reads into a small buffer of its own, so
// an idle connection holds no pooled buffer; a read that fills it is
// followed by reads into a pooled 4 KiB buffer.
func (c *conn) readLoop() {
	defer close(c.rdone)
	var small [512]byte
	full := false
	for {
		c.mu.Lock()
		for len(c.pending) >= maxFastHead && !c.stop && !c.closed {
			c.cond.Wait() // enough read ahead
		}
		if c.stop || c.closed {
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		buf := small[:]
		var pooled *[]byte
		if full {
			pooled = readBufPool.Get().(*[]byte)
			buf = *pooled
		}
		n, err := c.rwc.Read(buf)
		full = n == len(buf)

		c.mu.Lock()
		if c.closed {
			if pooled != nil {
				readBufPool.Put(pooled)
			}
			c.mu.Unlock()
			return
		}
		if n > 0 {
			if c.pending == nil {
				c.pendingBuf = readBufPool.Get().(*[]byte)
				c.pending = (*c.pendingBuf)[:0]
			}
			c.pending = append(c.pending, buf[:n]...)
		}
		if pooled != nil {
			readBufPool.Put(pooled)
		}
		var ne net.Error
		if err != nil && errors.As(err, &ne) && ne.Timeout() && c.readDeadlineSet && !c.stop {
			// A read deadline the handler set has passed: cancel the
			// request as net/http does, and read on once its response is
			// done and the deadline cleared.
			if c.cancel != nil && len(c.pending) == 0 {
				c.cancel()
			}
			for c.phase == phaseActive && !c.stop && !c.closed {
				c.cond.Wait()
			}
			c.cond.Broadcast()
			c.mu.Unlock()
			continue
		}
		if err != nil {
			if !(c.stop && errors.As(err, &ne) && ne.Timeout()) {
				// A timeout of our own making (a handover) is not the
				// connection's error; anything else is replayed to
				// net/http after a handover.
				c.rerr = err
				// As net/http's background read: the client is gone, so
				// the running request is canceled (unless it sent more
				// first: net/http's read would have returned that).
				if c.cancel != nil && len(c.pending) == 0 {
					c.cancel()
				}
			}
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

var readBufPool = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// consumeLocked drops the first n pending bytes; c.mu is held. An empty
// buffer goes back to the pool.
func (c *conn) consumeLocked(n int) {
	c.scanned = 0 // offsets into pending move
	rest := copy(c.pending, c.pending[n:])
	c.pending = c.pending[:rest]
	if rest == 0 {
		// The pooled buffer goes back unless append outgrew it.
		if c.pendingBuf != nil && cap(c.pending) == cap(*c.pendingBuf) {
			readBufPool.Put(c.pendingBuf)
		}
		c.pending, c.pendingBuf = nil, nil
	}
}

// serve runs the connection: parse a head, run the handler, finish the
// response, and again while the connection may be reused. A head the
// fast path declines, with everything read after it, goes to net/http.
func (c *conn) serve() {
	handedOver := false
	defer func() {
		if handedOver {
			return
		}
		// readLoop is not waited for: a close that lingers (the framing
		// check's, after an early answer) keeps the socket open while it
		// drains, and readLoop's read with it. It drops what it reads.
		c.mu.Lock()
		c.phase = phaseGone
		c.closeLocked()
		if c.pending != nil {
			c.consumeLocked(len(c.pending))
		}
		c.mu.Unlock()
		c.s.track(c, false)
		c.setState(http.StateClosed)
	}()
	// As net/http, the addresses are asked for here, not in the accept
	// loop: a PROXY protocol connection reads its header to answer.
	if ra := c.rwc.RemoteAddr(); ra != nil {
		c.remoteAddr = ra.String()
	}
	c.ctx = context.WithValue(c.ctx, http.LocalAddrContextKey, c.rwc.LocalAddr())
	go c.readLoop()

	h := c.s.handler()
	maxHead := c.s.MaxHeaderBytes
	if maxHead <= 0 {
		maxHead = http.DefaultMaxHeaderBytes
	}
	maxHead = min(maxHead, maxFastHead)
	c.mu.Lock()
	c.setPhaseLocked(phaseHead)
	c.mu.Unlock()
	afterPost := false
	for {
		ctx, cancel := context.WithCancel(c.ctx)
		req, st := c.readHead(ctx, cancel, maxHead, afterPost)
		switch st {
		case headClose:
			cancel()
			return
		case headHandOver:
			cancel()
			handedOver = c.handOver()
			return
		}
		c.setState(http.StateActive)
		if c.s.inShutdown.Load() {
			// net/http drops a request it reads once Shutdown began.
			cancel()
			return
		}
		req.RemoteAddr = c.remoteAddr
		c.wire.cancel = cancel
		w := newResponse(&c.wire, req)
		if !c.runHandler(h, w, req) {
			cancel()
			if w.bw != nil {
				w.bw.Flush() // as net/http's close: the 4 KiB buffer is flushed
			}
			return
		}
		cancel()
		c.mu.Lock()
		c.cancel = nil
		c.mu.Unlock()
		w.finish()
		// As net/http: deadlines the handler set end with its response.
		if c.wire.writeDeadlineSet {
			c.wire.writeDeadlineSet = false
			c.rwc.SetWriteDeadline(time.Time{})
		}
		c.mu.Lock()
		if c.readDeadlineSet {
			c.readDeadlineSet = false
			c.rwc.SetReadDeadline(time.Time{})
		}
		c.mu.Unlock()
		if !w.shouldReuseConnection() {
			return
		}
		c.setState(http.StateIdle)
		if !c.s.doKeepAlives() {
			return
		}
		afterPost = req.Method == http.MethodPost
		c.mu.Lock()
		c.setPhaseLocked(phaseIdle)
		c.mu.Unlock()
	}
}

// readHead outcomes.
const (
	headParsed = iota
	headClose
	headHandOver
)

// readHead waits for the next head in pending and parses it, with ctx
// as the request's context and cancel as its cancel (for readLoop). After a POST it first skips the CR and LF
// bytes net/http skips.
func (c *conn) readHead(ctx context.Context, cancel context.CancelFunc, maxHead int, afterPost bool) (*http.Request, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.closed {
			return nil, headClose
		}
		if c.phase == phaseIdle && len(c.pending) >= 4 {
			// net/http's idle wait ends with 4 bytes (Peek(4)).
			c.setPhaseLocked(phaseHead)
		}
		if c.phase == phaseIdle {
			// Nothing is decided on fewer than 4 bytes, as net/http does
			// not look at them: if the reads end first, its Peek(4) fails
			// and it closes without an answer.
			if c.rerr != nil {
				return nil, headClose
			}
			c.cond.Wait()
			continue
		}
		if afterPost {
			n, ok := skipAfterPost(c.pending)
			if ok || c.rerr != nil {
				c.consumeLocked(n)
				afterPost = false
			}
		}
		if !afterPost {
			req, n, st := parseHeadFrom(ctx, c.pending, maxHead, &c.scanned)
			switch st {
			case parsed:
				c.consumeLocked(n)
				c.setPhaseLocked(phaseActive)
				c.cancel = cancel
				if c.rerr != nil && len(c.pending) == 0 {
					// The reads already failed: net/http's background
					// read would fail at once and cancel.
					cancel()
				}
				return req, headParsed
			case declined:
				return nil, headHandOver
			}
			if c.rerr != nil {
				if len(c.pending) == 0 {
					return nil, headClose // the client went away between requests
				}
				// A partial head then an error: net/http answers it
				// (400 for a head cut short by EOF).
				return nil, headHandOver
			}
		}
		c.cond.Wait()
	}
}

// runHandler runs h and reports whether it returned; a panic is
// recovered and logged as net/http does (http.ErrAbortHandler silently).
func (c *conn) runHandler(h http.Handler, w *response, req *http.Request) (ok bool) {
	defer func() {
		if err := recover(); err != nil {
			if err != http.ErrAbortHandler {
				const size = 64 << 10
				buf := make([]byte, size)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.logf("http: panic serving %v: %v\n%s", c.remoteAddr, err, buf)
			}
			ok = false
		}
	}()
	h.ServeHTTP(w, req)
	return true
}

// aLongTimeAgo is a read deadline that interrupts a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// handOver stops readLoop and gives the connection, with the bytes read
// and not served, to net/http. It reports false if the connection was
// closed instead.
func (c *conn) handOver() bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.stop = true
	c.phase = phaseGone
	c.cond.Broadcast()
	c.mu.Unlock()
	c.rwc.SetReadDeadline(aLongTimeAgo)
	<-c.rdone
	c.rwc.SetReadDeadline(time.Time{})

	c.mu.Lock()
	replay := &replayConn{Conn: c.rwc, buf: append([]byte(nil), c.pending...), err: c.rerr}
	if c.pending != nil {
		c.consumeLocked(len(c.pending))
	}
	c.mu.Unlock()
	c.s.track(c, false)
	c.setState(http.StateHijacked)
	if !c.hl.deliver(replay) {
		c.rwc.Close()
	}
	return true
}

// replayConn is a connection handed to net/http: its reads return the
// bytes the fast path read and did not serve, then the error its reads
// stopped on (EOF, or the framing check's refusal), if any, then what the
// connection reads. It keeps CloseWrite and ReadFrom, which net/http
// uses when the connection has them.
type replayConn struct {
	net.Conn
	buf []byte
	err error
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the connection if it can.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("h1: %T cannot half-close", c.Conn)
}

// ReadFrom keeps sendfile for net/http's file responses.
func (c *replayConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}
