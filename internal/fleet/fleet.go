// Package fleet shares the guard's state among the corral instances of a
// fleet through Redis, or Valkey, which speaks the same protocol: bans,
// jail windows and rate-limit buckets. Its Store is a guard.Shared.
//
// The guard answers from its own tables. It calls Take from its own
// goroutine, in batches; Put and Delete queue. Only Count (for an answer
// that counts against a jail), Banned (for a client near a jail's
// threshold) and Push (after a ban such a count made) are called from a
// request's goroutine. Each call has a short timeout (Config.Timeout);
// Take, which no request waits for, at least takeTimeout.
// Calls that keep failing for a second (a store that hangs), or a broken
// subscription (a store that died), open the circuit: Up turns false,
// every call fails at once, and one goroutine tries to reconnect with
// backoff. A failed call or two in between successes (a moment when the
// machine is too busy to answer within a few milliseconds) only drop
// their own updates. When
// the store answers again that goroutine subscribes to the ban channel,
// pushes the ban changes made here meanwhile, reads the fleet's bans,
// pushes the bans in force here that the store lacks (it may have
// restarted empty), and only then closes the circuit. The log has one
// line when the store goes and one when it comes back.
//
// In Redis (prefix "corral" by default):
//
//	PREFIX:ban:{ADDR}        a ban or an unban (JSON), latest change wins;
//	                         TTL: the ban's end plus a day, two days for an unban
//	PREFIX:jail:JAIL:{ADDR}  a jail window: a sorted set of event times, TTL findtime
//	PREFIX:rate:LIMIT:{ADDR} a GCRA bucket: its theoretical arrival time (µs)
//	PREFIX:rate:global       the global limit's bucket
//	PREFIX:bans              the channel every ban change is published on
//
// Each script touches the keys of one client only, and the client's
// address is the hash tag, so every call works on one Redis Cluster slot.
package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"corral/internal/guard"
)

// Config configures a Store.
type Config struct {
	// URL is the store: redis://[user:password@]host:port/db,
	// rediss://… (TLS; ?ca=FILE for the authorities to trust instead of
	// the system's, &cert=FILE&key=FILE for a client certificate) or
	// unix:///path/to/socket?db=N.
	URL string
	// Prefix starts every key and the channel; default "corral". Fleets
	// that must not share bans use different prefixes (or databases).
	Prefix string
	// Timeout bounds every call the guard's goroutines make; default 5ms.
	// Connecting, reading the fleet's bans and pushing them after an
	// outage take up to setupTimeout per call instead.
	Timeout time.Duration
	// ID names this instance in the bans it shares and in the others'
	// logs; default host:pid.
	ID     string
	Logger *slog.Logger
}

// Timings of the connection's life.
const (
	setupTimeout = 2 * time.Second        // one call while (re)connecting
	healthEvery  = time.Second            // a PING when no message came for this long
	tripAfter    = 3                      // failed calls in a row that open the circuit...
	tripTime     = time.Second            // ...when the first of them is this old
	backoffMin   = 50 * time.Millisecond  // first wait before reconnecting
	backoffMax   = 5 * time.Second        // longest wait between attempts
	maxPending   = 100000                 // ban changes queued while the store is away
	keepEnded    = 24 * time.Hour         // a ban's key outlives its end this long (the guard's escalation memory)
	keepUnbans   = 48 * time.Hour         // an unban's key lives this long
	pushBatch    = 256                    // ban changes per pipeline
	scanCount    = 1000                   // keys per SCAN
	defaultWait  = 5 * time.Millisecond   // Config.Timeout's default
	startTimeout = 3 * time.Second        // Open's check of the URL, password and scripts
	dialTimeout  = 2 * time.Second        // one connection attempt
	poolTimeout  = 100 * time.Millisecond // waiting for a free connection
	// takeTimeout is the least time a rate report (Take) may take. No
	// request waits for one, and a report that times out is lost: the
	// requests it counted are never paid back, so the fleet overshoots
	// its limits. On a busy machine 5ms is often not enough (a global
	// limit admitted +25% during a full test run); this is.
	takeTimeout = 250 * time.Millisecond
)

// Store is the fleet's shared guard state in Redis. Open it, hand it to
// the guard (guard.Config.Shared), and Close it after the guard's
// Shutdown.
type Store struct {
	cfg  Config
	log  *slog.Logger
	rdb  *redis.Client
	url  string // without the password
	keys keys

	ctx    context.Context // ended by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	up       atomic.Bool
	failures atomic.Int32 // failed calls in a row
	failedAt atomic.Int64 // when the first of them failed, Unix ns
	errors   atomic.Int64
	dropped  atomic.Int64
	seq      atomic.Uint64 // makes jail window members unique
	kick     chan struct{} // wakes the writer

	mu        sync.Mutex // guards the fields below
	pending   map[string]record
	fullOnce  bool          // the pending queue overflowed in this outage (logged)
	ps        *redis.PubSub // the subscription of the session in progress
	local     guard.Local
	lastErr   error
	downSince time.Time // zero while up, or before the first attempt
	outages   int64
	everUp    bool
	started   bool
	closed    bool

	pushMu sync.Mutex // one push at a time
}

var _ guard.Shared = (*Store)(nil)

// New checks the URL and returns a Store that has not connected yet: see
// Check. It makes no connection, so that the owner may call Check
// after giving up privileges, as the account that will reconnect later.
func New(cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "corral"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultWait
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = host + ":" + strconv.Itoa(os.Getpid())
	}
	shown := Redact(cfg.URL)
	raw, files, err := splitTLSFiles(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("guard store %s: %w", shown, err)
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("guard store %s: %w", shown, err)
	}
	if err := files.apply(opt.TLSConfig); err != nil {
		return nil, fmt.Errorf("guard store %s: %w", shown, err)
	}
	opt.Protocol = 2 // RESP2: any Redis or Valkey
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	opt.MaxRetries = -1 // the circuit decides, not retries
	opt.DialTimeout = dialTimeout
	opt.DialerRetries = 1
	opt.ReadTimeout = setupTimeout
	opt.WriteTimeout = setupTimeout
	opt.ContextTimeoutEnabled = true
	opt.PoolSize = 8
	opt.PoolTimeout = poolTimeout
	opt.PipelinePoolSize = -1
	log := cfg.Logger.With("component", "fleet")
	// go-redis logs through a logger of its own, set for the whole
	// process; its lines (a dropped connection) are debug lines here.
	redis.SetLogger(redisLogger{log})
	s := &Store{
		cfg: cfg, log: log, rdb: redis.NewClient(opt), url: shown, keys: newKeys(cfg.Prefix),
		pending: map[string]record{}, kick: make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Check connects once, authenticates and loads the scripts, within ctx
// and at most startTimeout. A refusal by the server (a wrong password, a
// user without the rights, a database out of range, a TLS alert), or a
// TLS certificate that does not verify, is returned: the configuration is wrong. A store
// that does not answer is not an error: the Store keeps trying in the
// background once started, while the guard works alone.
func (s *Store) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	err := s.setup(ctx)
	switch {
	case err == nil:
		return nil
	case redis.IsAuthError(err):
		return fmt.Errorf("guard store %s: authentication failed (check the user and password in the URL): %w", s.url, err)
	case misconfigured(err):
		return fmt.Errorf("guard store %s: %w", s.url, err)
	}
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	return nil
}

// Open is New and Check; on an error the Store is closed.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Check(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// misconfigured reports whether err says that the store refused us, as
// opposed to not answering.
func misconfigured(err error) bool {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return !redis.IsLoadingError(err) && !redis.IsTryAgainError(err) && !redis.IsMasterDownError(err) &&
			!redis.IsClusterDownError(err) && !redis.IsMaxClientsError(err) && !redis.HasErrorPrefix(err, "BUSY")
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return true
	}
	// A TLS alert from the server: it refused our certificate (or the
	// lack of one), the protocol version or the ciphers.
	var oerr *net.OpError
	return errors.As(err, &oerr) && oerr.Op == "remote error"
}

// setup pings the store (connecting and authenticating) and loads the
// scripts.
func (s *Store) setup(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return err
	}
	for _, sc := range allScripts {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("load script: %w", err)
		}
	}
	return nil
}

// URL returns the store's URL without its password.
func (s *Store) URL() string { return s.url }

// Start starts the connection's life on behalf of l. Only the first call
// counts.
func (s *Store) Start(l guard.Local) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	s.local = l
	s.wg.Add(2)
	go s.run()
	go s.writer()
}

// Up reports whether the circuit is closed: the store answers.
func (s *Store) Up() bool { return s.up.Load() }

// Close stops the background work and closes the connections. The ban
// changes still queued are lost (the guard's Shutdown flushes them first).
// It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ps := s.ps
	s.mu.Unlock()
	s.cancel()
	if ps != nil {
		ps.Close()
	}
	s.wg.Wait()
	s.up.Store(false)
	return s.rdb.Close()
}

// Stats describes the store for /status.
func (s *Store) Stats() guard.SharedStats {
	st := guard.SharedStats{URL: s.url, Up: s.up.Load(), Errors: s.errors.Load(), Dropped: s.dropped.Load()}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.PendingBans = len(s.pending)
	st.Outages = s.outages
	if !s.downSince.IsZero() {
		d := s.downSince
		st.DownSince = &d
		st.DownSeconds = time.Since(d).Seconds()
	}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	return st
}

// call runs f with the call timeout, counting its failure or success for
// the circuit. It fails at once while the circuit is open.
func (s *Store) call(ctx context.Context, f func(ctx context.Context) error) error {
	return s.callWithin(ctx, s.cfg.Timeout, f)
}

// callWithin is call with its own timeout.
func (s *Store) callWithin(ctx context.Context, timeout time.Duration, f func(ctx context.Context) error) error {
	if !s.up.Load() {
		return guard.ErrDown
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := f(ctx)
	s.count(err)
	return err
}

// count counts a call's outcome for the circuit.
func (s *Store) count(err error) {
	switch {
	case err == nil:
		if s.failures.Load() != 0 {
			s.failures.Store(0)
		}
	case s.ctx.Err() != nil || errors.Is(err, context.Canceled):
		// Stopping: not the store's fault.
	default:
		s.fail(err)
	}
}

// fail counts a failed call: tripAfter of them in a row, over tripTime
// at least, open the circuit.
func (s *Store) fail(err error) {
	s.errors.Add(1)
	now := time.Now().UnixNano()
	n := s.failures.Add(1)
	if n == 1 {
		s.failedAt.Store(now)
	}
	s.mu.Lock()
	s.lastErr = err
	var ps *redis.PubSub
	if n >= tripAfter && now-s.failedAt.Load() >= int64(tripTime) && s.up.CompareAndSwap(true, false) {
		// The session's receive loop ends when its subscription closes.
		ps = s.ps
	}
	s.mu.Unlock()
	if ps != nil {
		ps.Close()
	}
}

// tlsFiles are the files a rediss:// URL names in its query: ca (the
// authorities that sign the server's certificate, instead of the
// system's), cert and key (a client certificate, for a server with
// tls-auth-clients, Redis's default). They are read once, by New.
type tlsFiles struct{ ca, cert, key string }

// splitTLSFiles takes the ca, cert and key parameters out of u, which
// go-redis does not know, and returns the rest.
func splitTLSFiles(u string) (string, tlsFiles, error) {
	var f tlsFiles
	p, err := url.Parse(u)
	if err != nil {
		return "", f, errors.New("the URL does not parse")
	}
	q := p.Query()
	f = tlsFiles{ca: q.Get("ca"), cert: q.Get("cert"), key: q.Get("key")}
	if f == (tlsFiles{}) {
		return u, f, nil
	}
	if p.Scheme != "rediss" {
		return "", f, errors.New("ca, cert and key are for a TLS store: rediss://")
	}
	if (f.cert == "") != (f.key == "") {
		return "", f, errors.New("a client certificate needs both cert and key")
	}
	q.Del("ca")
	q.Del("cert")
	q.Del("key")
	p.RawQuery = q.Encode()
	return p.String(), f, nil
}

// apply sets the files in c, rediss://'s TLS configuration.
func (f tlsFiles) apply(c *tls.Config) error {
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return fmt.Errorf("ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("ca: %s holds no PEM certificate", f.ca)
		}
		c.RootCAs = pool
	}
	if f.cert != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return fmt.Errorf("cert and key: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return nil
}

// Redact returns u without its password (in the user info or in the
// query), for logs and /status.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(a URL that does not parse)"
	}
	if q := p.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		p.RawQuery = q.Encode()
	}
	return p.Redacted()
}

// redisLogger turns go-redis's log lines into debug lines.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
