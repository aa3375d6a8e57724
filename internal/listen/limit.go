package listen

import (
	"errors"
	"io"
	"net"
	"sync"
)

// ConnLimit bounds the connections open at once over every listener it
// wraps: --max-connections is the process's, however many sockets it
// listens on. Unlike golang.org/x/net/netutil's limit, a wrapped
// listener accepts first and then waits for room, so an idle listener
// never holds room that another needs (at most one accepted connection
// per listener waits, in place of one in the kernel's backlog); and a
// closed listener still hands out what its socket returns before its
// close error (the connections a draining listener took back, see Open),
// whatever the count. Connections keep sendfile (io.ReaderFrom) and
// half-close.
type ConnLimit struct{ sem chan struct{} }

// NewConnLimit returns a limit of n connections open at once (n > 0).
func NewConnLimit(n int) *ConnLimit { return &ConnLimit{sem: make(chan struct{}, n)} }

// Wrap counts l's connections against the limit.
func (cl *ConnLimit) Wrap(l net.Listener) net.Listener {
	return &limitListener{Listener: l, sem: cl.sem, done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return c, nil
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// ReadFrom keeps the TCP connection's sendfile path for file responses.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite lets net/http half-close after an error answer.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
