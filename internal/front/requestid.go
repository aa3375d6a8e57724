package front

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/netip"
	"sync/atomic"

	"corral/internal/trust"
)

// MaxRequestIDLen is the longest request ID taken from a trusted proxy.
// Heroku's router and most tracing proxies send 20 to 200 characters; a
// longer one is replaced by corral's own.
const MaxRequestIDLen = 200

// RequestIDs gives every request an ID: the one a trusted proxy sent in the
// header, or a new one. The ID is set on the request's header (so the
// WSGI environ has HTTP_X_REQUEST_ID and an ASGI scope the x-request-id
// header, like any header), and on the response, the only header corral
// adds of its own accord. A response that already has the header from the
// app keeps the app's value.
//
// A RequestIDs is immutable after NewRequestIDs apart from its counter,
// and safe for concurrent use.
type RequestIDs struct {
	name    string // canonical header name
	trusted trust.Proxies
	prefix  string // per process: 16 hex digits from crypto/rand
	n       atomic.Uint64
}

// NewRequestIDs uses the header name (X-Request-ID in the usual case) and
// believes the value only from trusted peers.
func NewRequestIDs(name string, trusted trust.Proxies) *RequestIDs {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails on Linux (getrandom)
	return &RequestIDs{name: http.CanonicalHeaderKey(name), trusted: trusted, prefix: hex.EncodeToString(b[:])}
}

// Header is the canonical name of the header the IDs travel in.
func (g *RequestIDs) Header() string { return g.name }

// New returns a fresh ID: the process's random prefix, a dash and a
// counter, 33 characters. One atomic add and no system call, unique across
// processes and restarts with the odds of a 64-bit random collision.
func (g *RequestIDs) New() string {
	n := g.n.Add(1)
	var b [33]byte
	copy(b[:], g.prefix)
	b[16] = '-'
	const digits = "0123456789abcdef"
	for i := len(b) - 1; i > 16; i-- {
		b[i] = digits[n&15]
		n >>= 4
	}
	return string(b[:])
}

// ValidRequestID reports whether an incoming ID may be kept: 1 to
// MaxRequestIDLen characters among letters, digits and -_.:+/=@ (UUIDs,
// Heroku's and AWS's trace IDs, base64), so that it can go into a log line
// or a header unquoted.
func ValidRequestID(s string) bool {
	if len(s) == 0 || len(s) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '/' || c == '=' || c == '@':
		default:
			return false
		}
	}
	return true
}

// Assign decides the ID of r: the trusted peer's if it is valid (the
// first value when there are several), else a new one. It replaces the
// request's header with that one value and sets it on the response
// header, then returns it. Call it before anything reads the request's
// forwarded headers or rewrites RemoteAddr.
func (g *RequestIDs) Assign(w http.ResponseWriter, r *http.Request) string {
	vs := r.Header[g.name]
	if len(vs) > 0 && ValidRequestID(vs[0]) && g.trustsPeer(r.RemoteAddr) {
		if len(vs) > 1 {
			vs = vs[:1]
			r.Header[g.name] = vs
		}
	} else {
		vs = []string{g.New()}
		r.Header[g.name] = vs
	}
	w.Header()[g.name] = vs
	return vs[0]
}

// trustsPeer reports whether the connection's peer may speak for the
// client. A RemoteAddr that is not an IP:port is a Unix-socket peer, which
// package trust always believes.
func (g *RequestIDs) trustsPeer(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return true
	}
	return g.trusted.TrustsIP(ap.Addr())
}

// Wrap returns next with Assign run first on every request.
func (g *RequestIDs) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.Assign(w, r)
		next.ServeHTTP(w, r)
	})
}
