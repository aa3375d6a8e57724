package listen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// TLSFiles names the files of a TLS set-up.
type TLSFiles struct {
	CertFile string // PEM certificate chain
	KeyFile  string // PEM private key; "" = in CertFile
	CAFile   string // PEM bundle for client certificates; "" = none
	// ClientAuth is how client certificates are asked for; with anything
	// but tls.NoClientCert, CAFile is needed.
	ClientAuth tls.ClientAuthType
}

// Certs holds a TLS configuration read from files and keeps it current:
// Reload reads the files again, Watch does when they change. Connections
// already open keep the certificate they were made with; new handshakes
// get the current one. Safe for concurrent use.
type Certs struct {
	files TLSFiles
	log   *slog.Logger

	cur atomic.Pointer[tls.Config]

	mu   sync.Mutex // serialises reloads
	seen [3]fileSig // of the files the last reload read, loaded or not
}

// fileSig tells whether a file changed: os.Stat follows symlinks, so a
// certbot or Kubernetes style swap of a link shows as a new inode.
type fileSig struct {
	ino   uint64
	size  int64
	mtime time.Time
	err   bool
}

// LoadCerts reads the files once; it fails when they do not make a
// working configuration.
func LoadCerts(files TLSFiles, log *slog.Logger) (*Certs, error) {
	if files.KeyFile == "" {
		files.KeyFile = files.CertFile
	}
	c := &Certs{files: files, log: log.With("component", "tls")}
	cfg, sigs, err := c.read()
	if err != nil {
		return nil, err
	}
	c.cur.Store(cfg)
	c.seen = sigs
	leaf := cfg.Certificates[0].Leaf
	c.log.Info("certificate loaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	return c, nil
}

// Config is the tls.Config to serve with. Its GetConfigForClient returns
// the configuration current at each handshake.
func (c *Certs) Config() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return c.cur.Load(), nil },
	}
}

// Certificate returns the leaf certificate now served.
func (c *Certs) Certificate() *x509.Certificate {
	return c.cur.Load().Certificates[0].Leaf
}

// Reload reads the files again. On error the configuration in use stays.
func (c *Certs) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reload()
}

func (c *Certs) reload() error {
	cfg, sigs, err := c.read()
	c.seen = sigs
	if err != nil {
		c.log.Error("certificate not reloaded; the previous one stays in use", "error", err)
		return err
	}
	old := c.cur.Swap(cfg)
	leaf := cfg.Certificates[0].Leaf
	if old != nil && old.Certificates[0].Leaf.Equal(leaf) && c.sameCAs(old, cfg) {
		return nil
	}
	c.log.Info("certificate loaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func (c *Certs) sameCAs(a, b *tls.Config) bool {
	if a.ClientCAs == nil || b.ClientCAs == nil {
		return a.ClientCAs == b.ClientCAs
	}
	return a.ClientCAs.Equal(b.ClientCAs)
}

// Watch reloads the files when they change, checking every interval, until
// ctx ends. A pair caught half-written fails to load and is tried again
// when the other file changes too.
func (c *Certs) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		if c.stat() != c.seen {
			_ = c.reload()
		}
		c.mu.Unlock()
	}
}

func (c *Certs) paths() [3]string {
	return [3]string{c.files.CertFile, c.files.KeyFile, c.files.CAFile}
}

func (c *Certs) stat() [3]fileSig {
	var sigs [3]fileSig
	for i, p := range c.paths() {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			sigs[i].err = true
			continue
		}
		sigs[i] = fileSig{size: fi.Size(), mtime: fi.ModTime()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			sigs[i].ino = st.Ino
		}
	}
	return sigs
}

// read builds a configuration from the files. The signatures are taken
// before reading, so a change during the read is seen by the next check.
func (c *Certs) read() (*tls.Config, [3]fileSig, error) {
	sigs := c.stat()
	f := c.files
	certPEM, err := os.ReadFile(f.CertFile)
	if err != nil {
		return nil, sigs, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return nil, sigs, fmt.Errorf("read key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, sigs, fmt.Errorf("load certificate %s and key %s: %w", f.CertFile, f.KeyFile, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
		Certificates: []tls.Certificate{cert},
		ClientAuth:   f.ClientAuth,
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, sigs, fmt.Errorf("read CA certificates: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, sigs, fmt.Errorf("CA certificates %s: no PEM certificate found", f.CAFile)
		}
		cfg.ClientCAs = pool
	}
	return cfg, sigs, nil
}

// TLS wraps l to serve TLS with config. Each handshake runs in its own
// goroutine, bounded by timeout (0 = none), so a slow client never holds up
// Accept. A connection that negotiated HTTP/2 is returned as the *tls.Conn
// itself, which net/http serves with HTTP/2. Any other is returned wrapped,
// after http1 has wrapped the decrypted stream (nil = as it is): net/http
// then serves it as HTTP/1, and ConnContext and WithTLSState give its
// requests their TLS state back. Connections that fail the handshake are
// closed; a client that spoke plain HTTP gets a 400 first, as net/http
// does.
//
// Close closes l. Accept goes on returning the connections l still hands
// out (see Open on draining) whose handshakes finish within a second, then
// reports the close.
func TLS(l net.Listener, config *tls.Config, timeout time.Duration, http1 func(net.Conn) net.Conn, log *slog.Logger) net.Listener {
	t := &tlsListener{
		Listener: l, config: config, timeout: timeout, http1: http1,
		log:   log.With("component", "tls"),
		conns: make(chan net.Conn), done: make(chan struct{}),
	}
	go t.acceptLoop()
	return t
}

// handshakeGrace is how long handshakes under way when the listener closes
// may still finish and be served.
const handshakeGrace = time.Second

type tlsListener struct {
	net.Listener
	config  *tls.Config
	timeout time.Duration
	http1   func(net.Conn) net.Conn
	log     *slog.Logger

	conns    chan net.Conn
	inflight sync.WaitGroup
	done     chan struct{} // closed when Accept reports err
	err      error
	failures atomic.Int64
}

func (t *tlsListener) acceptLoop() {
	for {
		c, err := t.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			idle := make(chan struct{})
			go func() { t.inflight.Wait(); close(idle) }()
			select {
			case <-idle:
			case <-time.After(handshakeGrace):
			}
			t.err = err
			close(t.done)
			return
		}
		t.inflight.Add(1)
		go t.handshake(c)
	}
}

func (t *tlsListener) handshake(raw net.Conn) {
	defer t.inflight.Done()
	tc := tls.Server(raw, t.config)
	ctx := context.Background()
	if t.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		var rhe tls.RecordHeaderError
		if errors.As(err, &rhe) && rhe.Conn != nil && looksLikeHTTP(rhe.RecordHeader) {
			_ = rhe.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(rhe.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		tc.Close()
		// A line per failure would let any client flood the log: debug
		// only, with a count.
		t.log.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "error", err, "failures", t.failures.Add(1))
		return
	}
	var c net.Conn = tc
	if st := tc.ConnectionState(); st.NegotiatedProtocol != "h2" {
		var inner net.Conn = tc
		if t.http1 != nil {
			inner = t.http1(tc)
		}
		c = &tlsHTTP1Conn{Conn: inner, state: st}
	}
	select {
	case t.conns <- c:
	case <-t.done:
		c.Close()
	}
}

// looksLikeHTTP is net/http's test of a TLS record header that is really
// the start of a plain HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// Accept returns the next connection whose handshake succeeded.
func (t *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-t.conns:
		return c, nil
	case <-t.done:
		return nil, t.err
	}
}

// tlsHTTP1Conn is a TLS connection served as HTTP/1 through a wrapper of
// the decrypted stream; net/http recognises only a bare *tls.Conn, so the
// TLS state travels with the connection to ConnContext.
type tlsHTTP1Conn struct {
	net.Conn
	state tls.ConnectionState
}

// CloseWrite forwards net/http's half-close to the wrapper of the
// decrypted stream: embedding an interface does not promote it.
func (c *tlsHTTP1Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

type tlsStateKey struct{}

// ConnContext is for http.Server.ConnContext: it records the TLS state of
// a connection TLS returned wrapped. It does no I/O: net/http calls it in
// its accept loop.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tlsHTTP1Conn); ok {
		return context.WithValue(ctx, tlsStateKey{}, &tc.state)
	}
	return ctx
}

// WithTLSState gives requests on wrapped TLS connections their r.TLS, as
// net/http sets it for a bare *tls.Conn, so handlers see https.
func WithTLSState(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
				cp := *st
				r.TLS = &cp
			}
		}
		h.ServeHTTP(w, r)
	})
}
