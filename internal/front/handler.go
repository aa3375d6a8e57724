// Package front is corral's HTTP face: it checks and buffers requests,
// turns them into worker requests, writes the responses, maps failures to
// status codes and writes the access log. It is the only package that
// turns errors into HTTP answers.
package front

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"corral/internal/journal"
	"corral/internal/pool"
	"corral/internal/proto"
)

// Config configures a Handler. Limits of 0 mean no limit.
type Config struct {
	LimitRequestLine      int   // bytes of method + URI + protocol
	LimitRequestFields    int   // number of header fields
	LimitRequestFieldSize int   // bytes of one "Name: value" field
	MaxBodySize           int64 // bytes of request body after decoding

	BodyMemory  int64         // request body bytes kept in memory before a temp file (default 1 MiB)
	InlineBody  int           // bodies up to this size travel inside the REQUEST frame (default 64 KiB)
	BodyTimeout time.Duration // longest pause between two reads of a request body
	SendTimeout time.Duration // longest pause between two writes of a response
	SpoolDir    string        // temporary files

	// RouteTimeouts override the pool's hard timeout by path; first match wins.
	RouteTimeouts []RouteTimeout

	// ScriptName is the URL prefix the app is mounted under (SCRIPT_NAME,
	// without a trailing slash). A path under it reaches the app with the
	// prefix taken off PATH_INFO, as gunicorn does; "" = none. An ASGI app
	// gets it as root_path, and the full path.
	ScriptName string

	// ASGI makes requests scope blocks for ASGI workers (pool.ASGI)
	// instead of environs, and enables WebSockets.
	ASGI bool
	// WebSocket settings (ASGI): the largest client message (default
	// 16 MiB), how often clients are pinged (0 = never) and how long they
	// have to answer (0 = no limit), and whether permessage-deflate is
	// offered.
	WSMaxSize      int64
	WSPingInterval time.Duration
	WSPingTimeout  time.Duration
	WSCompression  bool

	Pool      *pool.Pool
	AccessLog *AccessLog // nil = off
	// RequestIDs, when set, names the header that carries request IDs
	// (RequestIDs.Wrap, in front of the guard, assigns them); the app may
	// answer its own, which then replaces corral's. nil = off.
	RequestIDs *RequestIDs
	// Journal, when set, gets a row per answered request.
	Journal *journal.Requests
	Logger  *slog.Logger
}

// Handler serves HTTP requests by running them on the pool.
type Handler struct {
	cfg      Config
	log      *slog.Logger
	ws       sockets
	idHeader string // canonical request ID header; "" = none
}

// New returns a Handler.
func New(cfg Config) *Handler {
	if cfg.BodyMemory <= 0 {
		cfg.BodyMemory = 1 << 20
	}
	if cfg.InlineBody <= 0 {
		cfg.InlineBody = 64 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.WSMaxSize <= 0 {
		cfg.WSMaxSize = 16 << 20
	}
	h := &Handler{cfg: cfg, log: cfg.Logger.With("component", "front"), ws: sockets{open: map[*wsSession]struct{}{}}}
	if cfg.RequestIDs != nil {
		h.idHeader = cfg.RequestIDs.Header()
	}
	return h
}

// MaxHeaderBytes is the net/http limit that matches the configured request
// line and field limits, with room for the CRLFs; the exact limits are
// checked per request so the answer can be 414 or 431.
func (c *Config) MaxHeaderBytes() int {
	line, n, size := c.LimitRequestLine, c.LimitRequestFields, c.LimitRequestFieldSize
	if line <= 0 || n <= 0 || size <= 0 {
		return proto.MaxPayload / 2
	}
	return min(line+n*(size+2)+4096, proto.MaxPayload/2)
}

// Client is implemented by a ResponseWriter that knows more about the
// client than the connection does: package guard's, which reads the
// forwarding headers of trusted proxies and picks priority classes.
type Client interface {
	// ClientScheme is "https" or "http" as a trusted proxy reported it,
	// "" to go by the connection.
	ClientScheme() string
	// ClientClass is the request's priority class in the pool (0 = default).
	ClientClass() int
}

// Router is implemented by a ResponseWriter that knows the app's routes:
// package guard's.
type Router interface {
	// ClientRoute is the route rule path matches, as `corral routes`
	// prints it; "" if none does.
	ClientRoute(path string) string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{Recorder: Recorder{ResponseWriter: w}}
	if cl, ok := w.(Client); ok {
		rec.scheme, rec.class = cl.ClientScheme(), cl.ClientClass()
	}
	status := h.serve(rec, r)
	if status != 0 && rec.status == 0 {
		rec.status = status
	}
	if h.cfg.AccessLog != nil || h.cfg.Journal != nil {
		worker := 0
		if rec.call != nil {
			worker = rec.call.Worker()
		}
		h.observe(w, r, rec.status, rec.bytes, rec.bytesIn, worker, rec.Header(), time.Since(start))
	}
}

// LogStatic records a request that static files answered, in the access
// log and the journal; static.Config.Log fits.
func (h *Handler) LogStatic(r *http.Request, status int, size int64, d time.Duration) {
	h.observe(nil, r, status, size, 0, 0, nil, d)
}

// observe writes the access log line and the journal row of a request.
// w, if not nil, is the ResponseWriter ServeHTTP got (for the route).
func (h *Handler) observe(w http.ResponseWriter, r *http.Request, status int, sent, received int64, worker int, hdr http.Header, d time.Duration) {
	id := ""
	if h.idHeader != "" {
		if vs := r.Header[h.idHeader]; len(vs) > 0 {
			id = vs[0]
		}
	}
	if h.cfg.AccessLog != nil {
		h.cfg.AccessLog.LogEntry(&Entry{Req: r, Status: status, Sent: sent, Duration: d, Header: hdr, Worker: worker, RequestID: id})
	}
	if h.cfg.Journal != nil {
		route := ""
		if rt, ok := w.(Router); ok {
			route = rt.ClientRoute(r.URL.Path)
		}
		client, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			client = ""
		}
		h.cfg.Journal.Add(journal.Request{
			Time: time.Now(), Method: r.Method, Path: r.URL.Path, Route: route, Status: status,
			Duration: d, BytesIn: received, BytesOut: sent, Client: client, Worker: worker, RequestID: id,
		})
	}
}

// serve handles one request; a non-zero return is an error status already
// written by fail.
func (h *Handler) serve(w *recorder, r *http.Request) int {
	if s, msg := h.check(r); s != 0 {
		return h.fail(w, s, msg)
	}
	if h.cfg.ASGI && wantsWebSocket(r) {
		return h.serveWebSocket(w, r)
	}
	if h.cfg.MaxBodySize > 0 && r.ContentLength > h.cfg.MaxBodySize {
		return h.fail(w, http.StatusRequestEntityTooLarge, "")
	}
	hasBody := r.ContentLength != 0 // -1: chunked, length unknown until read
	var b *body
	if hasBody {
		var err error
		if b, err = h.readBody(w, r); err != nil {
			switch {
			case errors.Is(err, errBodyTooLarge):
				w.Header().Set("Connection", "close")
				return h.fail(w, http.StatusRequestEntityTooLarge, "")
			case errors.Is(err, errBodyTimeout):
				w.Header().Set("Connection", "close")
				return h.fail(w, http.StatusRequestTimeout, "")
			default:
				// The client went away or sent a broken body (bad chunking).
				w.Header().Set("Connection", "close")
				return h.fail(w, http.StatusBadRequest, "malformed request body")
			}
		}
		defer b.close()
		w.bytesIn = b.len()
	}

	// The frame belongs to the pool once submitted: a worker's write queue
	// may still hold it after this handler returns (a client that went
	// away), so it is never recycled here.
	frame := make([]byte, 0, 1024)
	if b.inline(h.cfg.InlineBody) {
		frame = make([]byte, 0, 1024+len(b.mem))
	}
	scheme := schemeOf(w, r)
	frame = proto.BeginRequest(frame)
	if h.cfg.ASGI {
		frame = h.appendScope(frame, r, scheme)
	} else {
		frame = h.appendEnviron(frame, r, b.len(), hasBody || r.Header.Get("Content-Length") != "", scheme)
	}
	req := &pool.Request{Method: r.Method, Path: r.URL.Path, Timeout: h.timeoutFor(r.URL.Path), Class: w.class}
	var inline []byte
	var flags uint8
	switch {
	case b == nil:
	case b.inline(h.cfg.InlineBody):
		inline = b.mem
	default:
		flags = proto.FlagBodyPull
		req.Body = b
	}
	var err error
	if frame, err = proto.FinishRequest(frame, 0, flags, inline); err != nil {
		return h.fail(w, http.StatusRequestHeaderFieldsTooLarge, "")
	}
	req.Frame = frame

	call, err := h.cfg.Pool.Submit(req)
	if err != nil {
		return h.failCall(w, r, err)
	}
	defer call.Release()
	w.call = call
	if h.cfg.ASGI {
		return h.respondASGI(w, r, call)
	}
	code, _, headers, err := call.Head(r.Context())
	if err != nil {
		return h.failCall(w, r, err)
	}
	h.writeHead(w, code, headers, call, r.Method == http.MethodHead, false)
	if r.Method == http.MethodHead {
		return 0
	}
	if data, ok := call.Inline(); ok {
		h.extendWrite(w)
		_, _ = w.Write(data)
		return 0
	}
	rc := http.NewResponseController(w)
	err = call.WriteBody(r.Context(), deadlineWriter{w, h}, func() error {
		h.extendWrite(w)
		return rc.Flush()
	})
	if err != nil && r.Context().Err() == nil {
		if !errors.Is(err, pool.ErrAborted) {
			h.log.Debug("response aborted", "method", r.Method, "path", r.URL.Path, "error", err)
		}
		// Headers are out: the only honest signal left is a broken connection.
		panic(http.ErrAbortHandler)
	}
	return 0
}

// schemeOf is the request's scheme as the client used it: a trusted
// proxy's word, else the connection's.
func schemeOf(w *recorder, r *http.Request) string {
	switch {
	case w.scheme != "":
		return w.scheme
	case r.TLS != nil:
		return "https"
	}
	return "http"
}

func (b *body) len() int64 {
	if b == nil {
		return 0
	}
	return b.size
}

// check enforces the request line and header limits and refuses requests
// that a WSGI environ cannot represent faithfully.
func (h *Handler) check(r *http.Request) (int, string) {
	if l := h.cfg.LimitRequestLine; l > 0 && len(r.Method)+len(r.RequestURI)+len(r.Proto)+2 > l {
		return http.StatusRequestURITooLong, ""
	}
	fields := 0
	for k, vs := range r.Header {
		if k == h.idHeader {
			// corral's own (or a trusted proxy's, checked): not the
			// client's to count against its limits.
			continue
		}
		fields += len(vs)
		for _, v := range vs {
			if l := h.cfg.LimitRequestFieldSize; l > 0 && len(k)+2+len(v) > l {
				return http.StatusRequestHeaderFieldsTooLarge, ""
			}
		}
		// "X_Foo" and "X-Foo" are the same environ key, HTTP_X_FOO: a client
		// could smuggle a value past a proxy that checks one spelling
		// (Transfer_Encoding). gunicorn and nginx refuse or drop these too.
		if strings.IndexByte(k, '_') >= 0 {
			return http.StatusBadRequest, "underscore in header name"
		}
	}
	if l := h.cfg.LimitRequestFields; l > 0 && fields > l {
		return http.StatusRequestHeaderFieldsTooLarge, ""
	}
	if strings.IndexByte(r.URL.Path, 0) >= 0 {
		return http.StatusBadRequest, "NUL in path"
	}
	// Request-target forms (RFC 9112 §3.2): origin-form, absolute-form with
	// an http(s) URL, authority-form for CONNECT only, asterisk-form for
	// OPTIONS only (net/http answers OPTIONS * itself).
	if t := r.RequestURI; !strings.HasPrefix(t, "/") && r.Method != http.MethodConnect {
		if t == "*" || (r.URL.Scheme != "http" && r.URL.Scheme != "https") || r.URL.Host == "" {
			return http.StatusBadRequest, "invalid request target"
		}
	}
	// A singleton field sent twice is ambiguous (RFC 9110 §5.3); joined
	// with a comma it would reach the app as a type nobody sent.
	if len(r.Header["Content-Type"]) > 1 {
		return http.StatusBadRequest, "repeated Content-Type"
	}
	if len(r.TransferEncoding) > 0 && r.Header.Get("Content-Length") != "" {
		return http.StatusBadRequest, "both Transfer-Encoding and Content-Length"
	}
	return 0, ""
}

// hopByHop lists response headers that belong to the connection, which
// corral manages; an app cannot set them (PEP 3333).
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// writeHead sends the app's status and headers. corral adds only what
// framing needs: net/http's Date, Content-Length (here, for an inline
// body) or chunked coding, and Connection. With trailers (an ASGI app
// announced them) the app's Trailer field goes out and no Content-Length
// is added.
func (h *Handler) writeHead(w *recorder, code int, headers []string, call *pool.Call, head, trailers bool) {
	hdr := w.Header()
	hasLength := trailers
	appID := false
	// One backing array for every value; a repeated name (Set-Cookie)
	// appends past its one-element slice into a new array.
	vals := make([]string, len(headers)/2)
	for i := 0; i+1 < len(headers); i += 2 {
		k := http.CanonicalHeaderKey(headers[i])
		if hopByHop[k] && !(trailers && k == "Trailer") {
			continue
		}
		if k == "Content-Length" {
			hasLength = true
		}
		if old, ok := hdr[k]; ok {
			// The only header there before the app's is corral's request
			// ID: the app's own replaces it.
			if k != h.idHeader || appID {
				hdr[k] = append(old, headers[i+1])
				continue
			}
			appID = true
		}
		j := i / 2
		vals[j] = headers[i+1]
		hdr[k] = vals[j : j+1 : j+1]
	}
	if !hasLength && !head {
		if data, ok := call.Inline(); ok && bodyAllowed(code) {
			hdr["Content-Length"] = []string{strconv.Itoa(len(data))}
		}
	}
	// net/http sniffs a Content-Type for a body whose response has none
	// (HTTP/1 and HTTP/2 alike); a key present with no values stops it and
	// writes no field. The app's headers go out as it sent them, as with
	// gunicorn.
	if _, ok := hdr["Content-Type"]; !ok {
		hdr["Content-Type"] = nil
	}
	w.WriteHeader(code)
}

func bodyAllowed(code int) bool {
	return code != http.StatusNoContent && code != http.StatusNotModified && (code < 100 || code >= 200)
}

// failCall answers a request that got no response head from the app.
func (h *Handler) failCall(w *recorder, r *http.Request, err error) int {
	var ae *pool.AppError
	switch {
	case errors.As(err, &ae):
		return h.fail(w, http.StatusInternalServerError, "")
	case errors.Is(err, pool.ErrWorkerDied), errors.Is(err, pool.ErrAborted):
		return h.fail(w, http.StatusBadGateway, "")
	case errors.Is(err, pool.ErrTimeout):
		return h.fail(w, http.StatusGatewayTimeout, "")
	case errors.Is(err, pool.ErrQueueFull), errors.Is(err, pool.ErrQueueTimeout),
		errors.Is(err, pool.ErrNoWorkers), errors.Is(err, pool.ErrShuttingDown):
		w.Header().Set("Retry-After", "1")
		return h.fail(w, http.StatusServiceUnavailable, "")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 499 // client closed the request; nothing is written
	default:
		h.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		return h.fail(w, http.StatusInternalServerError, "")
	}
}

// fail writes a short plain-text error answer.
func (h *Handler) fail(w *recorder, code int, detail string) int {
	if code == 499 {
		return code
	}
	msg := strconv.Itoa(code) + " " + http.StatusText(code)
	if detail != "" {
		msg += ": " + detail
	}
	msg += "\n"
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(len(msg)))
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
	return code
}

// extendWrite pushes the write deadline SendTimeout into the future, so the
// timeout bounds each pause of a slow client rather than the whole response.
func (h *Handler) extendWrite(w http.ResponseWriter) {
	if h.cfg.SendTimeout > 0 {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(h.cfg.SendTimeout))
	}
}

// recorder notes the status and size of the answer for the access log and
// carries the client's scheme and priority class from a Client.
type recorder struct {
	Recorder
	scheme  string // from a Client, "" = the connection's
	class   int
	bytesIn int64      // request body bytes read
	call    *pool.Call // the call that answered; nil if none
}

// deadlineWriter extends the write deadline before each write.
type deadlineWriter struct {
	w *recorder
	h *Handler
}

func (d deadlineWriter) Write(b []byte) (int, error) {
	d.h.extendWrite(d.w)
	return d.w.Write(b)
}

func (d deadlineWriter) ReadFrom(src io.Reader) (int64, error) {
	d.h.extendWrite(d.w)
	return d.w.ReadFrom(src)
}
