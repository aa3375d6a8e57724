package main

import (
	"context"
	"fmt"
	"net"
	"strings"

	"golang.org/x/net/netutil"

	"corral/internal/config"
	"corral/internal/front"
	"corral/internal/listen"
)

func openListeners(cfg *config.Config) ([]net.Listener, error) {
	var out []net.Listener
	for _, b := range cfg.Bind {
		pb, err := config.ParseBind(b)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		l, err := listen.Open(context.Background(), pb.Network, pb.Address, listen.Options{Backlog: cfg.Backlog})
		if err != nil {
			closeAll(out)
			return nil, err
		}
		if cfg.MaxConnections > 0 {
			l = netutil.LimitListener(l, cfg.MaxConnections)
		}
		// Refuses Content-Length with Transfer-Encoding (smuggling). It reads
		// plain HTTP/1: TLS listeners, when they come, must wrap it below TLS
		// and only for connections that negotiated HTTP/1.1.
		l = front.FramingListener(l)
		out = append(out, l)
	}
	return out, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

func describe(l net.Listener) string {
	a := l.Addr()
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	if strings.HasPrefix(a.String(), "[::]") || strings.HasPrefix(a.String(), "0.0.0.0") {
		return a.String()
	}
	return fmt.Sprintf("http://%s", a.String())
}
