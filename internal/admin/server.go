package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"corral/internal/listen"
)

// Server serves the admin API on its own listener. Open it while corral
// may still open anything (before it gives up root), Serve it once there
// is something to report on, and end it with Shutdown or Close.
//
// Shutdown and Close follow net/http's Server: either may be called more
// than once, before Serve, during it or after it, and both make Serve
// return http.ErrServerClosed.
type Server struct {
	l      net.Listener
	sock   string // the Unix socket's path; "" for TCP
	dirNew bool   // Open created the socket's directory

	mu     sync.Mutex
	http   *http.Server // set by Serve
	closed bool         // Shutdown or Close was called
	extra  []route      // added by Handle
	token  string       // set by SetToken
}

type route struct {
	pattern string
	h       http.Handler
}

// Open opens the admin listener at addr: "unix:PATH", a path (starting
// with / or .), or HOST:PORT; "" is DefaultSocket in RuntimeDir for this
// process. A Unix socket's directory is created with mode 0700 if it is
// missing, a stale socket left by a dead process is replaced, and the
// socket is made 0600: the admin API is for the user corral runs as.
func Open(addr string) (*Server, error) {
	if addr == "" {
		addr = DefaultSocket(RuntimeDir(os.Getenv), os.Getpid())
	}
	network, address := split(addr)
	s := &Server{}
	if network == "unix" {
		s.sock = address
		dir := filepath.Dir(address)
		_, err := os.Stat(dir)
		s.dirNew = errors.Is(err, fs.ErrNotExist)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("admin listener: %w", err)
		}
		if err := listen.RemoveStale(context.Background(), address); err != nil {
			return nil, fmt.Errorf("admin listener: %w", err)
		}
	}
	l, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	if network == "unix" {
		if err := os.Chmod(address, 0o600); err != nil {
			l.Close()
			return nil, fmt.Errorf("admin listener: %w", err)
		}
	}
	s.l = l
	return s, nil
}

// split tells a Unix socket address from a TCP one.
func split(addr string) (network, address string) {
	if a, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix", a
	}
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, ".") {
		return "unix", addr
	}
	return "tcp", addr
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Chown gives a Unix socket, and its directory if Open created it, to
// uid and gid: a process that then switches to that account can still
// remove the socket when it stops, and the account's `corral status` can
// reach it. With a TCP address it does nothing.
func (s *Server) Chown(uid, gid int) error {
	if s.sock == "" {
		return nil
	}
	if err := os.Chown(s.sock, uid, gid); err != nil {
		return err
	}
	if s.dirNew {
		return os.Chown(filepath.Dir(s.sock), uid, gid)
	}
	return nil
}

// SetToken sets the bearer token that callers of a TCP admin listener
// from other hosts must send (see authorize). Call it before Serve.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// Handle adds a route (a net/http ServeMux pattern) to the ones Serve
// answers: /metrics, the status page. Call it before Serve.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extra = append(s.extra, route{pattern, h})
}

// Serve answers admin API requests from src (see Handler) and, when bans
// is not nil, about bans (see HandleBans), until Shutdown or Close; then
// it returns http.ErrServerClosed. It returns at once, with
// http.ErrServerClosed, if Shutdown or Close came first, and with an
// error if Serve was called before. Any other error is the listener's.
func (s *Server) Serve(src Source, bans Bans) error {
	mux := Handler(src)
	if bans != nil {
		HandleBans(mux, bans)
	}
	s.mu.Lock()
	for _, r := range s.extra {
		mux.Handle(r.pattern, r.h)
	}
	switch {
	case s.closed:
		s.mu.Unlock()
		return http.ErrServerClosed
	case s.http != nil:
		s.mu.Unlock()
		return errors.New("admin: Serve called twice")
	}
	var h http.Handler = mux
	if s.sock == "" {
		h = authorize(mux, s.token)
	}
	s.http = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	hs := s.http
	s.mu.Unlock()
	return hs.Serve(s.l)
}

// stop marks the server closed and returns the HTTP server Serve runs,
// nil if Serve has not begun. Without one it closes the listener itself.
func (s *Server) stop() *http.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && s.http == nil {
		s.l.Close()
	}
	s.closed = true
	return s.http
}

// Shutdown stops accepting and waits for the requests under way to be
// answered, or for ctx to end, whose error it then returns: the
// context's deadline is the grace period. Idle connections are closed at
// once. The Unix socket file is removed.
func (s *Server) Shutdown(ctx context.Context) error {
	if hs := s.stop(); hs != nil {
		return hs.Shutdown(ctx)
	}
	return nil
}

// Close stops accepting and closes every connection at once, answered
// or not. The Unix socket file is removed.
func (s *Server) Close() error {
	if hs := s.stop(); hs != nil {
		return hs.Close()
	}
	return nil
}

// RuntimeDir is where corral keeps its admin sockets: systemd's
// RuntimeDirectory ($RUNTIME_DIRECTORY), else $XDG_RUNTIME_DIR/corral,
// else /run/corral for root, else a per-user directory under the system
// temporary directory. getenv is os.Getenv in production.
func RuntimeDir(getenv func(string) string) string {
	if d := getenv("RUNTIME_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0]
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "corral")
	}
	if os.Geteuid() == 0 {
		return "/run/corral"
	}
	return filepath.Join(os.TempDir(), "corral-"+strconv.Itoa(os.Geteuid()))
}

// DefaultSocket is the admin socket of the process pid in dir.
func DefaultSocket(dir string, pid int) string {
	return filepath.Join(dir, strconv.Itoa(pid)+".sock")
}
