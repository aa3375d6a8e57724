package front

import (
	"io"
	"net/http"
)

// A HeaderHook edits a response's header just before it goes out.
type HeaderHook interface {
	// BeforeHeader is called once per response with the final status code
	// (≥ 200, or 101) and the header about to be written, whether the
	// handler called WriteHeader or a first Write or ReadFrom wrote an
	// implicit 200. It is not called for interim 1xx answers.
	BeforeHeader(h http.Header, code int)
}

// Recorder is an http.ResponseWriter that passes everything on to the one
// it wraps and records what was answered: the final status and the number
// of body bytes. Every layer that needs to know the status (front for the
// access log, static, guard for its jails) embeds one.
//
// A layer that edits the header before it goes out sets Hook rather than
// overriding WriteHeader: Go has no virtual dispatch, so the Write and
// ReadFrom of an embedded Recorder call the Recorder's WriteHeader, never
// the outer type's, and an override would miss every implicit 200.
//
// The zero value with ResponseWriter set is ready to use. Like the
// ResponseWriter it wraps, a Recorder serves one response from the
// handler's goroutine.
type Recorder struct {
	http.ResponseWriter

	// Hook, if not nil, is called before the final header is written.
	// Set it to the pointer of the type that embeds the Recorder: a
	// pointer in an interface costs no allocation, where a func field
	// would cost a closure per request.
	Hook HeaderHook

	status int   // the final status written, 0 = none yet
	bytes  int64 // body bytes written
}

// Status is the final status code written (≥ 200, or 101), 0 if none has
// been written yet. An interim 1xx answer such as 103 Early Hints is not
// the status.
func (r *Recorder) Status() int { return r.status }

// Bytes is the number of body bytes written so far.
func (r *Recorder) Bytes() int64 { return r.bytes }

// WriteHeader passes code on. The first final code (≥ 200, or 101
// Switching Protocols, after which net/http sends no further headers) is
// recorded and, before it goes out, given to Hook. Interim 1xx codes pass
// through unrecorded; codes after the final one pass through for net/http
// to report as superfluous.
func (r *Recorder) WriteHeader(code int) {
	if r.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
		if r.Hook != nil {
			r.Hook.BeforeHeader(r.ResponseWriter.Header(), code)
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write writes an implicit 200 first if no final status has been written.
func (r *Recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// ReadFrom writes an implicit 200 first if no final status has been
// written, then hands src to the wrapped writer's ReadFrom, so net/http
// can send a file with sendfile(2). HTTP/2's writer has none: src is
// copied through Write.
func (r *Recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// RouteNoter is implemented by a ResponseWriter that wants to know which
// of the app's routes a request matched (the metrics' writer, outside the
// guard), so the route is matched once per request.
type RouteNoter interface {
	// NoteRoute gets the route's rule as `corral routes` prints it, a
	// prefix, or "" for a path of no known route.
	NoteRoute(rule string)
}
