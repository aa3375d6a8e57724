package guard

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Listener wraps l so that connections from banned or deny-listed
// addresses are closed as soon as they are accepted, before any byte is
// read, and so that one address holds at most MaxConnsPerClient
// connections. It looks at the TCP peer only: trusted proxies (whose
// clients are told apart by their headers, or by a PROXY header read
// later) and allow-listed peers pass. Wrap the raw listener, beneath any
// PROXY-protocol or TLS layer.
func (g *Guard) Listener(l net.Listener) net.Listener {
	if !g.cfg.Enabled {
		return l
	}
	return &listener{Listener: l, g: g}
}

type listener struct {
	net.Listener
	g *Guard
}

func (l *listener) Accept() (net.Conn, error) {
	g := l.g
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := connAddr(c)
		if !peer.IsValid() || g.cfg.Trusted.Contains(peer) || g.allow.contains(peer) {
			return c, nil
		}
		if b := g.bans.active(Key(peer), g.now); b != nil && b.status != 429 {
			b.refused.Add(1)
			g.refuse(c)
			continue
		}
		if g.deny.contains(peer) {
			g.connRefused.Add(1)
			g.refuse(c)
			continue
		}
		if m := g.cfg.MaxConnsPerClient; m > 0 {
			if !g.conns.acquire(peer, m) {
				g.connRefused.Add(1)
				c.Close()
				continue
			}
			return &countedConn{Conn: c, g: g, peer: peer}, nil
		}
		return c, nil
	}
}

// maxHeld bounds the connections held in the tarpit at once.
const maxHeld = 1024

// refuse closes a connection from a banned or deny-listed address without
// a byte of answer. With a tarpit it first holds the connection open,
// unread, for Config.Tarpit (a timer each, no goroutine; at most maxHeld
// at once): a scanner with a fixed number of connections then waits
// instead of reconnecting at full speed, which would cost both machines
// more than it costs it.
func (g *Guard) refuse(c net.Conn) {
	if g.cfg.Tarpit <= 0 || g.held.Add(1) > maxHeld {
		if g.cfg.Tarpit > 0 {
			g.held.Add(-1)
		}
		c.Close()
		return
	}
	g.tarpitted.Add(1)
	time.AfterFunc(g.cfg.Tarpit, func() {
		c.Close()
		g.held.Add(-1)
	})
}

func connAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// connCounts counts open connections per address.
type connCounts struct {
	mu sync.Mutex
	m  map[netip.Addr]int
}

func newConnCounts() *connCounts { return &connCounts{m: map[netip.Addr]int{}} }

func (cc *connCounts) acquire(a netip.Addr, limit int) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m[a] >= limit {
		return false
	}
	cc.m[a]++
	return true
}

func (cc *connCounts) release(a netip.Addr) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m[a] <= 1 {
		delete(cc.m, a)
	} else {
		cc.m[a]--
	}
}

// countedConn gives its slot back when closed.
type countedConn struct {
	net.Conn
	g    *Guard
	peer netip.Addr
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.g.conns.release(c.peer) })
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close after an error answer.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// ReadFrom keeps sendfile for file responses.
func (c *countedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}
