package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"corral/internal/admin"
	"corral/internal/config"
	"corral/internal/front"
	"corral/internal/listen"
	"corral/internal/trust"
)

// certReloadInterval is how often the certificate files are checked for
// changes.
const certReloadInterval = 2 * time.Second

// loadCerts reads --certfile and its companions; nil without TLS.
func loadCerts(cfg *config.Config, log *slog.Logger) (*listen.Certs, error) {
	if cfg.CertFile == "" {
		return nil, nil
	}
	return listen.LoadCerts(listen.TLSFiles{
		CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, CAFile: cfg.CACerts, ClientAuth: cfg.CertReqs,
	}, log)
}

// watchCerts reloads the certificate when its files change and on SIGHUP,
// until ctx ends.
func watchCerts(ctx context.Context, certs *listen.Certs) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go certs.Watch(ctx, certReloadInterval)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = certs.Reload()
		}
	}
}

// openListeners opens every --bind address, or, when no bind is
// configured and systemd passed sockets, those sockets. Each listener is
// ready to serve: connection limit, PROXY protocol, TLS and the framing
// guard applied. owner, when not nil, is the account corral will switch
// to: the Unix socket files it creates are given to it. certs is nil for
// plain HTTP.
//
// guard wraps each raw listener first, beneath every other layer, so that
// connections from banned addresses are closed at accept.
func openListeners(cfg *config.Config, owner *syscall.Credential, certs *listen.Certs, guard func(net.Listener) net.Listener, log *slog.Logger) ([]net.Listener, error) {
	mlog := log.With("component", "master")
	act, err := listen.TakeActivation()
	if err != nil {
		return nil, err
	}
	opts := listen.Options{Backlog: cfg.Backlog, ReusePort: cfg.ReusePort, Umask: cfg.Umask, Activation: act}
	if owner != nil && os.Geteuid() == 0 {
		opts.Chown, opts.UID, opts.GID = true, int(owner.Uid), int(owner.Gid)
	}

	var raw []net.Listener
	if !cfg.BindSet() && act.Len() > 0 {
		mlog.Info("using the sockets systemd passed", "count", act.Len(), "names", strings.Join(act.Names(), ","))
		if raw, err = act.All(); err != nil {
			return nil, err
		}
	} else {
		for _, b := range cfg.Bind {
			ls, err := listen.Open(context.Background(), b.Network, b.Address, opts)
			raw = append(raw, ls...)
			if err != nil {
				closeAll(raw)
				act.CloseRest()
				return nil, err
			}
		}
	}
	if rest := act.CloseRest(); len(rest) > 0 {
		mlog.Warn("closed sockets systemd passed that no --bind names", "sockets", strings.Join(rest, ","))
	}

	trusted := trust.New(cfg.ForwardedAllowIPs)
	out := make([]net.Listener, 0, len(raw))
	for _, l := range raw {
		desc := describeAddr(l.Addr(), certs != nil)
		l = guard(l)
		if cfg.MaxConnections > 0 {
			l = listen.Limit(l, cfg.MaxConnections)
		}
		if cfg.ProxyProtocol {
			l = listen.ProxyProtocol(l, trusted, cfg.HeaderTimeout)
		}
		// The framing guard refuses Content-Length with Transfer-Encoding
		// (request smuggling). It reads plain HTTP/1, so over TLS it wraps
		// the decrypted stream of connections that did not negotiate
		// HTTP/2; on plain listeners it lets the h2c preface through.
		if certs != nil {
			l = listen.TLS(l, certs.Config(), cfg.HeaderTimeout, framed, log)
		} else {
			l = front.FramingListener(l)
		}
		out = append(out, newBoundListener(l, desc))
	}
	return out, nil
}

// framed puts the framing guard on one decrypted HTTP/1 connection.
func framed(c net.Conn) net.Conn {
	fc, _ := front.FramingListener(oneConn{c}).Accept()
	return fc
}

// oneConn is a listener whose Accept returns its connection, for framed.
type oneConn struct{ net.Conn }

func (o oneConn) Accept() (net.Conn, error) { return o.Conn, nil }
func (o oneConn) Addr() net.Addr            { return o.Conn.LocalAddr() }

// boundListener carries how the log names the listener, and lets the
// server stop accepting before it shuts down (see quiesce).
type boundListener struct {
	net.Listener
	desc string

	stopOnce, closeOnce sync.Once
	stopped, closed     chan struct{}
}

func newBoundListener(l net.Listener, desc string) *boundListener {
	return &boundListener{Listener: l, desc: desc, stopped: make(chan struct{}), closed: make(chan struct{})}
}

// Accept returns the next connection. Once stopAccepting closed the socket
// it returns what the socket still hands out, then waits for Close: an
// error before net/http's Shutdown would read as a failure.
func (b *boundListener) Accept() (net.Conn, error) {
	c, err := b.Listener.Accept()
	if err == nil {
		return c, nil
	}
	select {
	case <-b.stopped:
		<-b.closed
		return nil, net.ErrClosed
	default:
		return nil, err
	}
}

// stopAccepting closes the socket: no new connections.
func (b *boundListener) stopAccepting() {
	b.stopOnce.Do(func() {
		close(b.stopped)
		b.Listener.Close()
	})
}

func (b *boundListener) Close() error {
	b.closeOnce.Do(func() { close(b.closed) })
	b.stopAccepting()
	return nil
}

// newConns tracks the connections net/http accepted whose first request
// it has not read yet.
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

func (n *newConns) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.m)
}

// quiesceWait bounds how long quiesce waits for new connections' first
// requests: a client that connected just before the stop sends its
// request within a round trip; one that never does is not waited for.
const quiesceWait = time.Second

// quiesce stops accepting and lets the connections already accepted hand
// in their first request before the caller calls srv.Shutdown. net/http's
// Shutdown closes, unanswered, a connection whose request it reads after
// the shutdown began: a client on a fresh connection sees it fail. With
// several instances on one port (--reuse-port), that is every connection
// the kernel gave the stopping one just before the stop. Keep-alives end
// here too: every connection closes after its current response.
func quiesce(srv *http.Server, listeners []net.Listener, conns *newConns) {
	var wg sync.WaitGroup
	for _, l := range listeners {
		if b, ok := l.(*boundListener); ok {
			wg.Go(b.stopAccepting) // a SO_REUSEPORT socket takes a moment
		}
	}
	wg.Wait()
	srv.SetKeepAlivesEnabled(false)
	deadline := time.Now().Add(quiesceWait)
	for conns.count() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

func describe(l net.Listener) string {
	if b, ok := l.(*boundListener); ok {
		return b.desc
	}
	return describeAddr(l.Addr(), false)
}

func describeAddr(a net.Addr, tls bool) string {
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	if strings.HasPrefix(a.String(), "[::]") || strings.HasPrefix(a.String(), "0.0.0.0") {
		return a.String()
	}
	return fmt.Sprintf("%s%s", scheme, a.String())
}

// openAdmin opens the admin API's listener (nil with --admin-bind off). It
// also returns the socket's path ("" for TCP) and whether its directory
// was created just now, for dropPrivileges.
func openAdmin(cfg *config.Config) (l net.Listener, sock string, dirNew bool, err error) {
	if cfg.AdminBind == "off" {
		return nil, "", false, nil
	}
	addr := cfg.AdminBind
	if addr == "" {
		addr = admin.DefaultSocket(admin.RuntimeDir(os.Getenv), os.Getpid())
	}
	// The same test as admin.Listen's: unix:PATH, or a path.
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		sock = p
	} else if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, ".") {
		sock = addr
	}
	if sock != "" {
		_, serr := os.Stat(filepath.Dir(sock))
		dirNew = errors.Is(serr, fs.ErrNotExist)
	}
	l, err = admin.Listen(addr)
	return l, sock, dirNew, err
}

// configureServer sets up srv for the listeners openListeners made: TLS
// state for requests on wrapped TLS connections, and HTTP/2 without TLS
// with --h2c. HTTP/2 over TLS needs nothing: net/http serves it for the
// *tls.Conn of connections that negotiated h2.
//
// HTTP/2 frames from clients are limited to the protocol's default 16 KiB
// instead of net/http's 1 MiB: the read buffer of a connection grows to the
// largest frame its client sends, and bounded buffers keep 10,000 hostile
// connections from taking gigabytes.
func configureServer(srv *http.Server, cfg *config.Config, certs *listen.Certs, conns *newConns) {
	srv.ConnContext = listen.ConnContext
	srv.ConnState = conns.hook
	srv.HTTP2 = &http.HTTP2Config{MaxReadFrameSize: 16 << 10}
	if certs != nil {
		srv.Handler = listen.WithTLSState(srv.Handler)
	}
	if cfg.H2C {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = &p
	}
}
