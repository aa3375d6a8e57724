// Package listen opens the sockets corral serves on: TCP (IPv4 and IPv6),
// Unix domain sockets and inherited descriptors.
package listen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Options apply to every listener.
type Options struct {
	// Backlog is the listen(2) backlog; 0 keeps the system default.
	Backlog int
}

// Open opens one listener. network is "tcp", "unix" or "fd" (address is
// then the descriptor number).
func Open(ctx context.Context, network, address string, opts Options) (net.Listener, error) {
	var (
		l   net.Listener
		err error
	)
	switch network {
	case "tcp":
		var lc net.ListenConfig
		l, err = lc.Listen(ctx, "tcp", address)
	case "unix":
		if err = removeStale(ctx, address); err == nil {
			var lc net.ListenConfig
			l, err = lc.Listen(ctx, "unix", address)
		}
	case "fd":
		l, err = fromFD(address)
	default:
		err = fmt.Errorf("unsupported network %q", network)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s %s: %w", network, address, err)
	}
	if opts.Backlog > 0 {
		if err := setBacklog(l, opts.Backlog); err != nil {
			l.Close()
			return nil, fmt.Errorf("listen on %s %s: set backlog: %w", network, address, err)
		}
	}
	return l, nil
}

// setBacklog calls listen(2) again on the bound socket: Linux updates the
// backlog of a listening socket in place. net.Listen always uses somaxconn.
func setBacklog(l net.Listener, n int) error {
	sc, ok := l.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := raw.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), n) }); err != nil {
		return err
	}
	return lerr
}

// removeStale deletes a socket file left behind by a process that died,
// and refuses to touch one that is in use or is not a socket.
func removeStale(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: %w", path, syscall.EADDRINUSE)
	}
	return os.Remove(path)
}

func fromFD(s string) (net.Listener, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("bad descriptor %q", s)
	}
	f := os.NewFile(uintptr(n), "fd"+s)
	defer f.Close() // FileListener dups it
	return net.FileListener(f)
}
