package h1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// wire is what a response needs of its connection. The connection loop
// owns it; one response uses it at a time.
type wire struct {
	conn net.Conn
	// werr is the first error writing to conn; the connection is not
	// reused after one.
	werr error
	// cancel cancels the request's context, on a write error as
	// net/http does.
	cancel func()
	// keepAlives reports whether the server still keeps connections
	// alive (false once it shuts down); nil means always.
	keepAlives func() bool
	// logf logs what net/http's server would log (superfluous
	// WriteHeader calls, invalid Content-Length); nil discards.
	logf func(format string, args ...any)
	// setReadDeadline serves ResponseController.SetReadDeadline; nil
	// sets the connection's.
	setReadDeadline func(time.Time) error
	// writeDeadlineSet notes that a handler set a write deadline: the
	// connection loop clears it after the response, as net/http does.
	writeDeadlineSet bool
}

// Write writes to the connection and notes the first error, as
// net/http's checkConnErrorWriter.
func (c *wire) Write(p []byte) (int, error) {
	n, err := c.conn.Write(p)
	if err != nil && c.werr == nil {
		c.werr = err
		if c.cancel != nil {
			c.cancel()
		}
	}
	return n, err
}

func (c *wire) doKeepAlives() bool { return c.keepAlives == nil || c.keepAlives() }

func (c *wire) log(format string, args ...any) {
	if c.logf != nil {
		c.logf(format, args...)
	}
}

// Buffer sizes and pools, as net/http's: handler writes gather in a 2 KiB
// buffer before the chunk writer (its size decides between an automatic
// Content-Length and chunking, and the chunk sizes on the wire), and the
// head and body go out through a 4 KiB buffer. Both are taken when a
// response needs them and given back when it is finished, so that an idle
// connection holds no write buffer.
const (
	bufferBeforeChunkingSize = 2048
	wireBufferSize           = 4 << 10
	sniffLen                 = 512
)

var (
	bufPool2k   sync.Pool
	bufPool4k   sync.Pool
	copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
)

func getWriter(pool *sync.Pool, w io.Writer, size int) *bufio.Writer {
	if v := pool.Get(); v != nil {
		bw := v.(*bufio.Writer)
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, size)
}

func putWriter(pool *sync.Pool, bw *bufio.Writer) {
	bw.Reset(nil)
	pool.Put(bw)
}

// response is the http.ResponseWriter of one request on the fast path.
// It puts on the wire the bytes net/http's server writes for the same
// handler calls (the Date value aside); its fields and steps mirror
// net/http's response and chunkWriter, whose names they keep.
//
// Besides http.ResponseWriter it has Flush, FlushError, ReadFrom (sendfile
// through the connection once the head is out), SetReadDeadline,
// SetWriteDeadline and EnableFullDuplex, so http.ResponseController works
// on it; it has no Hijack (the fast path serves no upgrade).
type response struct {
	c   *wire
	req *http.Request

	handlerHeader http.Header
	// cwHeader is net/http's chunkWriter.header: nil, or a clone of
	// handlerHeader taken when WriteHeader was called after Header, so
	// that later changes to the map do not reach the head.
	cwHeader     http.Header
	calledHeader bool
	wroteHeader  bool // logically: WriteHeader was called
	headWritten  bool // the head is in bw (chunkWriter.wroteHeader)
	chunking     bool
	handlerDone  bool

	status          int
	contentLength   int64 // -1: not known
	written         int64
	closeAfterReply bool
	trailers        []string

	// From the request before the handler runs: it may change the header.
	wants10KeepAlive, wantsClose bool

	w  *bufio.Writer // bufferBeforeChunkingSize, writes to cw
	cw chunkWriter
	bw *bufio.Writer // wireBufferSize, writes to c; nil until needed

	statusBuf [3]byte
	clenBuf   [20]byte
	dateBuf   [len(http.TimeFormat)]byte
}

// newResponse starts the response to req on c.
func newResponse(c *wire, req *http.Request) *response {
	w := &response{
		c:                c,
		req:              req,
		handlerHeader:    make(http.Header),
		contentLength:    -1,
		wants10KeepAlive: req.ProtoMajor == 1 && req.ProtoMinor == 0 && hasToken(req.Header.Get("Connection"), "keep-alive"),
		wantsClose:       req.Close || hasToken(req.Header.Get("Connection"), "close"),
	}
	w.cw.res = w
	w.w = getWriter(&bufPool2k, &w.cw, bufferBeforeChunkingSize)
	return w
}

// wireWriter returns the buffer to the connection, taking it from the
// pool on first use.
func (w *response) wireWriter() *bufio.Writer {
	if w.bw == nil {
		w.bw = getWriter(&bufPool4k, w.c, wireBufferSize)
	}
	return w.bw
}

// Header returns the header map; see net/http's response.Header for why
// it may snapshot it.
func (w *response) Header() http.Header {
	if w.cwHeader == nil && w.wroteHeader && !w.headWritten {
		w.cwHeader = w.handlerHeader.Clone()
	}
	w.calledHeader = true
	return w.handlerHeader
}

// WriteHeader is net/http's: 1xx codes other than 101 go out at once
// with the header so far; a second call is logged and ignored; codes
// outside 100-999 panic.
func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		if w.c.logf != nil {
			caller := relevantCaller()
			w.c.logf("http: superfluous response.WriteHeader call from %s (%s:%d)", caller.Function, path.Base(caller.File), caller.Line)
		}
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		bw := w.wireWriter()
		writeStatusLine(bw, w.req.ProtoAtLeast(1, 1), code, w.statusBuf[:])
		// RFC 8297: the header map is not cleared.
		w.handlerHeader.WriteSubset(bw, excludedHeadersNoBody)
		bw.WriteString("\r\n")
		bw.Flush()
		return
	}
	w.wroteHeader = true
	w.status = code
	if w.calledHeader && w.cwHeader == nil {
		w.cwHeader = w.handlerHeader.Clone()
	}
	if cl := get(w.handlerHeader, "Content-Length"); cl != "" {
		v, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.c.log("http: invalid Content-Length of %q", cl)
			w.handlerHeader.Del("Content-Length")
		}
	}
}

func (w *response) Write(data []byte) (int, error) { return w.write(len(data), data, "") }

func (w *response) WriteString(data string) (int, error) { return w.write(len(data), nil, data) }

func (w *response) write(lenData int, dataB []byte, dataS string) (int, error) {
	if w.w == nil {
		return 0, errFinished
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if lenData == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(lenData) // ignoring errors, as net/http does
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if dataB != nil {
		return w.w.Write(dataB)
	}
	return w.w.WriteString(dataS)
}

// Flush sends what is buffered, the head first if it is not out yet.
func (w *response) Flush() { w.FlushError() }

// FlushError is Flush, returning the write error.
func (w *response) FlushError() error {
	if w.w == nil {
		return errFinished
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	err := w.w.Flush()
	e2 := w.cw.flush()
	if err == nil {
		err = e2
	}
	return err
}

// errFinished is returned to a handler that writes after it returned.
// net/http writes into a buffer it has already pooled; the fast path
// refuses instead.
var errFinished = errors.New("h1: write after the handler returned")

// ReadFrom copies src to the body, with the connection's ReadFrom
// (sendfile for a file) once the head is out, when the body is neither
// chunked nor suppressed, as net/http does. The first 512 bytes go
// through Write, for sniffing and so that no head is sent before src
// has data.
func (w *response) ReadFrom(src io.Reader) (n int64, err error) {
	if w.w == nil {
		return 0, errFinished
	}
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	rf, ok := w.c.conn.(io.ReaderFrom)
	if !ok {
		return io.CopyBuffer(writerOnly{w}, src, buf)
	}
	if !w.headWritten {
		n0, err := io.CopyBuffer(writerOnly{w}, io.LimitReader(src, sniffLen), buf)
		n += n0
		if err != nil || n0 < sniffLen {
			return n, err
		}
	}
	w.w.Flush()
	w.cw.flush()
	if !w.chunking && bodyAllowedForStatus(w.status) && w.req.Method != http.MethodHead {
		n0, err := rf.ReadFrom(src)
		n += n0
		w.written += n0
		return n, err
	}
	n0, err := io.CopyBuffer(writerOnly{w}, src, buf)
	n += n0
	return n, err
}

// SetReadDeadline is for http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error {
	if w.c.setReadDeadline != nil {
		return w.c.setReadDeadline(t)
	}
	return w.c.conn.SetReadDeadline(t)
}

// SetWriteDeadline is for http.ResponseController.
func (w *response) SetWriteDeadline(t time.Time) error {
	w.c.writeDeadlineSet = true
	return w.c.conn.SetWriteDeadline(t)
}

// EnableFullDuplex is for http.ResponseController. The fast path serves
// no request body, so there is nothing to interleave: it succeeds, as
// net/http's does.
func (w *response) EnableFullDuplex() error { return nil }

// finish ends the response after the handler returned (net/http's
// finishRequest): the head if not written yet, the rest of the body, the
// last chunk and trailers, then everything flushed; both buffers go
// back to their pools.
func (w *response) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.w.Flush()
	putWriter(&bufPool2k, w.w)
	w.w = nil
	w.cw.close()
	w.bw.Flush()
	putWriter(&bufPool4k, w.bw)
	w.bw = nil
}

// shouldReuseConnection reports whether the connection may serve another
// request, after finish.
func (w *response) shouldReuseConnection() bool {
	if w.closeAfterReply {
		return false
	}
	if w.req.Method != http.MethodHead && w.contentLength != -1 && bodyAllowedForStatus(w.status) && w.contentLength != w.written {
		return false // did not write enough: the client would be out of step
	}
	return w.c.werr == nil
}

// finalTrailers returns the trailers to send after the last chunk: the
// TrailerPrefix keys and the declared ones, as net/http.
func (w *response) finalTrailers() http.Header {
	var t http.Header
	for k, vv := range w.handlerHeader {
		if kk, found := strings.CutPrefix(k, http.TrailerPrefix); found {
			if t == nil {
				t = make(http.Header)
			}
			t[kk] = vv
		}
	}
	for _, k := range w.trailers {
		if t == nil {
			t = make(http.Header)
		}
		for _, v := range w.handlerHeader[k] {
			t.Add(k, v)
		}
	}
	return t
}

func (w *response) declareTrailer(k string) {
	k = http.CanonicalHeaderKey(k)
	if strings.HasPrefix(k, "If-") || badTrailer[k] {
		return // RFC 9110 §6.5.1
	}
	w.trailers = append(w.trailers, k)
}

// badTrailer is httpguts' list of fields forbidden in trailers.
var badTrailer = map[string]bool{
	"Authorization":       true,
	"Cache-Control":       true,
	"Connection":          true,
	"Content-Encoding":    true,
	"Content-Length":      true,
	"Content-Range":       true,
	"Content-Type":        true,
	"Expect":              true,
	"Host":                true,
	"Keep-Alive":          true,
	"Max-Forwards":        true,
	"Pragma":              true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Proxy-Connection":    true,
	"Range":               true,
	"Realm":               true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Www-Authenticate":    true,
}

// chunkWriter sits between the 2 KiB buffer and the wire: the first
// bytes through it decide the head (writeHeader), and it frames the body
// in chunks when chunking.
type chunkWriter struct{ res *response }

func (cw *chunkWriter) Write(p []byte) (n int, err error) {
	w := cw.res
	if !w.headWritten {
		w.writeHeader(p)
	}
	if w.req.Method == http.MethodHead {
		return len(p), nil // eat writes
	}
	bw := w.wireWriter()
	if w.chunking {
		var hex [16]byte
		bw.Write(strconv.AppendInt(hex[:0], int64(len(p)), 16))
		if _, err = bw.WriteString("\r\n"); err != nil {
			w.c.conn.Close()
			return 0, err
		}
	}
	n, err = bw.Write(p)
	if w.chunking && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.c.conn.Close()
	}
	return n, err
}

func (cw *chunkWriter) flush() error {
	w := cw.res
	if !w.headWritten {
		w.writeHeader(nil)
	}
	return w.wireWriter().Flush()
}

func (cw *chunkWriter) close() {
	w := cw.res
	if !w.headWritten {
		w.writeHeader(nil)
	}
	if w.chunking {
		bw := w.wireWriter()
		bw.WriteString("0\r\n") // the last chunk
		if trailers := w.finalTrailers(); trailers != nil {
			trailers.Write(bw)
		}
		bw.WriteString("\r\n")
	}
}

// extraHeader is the fields writeHeader adds, written after the
// handler's, in this order.
type extraHeader struct {
	contentType      string
	connection       string
	transferEncoding string
	date             []byte
	contentLength    []byte
}

func (h *extraHeader) write(bw *bufio.Writer) {
	if h.date != nil {
		bw.WriteString("Date: ")
		bw.Write(h.date)
		bw.WriteString("\r\n")
	}
	if h.contentLength != nil {
		bw.WriteString("Content-Length: ")
		bw.Write(h.contentLength)
		bw.WriteString("\r\n")
	}
	for i, v := range [...]string{h.contentType, h.connection, h.transferEncoding} {
		if v != "" {
			bw.WriteString(extraHeaderKeys[i])
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
}

var extraHeaderKeys = [...]string{"Content-Type", "Connection", "Transfer-Encoding"}

// writeHeader decides and writes the head, before p, the first bytes of
// the body (sniffed for Content-Type, and its length for Content-Length
// if the handler is done). It is net/http's chunkWriter.writeHeader step
// by step, less what needs a request body.
func (w *response) writeHeader(p []byte) {
	if w.headWritten {
		return
	}
	w.headWritten = true

	keepAlivesEnabled := w.c.doKeepAlives()
	isHEAD := w.req.Method == http.MethodHead

	// header is the one written; if it is the handler's own map, fields
	// are left out through excludeHeader rather than deleted.
	header := w.cwHeader
	owned := header != nil
	if !owned {
		header = w.handlerHeader
	}
	var excludeHeader map[string]bool
	delHeader := func(key string) {
		if owned {
			header.Del(key)
			return
		}
		if _, ok := header[key]; !ok {
			return
		}
		if excludeHeader == nil {
			excludeHeader = make(map[string]bool)
		}
		excludeHeader[key] = true
	}
	var setHeader extraHeader

	// The "Trailer:" prefixed keys are not written.
	trailers := false
	for k := range w.cwHeader {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if excludeHeader == nil {
				excludeHeader = make(map[string]bool)
			}
			excludeHeader[k] = true
			trailers = true
		}
	}
	for _, v := range w.cwHeader["Trailer"] {
		trailers = true
		foreachHeaderElement(v, w.declareTrailer)
	}

	te := get(header, "Transfer-Encoding")
	hasTE := te != ""

	// The handler is done and wrote this little (or nothing): send a
	// Content-Length, except where net/http does not.
	if w.handlerDone && !trailers && !hasTE && bodyAllowedForStatus(w.status) && !has(header, "Content-Length") && (!isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		setHeader.contentLength = strconv.AppendInt(w.clenBuf[:0], int64(len(p)), 10)
	}

	if w.wants10KeepAlive && keepAlivesEnabled {
		sentLength := get(header, "Content-Length") != ""
		if sentLength && get(header, "Connection") == "keep-alive" {
			w.closeAfterReply = false
		}
	}

	hasCL := w.contentLength != -1

	if w.wants10KeepAlive && (isHEAD || hasCL || !bodyAllowedForStatus(w.status)) {
		if _, connectionHeaderSet := header["Connection"]; !connectionHeaderSet {
			setHeader.connection = "keep-alive"
		}
	} else if !w.req.ProtoAtLeast(1, 1) || w.wantsClose {
		w.closeAfterReply = true
	}

	if get(header, "Connection") == "close" || !keepAlivesEnabled {
		w.closeAfterReply = true
	}

	// net/http discards an unread request body here; the fast path's
	// requests have none.

	code := w.status
	if bodyAllowedForStatus(code) {
		_, haveType := header["Content-Type"]
		// A non-blank Content-Encoding means the body is not sniffed.
		hasCE := len(header.Get("Content-Encoding")) > 0
		if !hasCE && !haveType && !hasTE && len(p) > 0 {
			setHeader.contentType = http.DetectContentType(p)
		}
	} else {
		for _, k := range suppressedHeaders(code) {
			delHeader(k)
		}
	}

	if !has(header, "Date") {
		setHeader.date = time.Now().UTC().AppendFormat(w.dateBuf[:0], http.TimeFormat)
	}

	if hasCL && hasTE && te != "identity" {
		w.c.log("http: WriteHeader called with both Transfer-Encoding of %q and a Content-Length of %d", te, w.contentLength)
		delHeader("Content-Length")
		hasCL = false
	}

	switch {
	case w.req.Method == http.MethodHead || !bodyAllowedForStatus(code) || code == http.StatusNoContent:
		delHeader("Transfer-Encoding")
	case hasCL:
		delHeader("Transfer-Encoding")
	case w.req.ProtoAtLeast(1, 1):
		if hasTE && te == "identity" {
			// Close-delimited, as net/http allows for Server-Sent Events.
			w.chunking = false
			w.closeAfterReply = true
			delHeader("Transfer-Encoding")
		} else {
			w.chunking = true
			setHeader.transferEncoding = "chunked"
			if hasTE && te == "chunked" {
				delHeader("Transfer-Encoding") // written below
			}
		}
	default:
		// HTTP/1.0 without a length: the body ends at the close.
		w.closeAfterReply = true
		delHeader("Transfer-Encoding")
	}

	if w.chunking {
		delHeader("Content-Length")
	}

	// Connection: close unless this is a protocol switch, or keep-alives
	// are on and the handler already said close.
	delConnectionHeader := w.closeAfterReply &&
		(!keepAlivesEnabled || !hasToken(get(w.cwHeader, "Connection"), "close")) &&
		!isProtocolSwitchResponse(w.status, header)
	if delConnectionHeader {
		delHeader("Connection")
		if w.req.ProtoAtLeast(1, 1) {
			setHeader.connection = "close"
		}
	}

	bw := w.wireWriter()
	writeStatusLine(bw, w.req.ProtoAtLeast(1, 1), code, w.statusBuf[:])
	w.cwHeader.WriteSubset(bw, excludeHeader)
	setHeader.write(bw)
	bw.WriteString("\r\n")
}

// relevantCaller returns the first caller outside the response's
// methods and net/http, for the log, as net/http's relevantCaller.
func relevantCaller() runtime.Frame {
	pc := make([]uintptr, 16)
	n := runtime.Callers(1, pc)
	frames := runtime.CallersFrames(pc[:n])
	var frame runtime.Frame
	for {
		frame, more := frames.Next()
		if !strings.HasPrefix(frame.Function, "net/http.") && !strings.Contains(frame.Function, "/h1.(*response).") && !strings.HasSuffix(frame.Function, "/h1.relevantCaller") {
			return frame
		}
		if !more {
			break
		}
	}
	return frame
}

// get is net/http's Header.get: the first value of an already canonical
// key, without canonicalizing it.
func get(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// has is net/http's Header.has.
func has(h http.Header, key string) bool {
	_, ok := h[key]
	return ok
}

func writeStatusLine(bw *bufio.Writer, is11 bool, code int, scratch []byte) {
	if is11 {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	if text := http.StatusText(code); text != "" {
		bw.Write(strconv.AppendInt(scratch[:0], int64(code), 10))
		bw.WriteByte(' ')
		bw.WriteString(text)
		bw.WriteString("\r\n")
	} else {
		fmt.Fprintf(bw, "%03d status code %d\r\n", code, code)
	}
}

func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == 204:
		return false
	case status == 304:
		return false
	}
	return true
}

var (
	suppressedHeaders304    = []string{"Content-Type", "Content-Length", "Transfer-Encoding"}
	suppressedHeadersNoBody = []string{"Content-Length", "Transfer-Encoding"}
	excludedHeadersNoBody   = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}
)

func suppressedHeaders(status int) []string {
	switch {
	case status == 304:
		return suppressedHeaders304
	case !bodyAllowedForStatus(status):
		return suppressedHeadersNoBody
	}
	return nil
}

func isProtocolSwitchResponse(code int, h http.Header) bool {
	return code == http.StatusSwitchingProtocols && h.Get("Upgrade") != "" &&
		valuesContainToken(h["Connection"], "upgrade")
}

// foreachHeaderElement splits v at commas and calls fn for each
// non-empty element, trimmed, as net/http.
func foreachHeaderElement(v string, fn func(string)) {
	v = textproto.TrimString(v)
	if v == "" {
		return
	}
	if !strings.Contains(v, ",") {
		fn(v)
		return
	}
	for f := range strings.SplitSeq(v, ",") {
		if f = textproto.TrimString(f); f != "" {
			fn(f)
		}
	}
}

// writerOnly hides a writer's ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }
