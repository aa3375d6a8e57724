package listen

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"corral/internal/trust"
)

// Addr is one address to listen on, as Open takes it.
type Addr struct {
	// Network is "tcp", "unix", "fd" or "systemd".
	Network string
	// Address is HOST:PORT, a socket path, a descriptor number or a
	// FileDescriptorName, as Open describes.
	Address string
}

// Config says which listeners OpenAll opens and how it wraps them. The
// zero value of each wrapping field leaves that layer out.
type Config struct {
	// Addrs are the addresses to listen on, in order.
	Addrs []Addr
	// Options apply to every socket OpenAll opens. Options.Activation
	// holds the sockets systemd passed (TakeActivation); OpenAll closes
	// those it does not use.
	Options Options
	// PreferActivation makes OpenAll serve on every socket systemd passed
	// instead of on Addrs, when it passed any: corral sets it when no
	// --bind was configured, so the default address gives way to the
	// socket units.
	PreferActivation bool

	// Guard, when not nil, wraps each socket's listener first, beneath
	// every other layer, so that the connections it refuses are closed at
	// accept, before any byte is read or any handshake made.
	Guard func(net.Listener) net.Listener
	// MaxConnections is the most connections open at once over all the
	// listeners (see ConnLimit); 0 = no limit.
	MaxConnections int
	// ProxyProtocol reads a PROXY protocol header from Trusted peers (see
	// ProxyProtocol).
	ProxyProtocol bool
	// Trusted are the peers whose PROXY header is believed.
	Trusted trust.Proxies
	// HeaderTimeout bounds the wait for a PROXY header and for a TLS
	// handshake; 0 = no limit of its own (the PROXY protocol library then
	// waits 10s).
	HeaderTimeout time.Duration
	// TLS, when not nil, serves TLS with this configuration on every
	// listener (see TLS); nil = plain HTTP.
	TLS *tls.Config
	// Linger bounds the lingering closes of the HTTP/1 connections (see
	// FramingListener, which every HTTP/1 connection goes through: on a
	// plain listener every connection, over TLS the decrypted stream of
	// each connection that did not negotiate HTTP/2); nil = close at once.
	Linger *Linger
	// Logger receives one line per decision about the sockets (systemd's
	// sockets used or closed) and the TLS layer's; nil = discarded.
	Logger *slog.Logger
}

// Set is the listeners a server serves on, opened by OpenAll. At
// shutdown it stops accepting and lets the connections just accepted
// hand in their first request before the server's own Shutdown begins
// (Quiesce).
//
// Give the server ConfigureServer before it serves, then Serve it on each
// of Listeners. Close the Set when the server is done.
type Set struct {
	listeners []*Listener
	tls       bool
	conns     newConns
	// firstRequestWait bounds how long Quiesce waits for the first
	// requests of new connections.
	firstRequestWait time.Duration
}

// firstRequestWait bounds how long Quiesce waits for new connections'
// first requests: a client that connected just before the stop sends its
// request within a round trip; one that never does is not waited for.
const firstRequestWait = time.Second

// OpenAll opens every address of cfg.Addrs (or, with PreferActivation,
// the sockets systemd passed) and wraps each listener, from the socket
// up: Guard, the connection limit, the PROXY protocol, then TLS (with
// the framing check inside it for HTTP/1 connections) or the framing
// check (FramingListener). It closes the sockets
// systemd passed that no address names, with a warning. On error nothing
// stays open.
func OpenAll(ctx context.Context, cfg Config) (*Set, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	llog := log.With("component", "listen")
	act := cfg.Options.Activation

	var raw []net.Listener
	if cfg.PreferActivation && act.Len() > 0 {
		llog.Info("using the sockets systemd passed", "count", act.Len(), "names", strings.Join(act.Names(), ","))
		ls, err := act.All()
		if err != nil {
			return nil, fmt.Errorf("open the sockets systemd passed: %w", err)
		}
		raw = ls
	} else {
		for _, a := range cfg.Addrs {
			ls, err := Open(ctx, a.Network, a.Address, cfg.Options)
			if err != nil {
				closeAll(raw)
				act.CloseRest()
				return nil, err
			}
			raw = append(raw, ls...)
		}
	}
	if rest := act.CloseRest(); len(rest) > 0 {
		llog.Warn("closed sockets systemd passed that no --bind names", "sockets", strings.Join(rest, ","))
	}

	s := &Set{tls: cfg.TLS != nil, firstRequestWait: firstRequestWait}
	var limit *ConnLimit
	if cfg.MaxConnections > 0 {
		limit = NewConnLimit(cfg.MaxConnections)
	}
	for _, l := range raw {
		desc := describe(l.Addr(), cfg.TLS != nil)
		if cfg.Guard != nil {
			l = cfg.Guard(l)
		}
		if limit != nil {
			l = limit.Wrap(l)
		}
		if cfg.ProxyProtocol {
			l = ProxyProtocol(l, cfg.Trusted, cfg.HeaderTimeout)
		}
		if cfg.TLS != nil {
			l = TLS(l, cfg.TLS, cfg.HeaderTimeout, func(c net.Conn) net.Conn { return Framing(c, cfg.Linger) }, log)
		} else {
			l = FramingListener(l, cfg.Linger)
		}
		s.listeners = append(s.listeners, newListener(l, desc))
	}
	return s, nil
}

// describe names a listener for the log: unix:PATH, http://HOST:PORT or
// https://HOST:PORT, and a bare HOST:PORT for all interfaces.
func describe(a net.Addr, tls bool) string {
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	if strings.HasPrefix(a.String(), "[::]") || strings.HasPrefix(a.String(), "0.0.0.0") {
		return a.String()
	}
	if tls {
		return "https://" + a.String()
	}
	return "http://" + a.String()
}

// Listeners returns the listeners, in the order of the addresses.
func (s *Set) Listeners() []*Listener { return s.listeners }

// ConfigureServer prepares srv to serve on the set: TLS state for the
// requests of TLS connections served as HTTP/1 (see ConnContext and
// WithTLSState), and the ConnState hook through which Quiesce knows the
// connections still waiting for their first request. Call it once,
// before srv serves, after srv.Handler is set; it replaces srv.ConnState
// and srv.ConnContext.
func (s *Set) ConfigureServer(srv *http.Server) {
	srv.ConnContext = ConnContext
	srv.ConnState = s.conns.hook
	if s.tls {
		srv.Handler = WithTLSState(srv.Handler)
	}
}

// Quiesce stops accepting on every listener (a SO_REUSEPORT socket takes
// a moment: see Open), turns srv's keep-alives off, and waits until the
// connections already accepted have handed in their first request, at
// most a second or until ctx ends; then the caller calls srv.Shutdown.
//
// net/http's Shutdown closes, unanswered, a connection whose request it
// reads after the shutdown began: a client on a fresh connection sees it
// fail. With several instances on one port (--reuse-port), that is every
// connection the kernel gave the stopping one just before the stop.
// Keep-alives end here too: every connection closes after its current
// response. srv must have been given ConfigureServer.
func (s *Set) Quiesce(ctx context.Context, srv *http.Server) {
	done := make(chan struct{})
	for _, l := range s.listeners {
		go func() {
			l.StopAccepting()
			done <- struct{}{}
		}()
	}
	for range s.listeners {
		<-done
	}
	srv.SetKeepAlivesEnabled(false)
	ctx, cancel := context.WithTimeout(ctx, s.firstRequestWait)
	defer cancel()
	s.conns.wait(ctx)
}

// Close closes every listener. It returns nil.
func (s *Set) Close() error {
	for _, l := range s.listeners {
		l.Close()
	}
	return nil
}
