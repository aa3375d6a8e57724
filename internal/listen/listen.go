// Package listen opens the sockets corral serves on: TCP (IPv4 and IPv6,
// optionally with SO_REUSEPORT), Unix domain sockets, inherited
// descriptors and sockets passed by systemd socket activation. It also
// wraps listeners for the PROXY protocol and for TLS with certificates
// that reload.
//
// OpenAll opens a server's whole Set of listeners with their layers, and
// the Set stops accepting gracefully at shutdown (Quiesce).
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

	"golang.org/x/sys/unix"
)

// Options apply to every listener Open opens.
type Options struct {
	// Backlog is the listen(2) backlog; 0 keeps the system default. It is
	// not applied to sockets passed by systemd, whose unit sets Backlog=.
	Backlog int
	// ReusePort sets SO_REUSEPORT on TCP sockets before they bind, so
	// other processes can bind the same address; their listeners then
	// share new connections. Close of such a listener hands the
	// connections already queued on it to the server (see Open).
	ReusePort bool
	// Umask holds the permission bits taken away from 0777 for the Unix
	// socket files Open creates: 0 lets every local user connect.
	Umask os.FileMode
	// Chown gives the Unix socket files Open creates to UID and GID, so a
	// process that switches to that user can still remove them, and the
	// group can connect when Umask allows it.
	Chown    bool
	UID, GID int
	// Activation supplies the descriptors for the "fd" and "systemd"
	// networks; nil = none were passed by systemd.
	Activation *Activation
}

// Open opens the listeners of one bind address. network is "tcp", "unix",
// "fd" (address is a descriptor number: one passed by systemd, else any
// inherited descriptor) or "systemd" (address is a FileDescriptorName; all
// the sockets passed under that name are returned).
//
// A TCP listener opened with ReusePort takes back, when it is closed, the
// connections the kernel had already queued on its socket, and Accept
// returns them before it reports the close: without that, stopping one of
// several processes sharing a port would reset them.
func Open(ctx context.Context, network, address string, opts Options) ([]net.Listener, error) {
	var (
		ls  []net.Listener
		err error
	)
	switch network {
	case "tcp":
		var l net.Listener
		if l, err = listenTCP(ctx, address, opts); err == nil {
			ls = []net.Listener{l}
		}
	case "unix":
		var l net.Listener
		if l, err = listenUnix(ctx, address, opts); err == nil {
			ls = []net.Listener{l}
		}
	case "fd":
		var l net.Listener
		if l, err = fromFD(address, opts.Activation); err == nil {
			ls = []net.Listener{l}
		}
	case "systemd":
		ls, err = opts.Activation.named(address)
	default:
		err = fmt.Errorf("unsupported network %q", network)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s %s: %w", network, address, err)
	}
	if opts.Backlog > 0 && (network == "tcp" || network == "unix") {
		for _, l := range ls {
			if err := setBacklog(l, opts.Backlog); err != nil {
				closeAll(ls)
				return nil, fmt.Errorf("listen on %s %s: set backlog: %w", network, address, err)
			}
		}
	}
	return ls, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

func listenTCP(ctx context.Context, address string, opts Options) (net.Listener, error) {
	var lc net.ListenConfig
	if opts.ReusePort {
		lc.Control = setReusePort
		// Plain TCP: Go listens with MPTCP where the kernel has it, and an
		// MPTCP socket refuses the socket filter a draining listener uses.
		lc.SetMultipathTCP(false)
	}
	l, err := lc.Listen(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	if opts.ReusePort {
		return newDrainListener(l.(*net.TCPListener))
	}
	return l, nil
}

// setReusePort runs between socket(2) and bind(2).
func setReusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set SO_REUSEPORT: %w", serr)
	}
	return nil
}

// listenUnix creates a Unix socket file with mode 0777 &^ opts.Umask. The
// file is created 0600 (the process umask is narrowed while it binds) and
// then widened, so nobody connects before its owner and mode are final.
func listenUnix(ctx context.Context, path string, opts Options) (net.Listener, error) {
	if err := RemoveStale(ctx, path); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	old := syscall.Umask(0o177)
	l, err := lc.Listen(ctx, "unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if opts.Chown {
		if err := os.Chown(path, opts.UID, opts.GID); err != nil {
			l.Close()
			return nil, fmt.Errorf("give the socket to %d:%d: %w", opts.UID, opts.GID, err)
		}
	}
	if err := os.Chmod(path, 0o777&^(opts.Umask&0o777)); err != nil {
		l.Close()
		return nil, fmt.Errorf("set the socket's mode: %w", err)
	}
	return l, nil
}

// setBacklog calls listen(2) again on the bound socket: Linux updates the
// backlog of a listening socket in place. net.Listen always uses somaxconn.
func setBacklog(l net.Listener, n int) error {
	if d, ok := l.(*drainListener); ok {
		l = d.TCPListener
	}
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

// RemoveStale deletes a socket file left behind by a process that died,
// and refuses to touch one that is in use (an error wrapping
// syscall.EADDRINUSE) or is not a socket. A missing file is no error.
func RemoveStale(ctx context.Context, path string) error {
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

// fromFD makes a listener of descriptor s: one systemd passed, else any
// descriptor corral inherited (a supervisor's, or a shell redirection).
func fromFD(s string, a *Activation) (net.Listener, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("bad descriptor %q", s)
	}
	if f := a.take(n); f != nil {
		return fileListener(f)
	}
	if n <= 2 {
		return nil, fmt.Errorf("descriptor %d is standard input, output or error", n)
	}
	return fileListener(os.NewFile(uintptr(n), "fd"+s))
}

// fileListener makes a listener of an inherited socket and closes f: the
// listener holds its own close-on-exec duplicate, so workers never inherit
// the listening socket.
func fileListener(f *os.File) (net.Listener, error) {
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("descriptor %s is not a listening stream socket: %w", f.Name(), err)
	}
	return l, nil
}
