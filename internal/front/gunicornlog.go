package front

import (
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"corral/internal/logformat"
)

// envKey is an environ variable a {name}e atom reads, resolved at start.
type envKey int

const (
	envNone envKey = iota // not one corral can tell: "-"
	envRemoteAddr
	envRemotePort
	envMethod
	envPathInfo
	envQuery
	envRawURI
	envProtocol
	envServerName
	envServerPort
	envScheme
	envContentLength
)

var envKeys = map[string]envKey{
	"remote_addr": envRemoteAddr, "remote_port": envRemotePort, "request_method": envMethod,
	"path_info": envPathInfo, "query_string": envQuery, "raw_uri": envRawURI, "request_uri": envRawURI,
	"server_protocol": envProtocol, "server_name": envServerName, "server_port": envServerPort,
	"wsgi.url_scheme": envScheme, "content_length": envContentLength,
}

// logPart is a logformat.Part resolved for rendering: header names in
// canonical form, environ names mapped to what the request holds.
type logPart struct {
	atom logformat.Atom
	text string // Literal
	name string // RequestHeader, ResponseHeader: canonical header name
	env  envKey // Environ
}

// NewGunicornAccessLog starts an access log writing lines in a gunicorn
// --access-logformat format (parsed by logformat.Parse). Close flushes it.
func NewGunicornAccessLog(dst io.Writer, parts []logformat.Part) *AccessLog {
	l := NewAccessLog(dst, "combined")
	l.pid = os.Getpid()
	l.parts = make([]logPart, 0, len(parts))
	for _, p := range parts {
		lp := logPart{atom: p.Atom, text: p.Text}
		switch p.Atom {
		case logformat.RequestHeader, logformat.ResponseHeader:
			lp.name = http.CanonicalHeaderKey(p.Key)
		case logformat.Environ:
			switch {
			case p.Key == "content_type":
				lp = logPart{atom: logformat.RequestHeader, name: "Content-Type"}
			case p.Key == "http_host":
				lp = logPart{atom: logformat.RequestHeader, name: "Host"}
			case strings.HasPrefix(p.Key, "http_"):
				// A CGI name: headers with an underscore never get this far.
				lp = logPart{atom: logformat.RequestHeader, name: http.CanonicalHeaderKey(strings.ReplaceAll(p.Key[5:], "_", "-"))}
			default:
				lp.env = envKeys[p.Key]
			}
		}
		l.parts = append(l.parts, lp)
	}
	return l
}

// appendGunicorn renders one line as gunicorn's Logger.access would:
// strings get their quotes escaped (and here control bytes too, so a
// client cannot forge lines), a missing value is "-".
func (l *AccessLog) appendGunicorn(b []byte, e *Entry, host string, now time.Time) []byte {
	r := e.Req
	d := e.Duration
	for i := range l.parts {
		p := &l.parts[i]
		switch p.atom {
		case logformat.Literal:
			b = append(b, p.text...)
		case logformat.RemoteAddr:
			b = appendQuoted(b, host)
		case logformat.Ident, logformat.Unknown:
			b = append(b, '-')
		case logformat.User:
			user, _, ok := r.BasicAuth()
			if !ok || user == "" {
				user = "-"
			}
			b = appendQuoted(b, user)
		case logformat.Time:
			b = append(b, '[')
			b = now.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
			b = append(b, ']')
		case logformat.RequestLine:
			b = appendQuoted(b, r.Method)
			b = append(b, ' ')
			b = appendQuoted(b, r.RequestURI)
			b = append(b, ' ')
			b = appendQuoted(b, r.Proto)
		case logformat.Status:
			b = strconv.AppendInt(b, int64(e.Status), 10)
		case logformat.Method:
			b = appendQuoted(b, r.Method)
		case logformat.URLPath:
			b = appendQuoted(b, r.URL.Path)
		case logformat.Query:
			b = appendQuoted(b, r.URL.RawQuery)
		case logformat.Protocol:
			b = appendQuoted(b, r.Proto)
		case logformat.BytesDash, logformat.Bytes:
			b = strconv.AppendInt(b, e.Sent, 10)
		case logformat.Referer:
			b = appendQuoted(b, orDash(r.Referer()))
		case logformat.UserAgent:
			b = appendQuoted(b, orDash(r.UserAgent()))
		case logformat.Seconds:
			b = strconv.AppendInt(b, int64(d/time.Second), 10)
		case logformat.Micros:
			b = strconv.AppendInt(b, d.Microseconds(), 10)
		case logformat.Millis:
			b = strconv.AppendInt(b, d.Milliseconds(), 10)
		case logformat.SecondsFrac:
			us := d.Microseconds()
			b = strconv.AppendInt(b, us/1e6, 10)
			b = append(b, '.')
			frac := us % 1e6
			for div := int64(1e5); div > 0; div /= 10 {
				b = append(b, byte('0'+frac/div%10))
			}
		case logformat.PID:
			pid := e.Worker
			if pid == 0 {
				pid = l.pid
			}
			b = append(b, '<')
			b = strconv.AppendInt(b, int64(pid), 10)
			b = append(b, '>')
		case logformat.RequestHeader:
			if p.name == "Host" {
				b = appendQuoted(b, orDash(r.Host))
			} else {
				b = appendLast(b, r.Header[p.name])
			}
		case logformat.ResponseHeader:
			b = appendLast(b, e.Header[p.name])
		case logformat.Environ:
			b = appendQuoted(b, orDash(environValue(r, p.env)))
		}
	}
	return append(b, '\n')
}

// appendLast appends the last of a header's values (a repeated header is
// a dict key set twice in gunicorn's atoms), "-" if it has none.
func appendLast(b []byte, vs []string) []byte {
	if len(vs) == 0 {
		return append(b, '-')
	}
	return appendQuoted(b, vs[len(vs)-1])
}

// environValue is the value a WSGI environ would have had for k.
func environValue(r *http.Request, k envKey) string {
	switch k {
	case envRemoteAddr, envRemotePort:
		host, port, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return ""
		}
		if k == envRemotePort {
			return port
		}
		return host
	case envMethod:
		return r.Method
	case envPathInfo:
		return r.URL.Path
	case envQuery:
		return r.URL.RawQuery
	case envRawURI:
		return r.RequestURI
	case envProtocol:
		return r.Proto
	case envServerName, envServerPort:
		name, port := splitHostPort(r.Host)
		if k == envServerPort {
			return port
		}
		return name
	case envScheme:
		if r.TLS != nil {
			return "https"
		}
		return "http"
	case envContentLength:
		return r.Header.Get("Content-Length")
	}
	return ""
}
