package listen

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Lingering close, as nginx does it: a server that answers before it has
// read the whole request (413 for a body over the limit, 431, 403 from the
// guard) and then closes the socket makes the kernel reset the connection,
// because unread bytes are still arriving. A client that sends its whole
// request before reading, as Python's http.client (and so requests) and
// browsers do, then gets a write error or a reset instead of the answer.
// So such a connection is half-closed after the answer and its input read
// and thrown away until the client closes or the bounds below are hit.

// Defaults of LingerConfig.
const (
	DefaultLingerTime    = 30 * time.Second // nginx's lingering_time
	DefaultLingerTimeout = 5 * time.Second  // nginx's lingering_timeout
	DefaultLingerBytes   = 64 << 20
	DefaultLingerConns   = 1024
)

// LingerConfig bounds lingering closes. Zero fields take the defaults.
type LingerConfig struct {
	Time     time.Duration // longest a connection lingers, from the half-close
	Timeout  time.Duration // longest wait for the client's next bytes
	MaxBytes int64         // most bytes read and discarded per connection
	MaxConns int           // most connections lingering at once; beyond, closed at once
}

// Linger runs the lingering closes of the connections it is given to, at
// most MaxConns at once. Safe for concurrent use.
type Linger struct {
	cfg   LingerConfig
	slots chan struct{}
	bufs  sync.Pool

	lingered atomic.Int64 // connections that lingered
	skipped  atomic.Int64 // connections closed at once for want of a slot
}

// lingerBuf is the size of the reads that discard input.
const lingerBuf = 16 << 10

// NewLinger returns a Linger with cfg's bounds.
func NewLinger(cfg LingerConfig) *Linger {
	if cfg.Time <= 0 {
		cfg.Time = DefaultLingerTime
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultLingerTimeout
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultLingerBytes
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultLingerConns
	}
	l := &Linger{cfg: cfg, slots: make(chan struct{}, cfg.MaxConns)}
	l.bufs.New = func() any { b := make([]byte, lingerBuf); return &b }
	return l
}

// LingerStats counts lingering closes.
type LingerStats struct {
	Lingering int   `json:"lingering"` // connections lingering now
	Lingered  int64 `json:"lingered"`  // connections that lingered, in all
	Skipped   int64 `json:"skipped"`   // connections closed at once because MaxConns were lingering
}

// Stats returns the counters.
func (l *Linger) Stats() LingerStats {
	return LingerStats{Lingering: len(l.slots), Lingered: l.lingered.Load(), Skipped: l.skipped.Load()}
}

// acquire takes a lingering slot if one is free.
func (l *Linger) acquire() bool {
	select {
	case l.slots <- struct{}{}:
		l.lingered.Add(1)
		return true
	default:
		return false
	}
}

// drain half-closes c first if halfClose, then reads and discards c's
// input until the client closes it, a read waits longer than Timeout,
// Time has passed or MaxBytes were read; then it closes c with close and
// gives the slot back. The half-close is done here, not by the caller:
// over TLS it writes an alert, which can wait for a client that does not
// read.
func (l *Linger) drain(c net.Conn, halfClose bool, close func()) {
	defer func() { <-l.slots }()
	defer close()
	end := time.Now().Add(l.cfg.Time)
	if halfClose {
		_ = closeWrite(c)
	}
	bp := l.bufs.Get().(*[]byte)
	defer l.bufs.Put(bp)
	buf := *bp
	left := l.cfg.MaxBytes
	for left > 0 {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		d := now.Add(l.cfg.Timeout)
		if d.After(end) {
			d = end
		}
		_ = c.SetReadDeadline(d)
		n, err := c.Read(buf[:min(int64(len(buf)), left)])
		left -= int64(n)
		if err != nil {
			return
		}
	}
}

// closer closes one connection, lingering when asked to. Its methods may
// be called from any goroutine, more than once.
type closer struct {
	l *Linger // nil: never linger
	c net.Conn

	mu       sync.Mutex
	wanted   bool // closeWrite found no free slot
	draining bool // a drain goroutine reads c and will close it
	closing  bool // Close was called
	closed   bool // c is closed
}

// closeWrite half-closes the connection: the client reads the answer up
// to a clean end. net/http calls it when it is about to close with input
// left unread, so draining starts now rather than at the Close that
// follows half a second later: a client blocked sending goes on at once.
func (k *closer) closeWrite() error {
	err := closeWrite(k.c)
	if k.l == nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.draining || k.closing {
		return err
	}
	if !k.l.acquire() {
		k.wanted = true // Close tries again
		return err
	}
	k.draining = true
	go k.l.drain(k.c, false, k.drained)
	return err
}

// drained is called when a drain ends: the connection closes now if
// Close was called, else at Close.
func (k *closer) drained() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.draining = false
	if k.closing && !k.closed {
		k.closed = true
		k.c.Close()
	}
}

// close closes the connection. With linger it first half-closes and
// drains, in a goroutine: close returns at once, so that http.Server's
// Close and Shutdown never wait for a lingering client. Without a free
// slot the connection closes at once.
func (k *closer) close(linger bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closing {
		return nil
	}
	k.closing = true
	if k.draining {
		return nil // drained closes it
	}
	if (linger || k.wanted) && k.l != nil {
		if k.l.acquire() {
			k.draining = true
			go k.l.drain(k.c, !k.wanted, k.drained)
			return nil
		}
		k.l.skipped.Add(1)
	}
	k.closed = true
	return k.c.Close()
}

// closeWrite half-closes c, looking through wrappers that do not forward
// CloseWrite: PROXY protocol connections give their own with Raw.
func closeWrite(c net.Conn) error {
	for range 8 {
		switch x := c.(type) {
		case interface{ CloseWrite() error }:
			return x.CloseWrite()
		case interface{ Raw() net.Conn }:
			c = x.Raw()
		default:
			return errors.ErrUnsupported
		}
	}
	return errors.ErrUnsupported
}
