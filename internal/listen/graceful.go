package listen

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// Listener is one listener of a Set: it can stop accepting before it is
// closed, and it knows how the log names it (String). Safe for concurrent
// use.
type Listener struct {
	net.Listener
	desc string

	stopOnce, closeOnce sync.Once
	stopped, closed     chan struct{}
}

func newListener(l net.Listener, desc string) *Listener {
	return &Listener{Listener: l, desc: desc, stopped: make(chan struct{}), closed: make(chan struct{})}
}

// String names the listener for the log: unix:PATH, http://HOST:PORT,
// https://HOST:PORT, or HOST:PORT for every interface.
func (l *Listener) String() string { return l.desc }

// Accept returns the next connection. Once StopAccepting has closed the
// socket, it returns what the layers below still hand out (the
// connections a draining socket took back, handshakes under way), then
// waits for Close before it returns net.ErrClosed: an error from Accept
// before net/http's Shutdown begins would read as a failure to serve.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		return c, nil
	}
	select {
	case <-l.stopped:
		<-l.closed
		return nil, net.ErrClosed
	default:
		return nil, err
	}
}

// StopAccepting closes the socket, so no new connection arrives; Accept
// goes on as its doc says. It returns when the layers below have closed
// (a SO_REUSEPORT socket first hands over its queue, see Open). Safe to
// call more than once, and with Close.
func (l *Listener) StopAccepting() {
	l.stopOnce.Do(func() {
		close(l.stopped)
		l.Listener.Close()
	})
}

// Close stops accepting and lets a waiting Accept return net.ErrClosed.
// It returns nil, and is safe to call more than once.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	l.StopAccepting()
	return nil
}

// newConns tracks the connections net/http accepted whose first request
// it has not read yet (http.StateNew). The zero value is ready to use.
type newConns struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

// hook is for http.Server.ConnState. HTTP/2 connections over TLS, which
// leave the new state without telling the hook, are not tracked.
func (n *newConns) hook(c net.Conn, st http.ConnState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if st != http.StateNew {
		delete(n.m, c)
		return
	}
	if _, h2 := c.(*tls.Conn); h2 {
		return
	}
	if n.m == nil {
		n.m = map[net.Conn]struct{}{}
	}
	n.m[c] = struct{}{}
}

// count returns the number of connections waiting for their first
// request.
func (n *newConns) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.m)
}

// wait returns when no connection waits for its first request, or when
// ctx ends.
func (n *newConns) wait(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for n.count() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
