package front

import (
	"net"
	"net/http"
	"strings"

	"corral/internal/proto"
	"corral/internal/urlpath"
)

// appendEnviron adds the per-request CGI/WSGI keys of r to a REQUEST frame
// under construction (docs/PROTOCOL.md). Constant keys (SCRIPT_NAME,
// SERVER_SOFTWARE, wsgi.version, …) are set once per worker instead.
func (h *Handler) appendEnviron(b []byte, r *http.Request, bodyLen int64, hasBody bool, scheme string) []byte {
	b = proto.AddEnv(b, "REQUEST_METHOD", r.Method)
	b = proto.AddEnv(b, "PATH_INFO", pathInfo(r.URL.Path, h.cfg.ScriptName))
	b = proto.AddEnv(b, "QUERY_STRING", r.URL.RawQuery)
	b = proto.AddEnv(b, "RAW_URI", r.RequestURI)
	b = proto.AddEnv(b, "REQUEST_URI", r.RequestURI)
	b = proto.AddEnv(b, "SERVER_PROTOCOL", r.Proto)
	b = proto.AddEnv(b, "wsgi.url_scheme", scheme)

	name, port := splitHostPort(r.Host)
	if name == "" { // no Host header (HTTP/1.0): the address the request came in on
		name, port = localAddr(r)
	}
	if port == "" {
		port = defaultPort(scheme)
	}
	b = proto.AddEnv(b, "SERVER_NAME", name)
	b = proto.AddEnv(b, "SERVER_PORT", port)

	if host, rport, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		b = proto.AddEnv(b, "REMOTE_ADDR", host)
		b = proto.AddEnv(b, "REMOTE_PORT", rport)
	} else {
		b = proto.AddEnv(b, "REMOTE_ADDR", "")
	}
	if hasBody {
		b = appendInt(proto.AddEnv(b, "CONTENT_LENGTH", ""), bodyLen)
	}
	if r.Host != "" {
		b = proto.AddEnv(b, "HTTP_HOST", r.Host)
	}
	for k, vs := range r.Header {
		switch k {
		case "Content-Type":
			b = proto.AddEnv(b, "CONTENT_TYPE", strings.Join(vs, ", "))
			continue
		case "Content-Length", "Expect", "Host":
			// CONTENT_LENGTH is the decoded body length; 100-continue is
			// handled here, not by the app.
			continue
		}
		b = appendHeaderKey(b, k)
		sep := ", "
		if k == "Cookie" {
			sep = "; "
		}
		for i, v := range vs {
			if i > 0 {
				b = append(b, sep...)
			}
			b = append(b, v...)
		}
	}
	return b
}

// appendHeaderKey appends "\0HTTP_X_FOO\0" for "X-Foo". The leading
// separator is always due: REQUEST_METHOD is the first pair.
func appendHeaderKey(b []byte, k string) []byte {
	b = append(b, "\x00HTTP_"...)
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c == '-':
			c = '_'
		}
		b = append(b, c)
	}
	return append(b, 0)
}

func appendInt(b []byte, n int64) []byte {
	if n == 0 {
		return append(b, '0')
	}
	var d [20]byte
	i := len(d)
	for n > 0 {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[i:]...)
}

// splitHostPort splits a Host header value; port is "" when absent.
func splitHostPort(hostport string) (host, port string) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.HasSuffix(hostport, "]") { // no port: skip net's error path, it allocates
		return strings.Trim(hostport, "[]"), ""
	}
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return strings.Trim(hostport, "[]"), ""
}

// localAddr is the address the request came in on, for SERVER_NAME and
// SERVER_PORT when the client sent no Host.
func localAddr(r *http.Request) (string, string) {
	a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if a != nil {
		if h, p, err := net.SplitHostPort(a.String()); err == nil {
			return h, p
		}
	}
	return "localhost", ""
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// pathInfo is PATH_INFO for path: with the app mounted under prefix, the
// part after it. A path outside the prefix is passed whole (gunicorn does
// the same); the app usually answers it 404.
func pathInfo(path, prefix string) string {
	if prefix == "" {
		return path
	}
	if rest, ok := urlpath.Below(path, prefix); ok {
		return rest
	}
	return path
}
