package listen

import (
	"net"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"corral/internal/trust"
)

// ProxyProtocol wraps l so that a connection from a trusted peer may start
// with a PROXY protocol header (v1 or v2): the connection's RemoteAddr and
// LocalAddr are then the client's and the address it connected to, as the
// header tells. The header stays optional from trusted peers (a proxy's
// health checks may connect without one). A connection from any other peer
// that sends a header fails on its first read, so the server closes it
// without an answer: such a header is never believed. A header the parser
// refuses (malformed, truncated) fails the connection the same way.
//
// The header is read on the connection's first Read or RemoteAddr, in the
// goroutine that serves the connection, never in Accept; timeout bounds
// the wait for it (0 = the library's default of 10s).
func ProxyProtocol(l net.Listener, trusted trust.Proxies, timeout time.Duration) net.Listener {
	return &proxyproto.Listener{
		Listener: l,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if trusted.Trusts(o.Upstream) {
				return proxyproto.USE, nil
			}
			return proxyproto.REJECT, nil
		},
		ReadHeaderTimeout: timeout,
	}
}
