package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"corral/internal/config"
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
			_ = certs.Reload() // it logs a failure, and the certificate in use stays
		}
	}
}

// listenConfig is what listen.OpenAll needs from corral's configuration:
// every --bind address, or, when no bind is configured and systemd passed
// sockets, those sockets. owner, when not nil, is the account corral will
// switch to: the Unix socket files it creates are given to it. certs is
// nil for plain HTTP. guard wraps each socket's listener beneath every
// other layer, so that connections from banned addresses are closed at
// accept. linger bounds the lingering closes of every listener's
// connections.
//
// The framing check (listen.FramingListener) refuses Content-Length with
// Transfer-Encoding (request smuggling). It reads plain HTTP/1, so over
// TLS it wraps the decrypted stream of connections that did not
// negotiate HTTP/2; on plain listeners it lets the h2c preface through.
func listenConfig(cfg *config.Config, act *listen.Activation, owner *syscall.Credential, certs *listen.Certs,
	guard func(net.Listener) net.Listener, linger *listen.Linger, log *slog.Logger) listen.Config {
	lc := listen.Config{
		Options:          listen.Options{Backlog: cfg.Backlog, ReusePort: cfg.ReusePort, Umask: cfg.Umask, Activation: act},
		PreferActivation: !cfg.BindSet(),
		Guard:            guard,
		MaxConnections:   cfg.MaxConnections,
		ProxyProtocol:    cfg.ProxyProtocol,
		Trusted:          trust.New(cfg.ForwardedAllowIPs),
		HeaderTimeout:    cfg.HeaderTimeout,
		Linger:           linger,
		Logger:           log,
	}
	for _, b := range cfg.Bind {
		lc.Addrs = append(lc.Addrs, listen.Addr{Network: b.Network, Address: b.Address})
	}
	if owner != nil && os.Geteuid() == 0 {
		lc.Options.Chown, lc.Options.UID, lc.Options.GID = true, int(owner.Uid), int(owner.Gid)
	}
	if certs != nil {
		lc.TLS = certs.Config()
	}
	return lc
}

// configureServer sets up srv for the listeners of set, and HTTP/2
// without TLS with --h2c. HTTP/2 over TLS needs nothing: net/http serves
// it for the *tls.Conn of connections that negotiated h2.
//
// HTTP/2 frames from clients are limited to the protocol's default 16 KiB
// instead of net/http's 1 MiB: the read buffer of a connection grows to the
// largest frame its client sends, and bounded buffers keep 10,000 hostile
// connections from taking gigabytes.
func configureServer(srv *http.Server, cfg *config.Config, set *listen.Set) {
	set.ConfigureServer(srv)
	srv.HTTP2 = &http.HTTP2Config{MaxReadFrameSize: 16 << 10}
	if cfg.H2C {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = &p
	}
}
