package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Errors a Call can end with before its response head. Package front maps
// them to status codes.
var (
	ErrQueueFull    = errors.New("dispatch queue full")
	ErrQueueTimeout = errors.New("no worker free within the queue timeout")
	ErrNoWorkers    = errors.New("no worker is running")
	ErrShuttingDown = errors.New("shutting down")
	ErrWorkerDied   = errors.New("worker died during the request")
	ErrTimeout      = errors.New("request timed out")
	ErrAborted      = errors.New("response aborted")
	// ErrRestarting ends the WebSockets still open on a worker whose
	// retirement (recycling, reload) has waited its graceful timeout: the
	// app was told the client went away with 1012, the client should get
	// 1012 (service restart) and reconnect.
	ErrRestarting = errors.New("worker restarting")
)

// AppError is the application's exception for a request.
type AppError struct {
	Err       string `json:"error"`
	Traceback string `json:"traceback"`
}

func (e *AppError) Error() string { return "application error: " + e.Err }

// Body is a request body the worker pulls with READ.
type Body interface {
	io.ReaderAt
	Size() int64
}

// Request is one request to run on a worker.
type Request struct {
	// Frame is a complete REQUEST frame (proto.BeginRequest … FinishRequest);
	// its id field is overwritten on each dispatch. The pool owns it from
	// Submit on and may still write it to a worker after Release returns:
	// the caller must never reuse its bytes.
	Frame []byte
	// Body is the pulled body when the frame has FlagBodyPull, else nil.
	Body Body
	// Route keys the service-time estimate: a route pattern, or "" for
	// the method and path.
	Route string
	// Timeout is the hard limit on running time; 0 uses the pool's.
	Timeout time.Duration
	// Method and Path are for logs.
	Method, Path string
	// Class is the priority class (Config.Reserve): 0 is the default and
	// lowest; values past the highest class count as the highest.
	Class int
	// WebSocket marks a WebSocket handshake for an ASGI worker (a REQUEST
	// with proto.FlagWebSocket): once the app accepts it, it is exempt from
	// the hard timeout and its messages go through SendWS and NextWS.
	WebSocket bool
}

type callState uint8

const (
	callNew       callState = iota
	callQueued              // waiting in the pool's queue
	callSent                // written to a worker, not complete
	callDone                // the worker completed it, or it failed
	callAbandoned           // the client went away before a worker took it
)

// Call is a request in the pool and, once it has one, its response.
// Create with Pool.Submit; the caller must call Release when done.
type Call struct {
	req  Request
	pool *Pool
	key  uint64
	// class is Request.Class within the pool's classes; fixed at Submit.
	class int

	// Guarded by pool.mu.
	state      callState
	m          *member
	id         uint32
	est        time.Duration
	since      time.Time // when it (probably) began running; zero while waiting behind others
	enqueued   time.Time
	prev, next *Call // queue links
	cancelled  bool  // the client went away; discard the response
	timedOut   bool  // failed with ErrTimeout; its worker is being replaced
	slowLogged bool  // its stack was logged as a slow request
	paused     bool
	readOff    int64

	// Response, guarded by mu.
	mu       sync.Mutex
	headC    chan struct{} // closed when the head or a failure is known
	headSet  bool
	status   int
	reason   string
	headers  []string
	err      error  // failure before the head
	inline   []byte // the whole body of a response that came in one frame
	body     *spool // the body of a streamed response; nil until its head
	released bool

	// x is what a call to an ASGI worker has beyond a WSGI call; nil for
	// WSGI, so that their calls stay small. Set by Submit, then fixed.
	x *asgiCall

	// pid is the worker the call was last sent to, for logs and the
	// request journal; atomic, as it is read without the pool's lock.
	pid atomic.Int32
}

// Worker is the pid of the worker the call was last sent to, 0 if none.
// After Head it is the worker that answered.
func (c *Call) Worker() int { return int(c.pid.Load()) }

// asgiCall is the part of a Call only ASGI workers use.
type asgiCall struct {
	// responded is set when the worker sent the response's START (or
	// accepted the WebSocket): the hard timeout no longer applies.
	responded atomic.Bool
	ws        *wsLink // a WebSocket request's messages; nil for others

	// Guarded by the Call's mu: early hints before the head (hintC, made
	// by HeadHints, wakes it), trailers after the body.
	hints        [][]string
	hintC        chan struct{}
	wantTrailers bool
	trailers     []string
}

// wsl is the call's WebSocket link, nil if it is not a WebSocket.
func (c *Call) wsl() *wsLink {
	if c.x == nil {
		return nil
	}
	return c.x.ws
}

func (c *Call) String() string { return fmt.Sprintf("%s %s", c.req.Method, c.req.Path) }

// Head waits for the response status and headers. It fails with one of the
// package's errors, an *AppError, or ctx's error. Headers alternate name and
// value.
func (c *Call) Head(ctx context.Context) (status int, reason string, headers []string, err error) {
	select {
	case <-c.headC:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.status, c.reason, c.headers, c.err
	case <-ctx.Done():
		return 0, "", nil, ctx.Err()
	}
}

// HeadHints is Head for an ASGI worker's response: before returning the
// head it calls hint with the headers of each early hint (103) the app
// sent, in order, on the caller's goroutine.
func (c *Call) HeadHints(ctx context.Context, hint func(headers []string)) (status int, reason string, headers []string, err error) {
	if c.x == nil {
		return c.Head(ctx)
	}
	select {
	case <-c.headC: // the usual case, no hints: nothing to wait for
		c.mu.Lock()
		none := len(c.x.hints) == 0
		c.mu.Unlock()
		if none {
			return c.Head(ctx)
		}
	default:
	}
	for {
		c.mu.Lock()
		hs := c.x.hints
		c.x.hints = nil
		if c.x.hintC == nil {
			c.x.hintC = make(chan struct{}, 1)
		}
		wake := c.x.hintC
		c.mu.Unlock()
		for _, h := range hs {
			hint(h)
		}
		select {
		case <-c.headC:
			c.mu.Lock()
			hs, c.x.hints = c.x.hints, nil
			c.mu.Unlock()
			for _, h := range hs {
				hint(h)
			}
			return c.Head(ctx)
		case <-wake:
		case <-ctx.Done():
			return 0, "", nil, ctx.Err()
		}
	}
}

// addHint records an early hint; HeadHints hands it on.
func (c *Call) addHint(headers []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.headSet || c.x == nil {
		return // too late: the response has started
	}
	c.x.hints = append(c.x.hints, headers)
	if c.x.hintC != nil {
		wakeUp(c.x.hintC)
	}
}

// Trailers reports whether the app announced trailers with its response
// head (the body then goes out chunked), and the trailers it sent, which
// are complete once WriteBody has returned nil. Names and values
// alternate.
func (c *Call) Trailers() (announced bool, trailers []string) {
	if c.x == nil {
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.x.wantTrailers, c.x.trailers
}

func (c *Call) setTrailers(headers []string) {
	if c.x == nil {
		return
	}
	c.mu.Lock()
	c.x.trailers = append(c.x.trailers, headers...)
	c.mu.Unlock()
}

// Inline returns the whole body if it is already complete and in memory,
// which is the common case of a small response sent in one frame.
func (c *Call) Inline() ([]byte, bool) {
	c.mu.Lock()
	b, data := c.body, c.inline
	c.mu.Unlock()
	if b == nil {
		return data, true
	}
	return b.all()
}

// all returns the whole body if it is complete and in one memory part.
func (s *spool) all() ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done || s.err != nil || len(s.parts) > 1 {
		return nil, false
	}
	if len(s.parts) == 0 {
		return nil, true
	}
	if p := s.parts[0]; p.data != nil {
		return p.data, true
	}
	return nil, false
}

// Writer is where a response body goes.
type Writer interface {
	io.Writer
	io.ReaderFrom
}

// WriteBody copies the response body to w as the worker produces it,
// calling flush whenever it has written everything available so far (so a
// streamed response reaches the client as it is produced). It returns nil
// at a clean end, ErrAborted (or the worker's failure) if the body is
// incomplete, or a write error.
func (c *Call) WriteBody(ctx context.Context, w Writer, flush func() error) error {
	c.mu.Lock()
	b, data := c.body, c.inline
	c.mu.Unlock()
	if b == nil {
		if len(data) == 0 {
			return nil
		}
		_, err := w.Write(data)
		return err
	}
	for {
		p, resume, err := b.next(ctx.Done())
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, errCancelled) {
				return ctx.Err()
			}
			return err
		}
		if resume {
			c.pool.resume(c)
		}
		if p.data != nil {
			_, err = w.Write(p.data)
		} else {
			err = copyFile(w, p)
		}
		if err != nil {
			return err
		}
		if flush != nil && b.idle() {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// copyFile sends a file section; net/http turns ReadFrom into
// sendfile(2). It goes in segments so that a per-write deadline the writer
// sets bounds each pause of the client, not the whole file.
func copyFile(w Writer, p part) error {
	if p.own {
		defer p.file.Close()
	}
	n := p.n
	if n < 0 {
		st, err := p.file.Stat()
		if err != nil {
			return err
		}
		n = st.Size() - p.off
	}
	const segment = 4 << 20
	for off, end := p.off, p.off+n; off < end; {
		k := min(end-off, segment)
		m, err := w.ReadFrom(io.NewSectionReader(p.file, off, k))
		off += m
		if err != nil {
			return err
		}
		if m < k { // the file shrank under us
			return io.ErrUnexpectedEOF
		}
	}
	return nil
}

// idle reports that no part is waiting.
func (s *spool) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.parts) == 0
}

// Release ends the caller's interest in the call: a queued call leaves the
// queue, a running one is cancelled at the worker, buffers are freed.
func (c *Call) Release() {
	c.pool.release(c)
	c.mu.Lock()
	c.released = true
	b := c.body
	c.mu.Unlock()
	if b != nil {
		b.release()
	}
	if l := c.wsl(); l != nil {
		l.release()
	}
}

// setHead records the head of a streamed response and makes the spool its
// body goes to; called once by the worker's reader, before any BODY.
func (c *Call) setHead(status string, headers []string) error {
	return c.setResponse(status, headers, nil, false)
}

// setComplete records a response that came whole in one frame.
func (c *Call) setComplete(status string, headers []string, body []byte) error {
	return c.setResponse(status, headers, body, true)
}

func (c *Call) setResponse(status string, headers []string, body []byte, complete bool) error {
	code, reason, err := parseStatus(status)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.headSet {
		return nil
	}
	c.headSet = true
	if err != nil {
		c.err = &AppError{Err: err.Error()}
	} else {
		c.status, c.reason, c.headers = code, reason, headers
	}
	if complete {
		c.inline = body
	} else {
		c.body = newSpool(c.pool.limits)
		if c.released || err != nil { // nobody will read it: drop what comes
			c.body.release()
		}
	}
	close(c.headC)
	return err
}

// spool returns the streamed body's spool, nil before the head.
func (c *Call) spool() *spool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.body
}

// fail ends the call with err: before the head, Head returns it; after,
// the body ends incomplete.
func (c *Call) fail(err error) {
	c.mu.Lock()
	if !c.headSet {
		c.headSet = true
		c.err = err
		close(c.headC)
	}
	b := c.body
	c.mu.Unlock()
	if b != nil {
		b.finish(err)
	}
	if l := c.wsl(); l != nil {
		l.finish(err)
	}
}

func parseStatus(s string) (int, string, error) {
	if len(s) < 3 {
		return 0, "", fmt.Errorf("invalid status %q", s)
	}
	code, err := strconv.Atoi(s[:3])
	if err != nil || code < 200 || code > 999 {
		return 0, "", fmt.Errorf("invalid status %q", s)
	}
	reason := ""
	if len(s) > 4 {
		reason = s[4:]
	}
	return code, reason, nil
}
