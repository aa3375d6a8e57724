package front

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"corral/internal/pool"
	"corral/internal/proto"
)

// appendScope adds the scope block of r (docs/PROTOCOL.md, "REQUEST for an
// ASGI worker") to a REQUEST frame under construction: eleven fixed
// fields, then the headers with lower-case names.
func (h *Handler) appendScope(b []byte, r *http.Request, scheme string) []byte {
	b = proto.AddField(b, r.Method)
	b = proto.AddField(b, scheme)
	switch {
	case r.ProtoMajor >= 2:
		b = proto.AddField(b, "2")
	case r.ProtoMinor == 0:
		b = proto.AddField(b, "1.0")
	default:
		b = proto.AddField(b, "1.1")
	}
	b = proto.AddField(b, r.URL.Path) // the full path, root_path included
	b = proto.AddField(b, rawPath(r.RequestURI))
	b = proto.AddField(b, r.URL.RawQuery)
	b = proto.AddField(b, h.cfg.ScriptName)
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		b = proto.AddField(b, host)
		b = proto.AddField(b, port)
	} else {
		b = proto.AddField(b, "")
		b = proto.AddField(b, "")
	}
	switch a := r.Context().Value(http.LocalAddrContextKey).(type) {
	case *net.UnixAddr:
		b = proto.AddField(b, a.Name)
		b = proto.AddField(b, "")
	case net.Addr:
		host, port, err := net.SplitHostPort(a.String())
		if err != nil {
			host, port = a.String(), ""
		}
		b = proto.AddField(b, host)
		b = proto.AddField(b, port)
	default:
		b = proto.AddField(b, "")
		b = proto.AddField(b, "")
	}
	if r.Host != "" {
		b = append(b, "\x00host\x00"...)
		b = append(b, r.Host...)
	}
	for k, vs := range r.Header {
		if k == "Expect" { // 100-continue is handled here, not by the app
			continue
		}
		for _, v := range vs {
			b = append(b, 0)
			b = appendLower(b, k)
			b = append(b, 0)
			b = append(b, v...)
		}
	}
	// net/http takes Transfer-Encoding out of the headers; the app sees it
	// as the client sent it (the body it reads is decoded).
	if len(r.TransferEncoding) > 0 {
		b = append(b, "\x00transfer-encoding\x00"...)
		b = append(b, strings.Join(r.TransferEncoding, ", ")...)
	}
	return b
}

func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// rawPath is the path of a request target as the client sent it:
// without the query, and without scheme and authority in absolute form.
func rawPath(target string) string {
	if !strings.HasPrefix(target, "/") {
		if i := strings.Index(target, "://"); i >= 0 {
			target = target[i+3:]
			if j := strings.IndexAny(target, "/?"); j >= 0 {
				target = target[j:]
			} else {
				target = ""
			}
		}
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
	}
	if i := strings.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	return target
}

// respondASGI writes the response of an ASGI worker: early hints first,
// then the head and the body as it comes (flushed whenever the app is
// slower than the client), then the trailers the app announced.
func (h *Handler) respondASGI(w *recorder, r *http.Request, call *pool.Call) int {
	hints := r.ProtoAtLeast(1, 1)
	code, _, headers, err := call.HeadHints(r.Context(), func(hs []string) {
		if hints {
			writeHint(w, hs)
		}
	})
	if err != nil {
		return h.failCall(w, r, err)
	}
	return h.writeResponse(w, r, call, code, headers)
}

// writeResponse writes a response whose head came from the app (an ASGI
// worker's, or a WebSocket handshake's denial).
func (h *Handler) writeResponse(w *recorder, r *http.Request, call *pool.Call, code int, headers []string) int {
	trailers, _ := call.Trailers()
	h.writeHead(w, code, headers, call, r.Method == http.MethodHead, trailers)
	if r.Method == http.MethodHead {
		return 0
	}
	if data, ok := call.Inline(); ok && !trailers {
		h.extendWrite(w)
		_, _ = w.Write(data)
		return 0
	}
	rc := http.NewResponseController(w)
	if trailers {
		// Out now, before any body: the body goes chunked (HTTP/1.1), or
		// the stream stays open for the trailing fields (HTTP/2).
		h.extendWrite(w)
		_ = rc.Flush()
	}
	err := call.WriteBody(r.Context(), deadlineWriter{w, h}, func() error {
		h.extendWrite(w)
		return rc.Flush()
	})
	if err != nil && r.Context().Err() == nil {
		if !errors.Is(err, pool.ErrAborted) {
			h.log.Debug("response aborted", "method", r.Method, "path", r.URL.Path, "error", err)
		}
		panic(http.ErrAbortHandler)
	}
	if err == nil && trailers {
		_, ts := call.Trailers()
		hdr := w.Header()
		for i := 0; i+1 < len(ts); i += 2 {
			k := http.CanonicalHeaderKey(ts[i])
			if !allowedTrailer(k) {
				continue
			}
			hdr[http.TrailerPrefix+k] = append(hdr[http.TrailerPrefix+k], ts[i+1])
		}
	}
	return 0
}

// allowedTrailer reports whether a field may go in a trailer section:
// not one that frames, routes or authenticates the message (RFC 9110
// section 6.5.1).
func allowedTrailer(k string) bool {
	switch k {
	case "Content-Length", "Content-Type", "Content-Encoding", "Content-Range", "Host", "Set-Cookie",
		"Authorization", "Cache-Control", "Expect", "Max-Forwards", "Pragma", "Range", "Te", "Trailer",
		"Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade":
		return false
	}
	return true
}

// writeHint sends an early hint (103) with the headers hs, leaving the
// response's own header map as it was.
func writeHint(w *recorder, hs []string) {
	hdr := w.Header()
	saved := map[string][]string{}
	for i := 0; i+1 < len(hs); i += 2 {
		k := http.CanonicalHeaderKey(hs[i])
		if hopByHop[k] {
			continue
		}
		if _, ok := saved[k]; !ok {
			saved[k] = hdr[k]
			hdr[k] = nil
		}
		hdr[k] = append(hdr[k], hs[i+1])
	}
	if len(saved) == 0 {
		return
	}
	// Past the recorder: a 1xx is not the response's status.
	w.ResponseWriter.WriteHeader(http.StatusEarlyHints)
	for k, v := range saved {
		if v == nil {
			delete(hdr, k)
		} else {
			hdr[k] = v
		}
	}
}
