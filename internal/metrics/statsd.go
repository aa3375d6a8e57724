package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// statsd sends what gunicorn's statsd instrumentation sends, with its names
// and its datagram formats, so dashboards built for gunicorn keep working:
//
//	PREFIX.gunicorn.requests:1|c|@1.0              one per request
//	PREFIX.gunicorn.request.status.200:1|c|@1.0    one per request
//	PREFIX.gunicorn.request.duration:12.345|ms     milliseconds
//	PREFIX.gunicorn.workers:4|g                    every second
//	PREFIX.gunicorn.log.error:1|c|@1.0             per error line (and warning)
//
// with "|#TAGS" appended to each when --dogstatsd-tags is set. Requests
// are handed to a sender goroutine through a bounded channel: the request
// path never blocks and never formats; a full channel drops and counts.
// The sender packs lines into datagrams of at most statsdPacket bytes.

// StatsdConfig configures a Statsd.
type StatsdConfig struct {
	// Host is --statsd-host: HOST:PORT (the port defaults to 8125), or
	// unix:PATH for a Unix datagram socket.
	Host string
	// Prefix is --statsd-prefix; a dot is added if it has none.
	Prefix string
	// Tags is --dogstatsd-tags: comma-separated key:value tags, sent
	// as given.
	Tags   string
	Logger *slog.Logger
}

const (
	statsdQueue  = 8192 // events waiting for the sender
	statsdPacket = 1432 // bytes per datagram: fits an Ethernet MTU
)

type statsdEvent struct {
	kind   uint8 // evRequest, evLog
	status uint16
	dur    time.Duration
	level  slog.Level
}

const (
	evRequest = iota
	evLog
)

// Statsd is the statsd sender. Create it with NewStatsd, stop it with Close.
type Statsd struct {
	conn    net.Conn
	prefix  string
	tags    string
	events  chan statsdEvent
	workers atomic.Pointer[func() int]
	dropped atomic.Int64
	log     *slog.Logger

	stop context.CancelFunc
	done chan struct{}
	once sync.Once
}

var prefixRe = regexp.MustCompile(`^(.+[^.]+)\.*$`)

// StatsdPrefix is prefix as gunicorn spells it: one trailing dot.
func StatsdPrefix(prefix string) string {
	return prefixRe.ReplaceAllString(prefix, "$1.")
}

// StatsdAddress parses --statsd-host: the network and the address to dial.
func StatsdAddress(host string) (network, address string, err error) {
	if p, ok := strings.CutPrefix(host, "unix:"); ok {
		p = strings.TrimPrefix(p, "//")
		if p == "" {
			return "", "", errors.New("unix: needs a socket path")
		}
		return "unixgram", p, nil
	}
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		// No port: gunicorn's default.
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			return "", "", fmt.Errorf("%q: want HOST:PORT, HOST or unix:PATH", host)
		}
		h, port = strings.Trim(host, "[]"), "8125"
	}
	if h == "" {
		return "", "", fmt.Errorf("%q: no host", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%q: bad port", host)
	}
	return "udp", net.JoinHostPort(h, port), nil
}

// NewStatsd dials cfg.Host (a datagram socket: nothing is sent yet) and
// starts the sender.
func NewStatsd(cfg StatsdConfig) (*Statsd, error) {
	network, addr, err := StatsdAddress(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("statsd-host: %w", err)
	}
	conn, err := net.Dial(network, addr)
	if err != nil {
		return nil, fmt.Errorf("statsd-host: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Statsd{
		conn: conn, prefix: StatsdPrefix(cfg.Prefix), tags: cfg.Tags,
		events: make(chan statsdEvent, statsdQueue), done: make(chan struct{}),
		log: cfg.Logger.With("component", "statsd"),
	}
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.run(ctx)
	return s, nil
}

// SetWorkers sets the function whose value is sent as gunicorn.workers
// every second; until then none is sent.
func (s *Statsd) SetWorkers(f func() int) { s.workers.Store(&f) }

// Dropped is the number of metrics not sent: the queue was full, or a send
// failed (no statsd listening, say).
func (s *Statsd) Dropped() int64 { return s.dropped.Load() }

func (s *Statsd) push(e statsdEvent) {
	select {
	case s.events <- e:
	default:
		s.dropped.Add(1)
	}
}

// request queues one request's metrics.
func (s *Statsd) request(d time.Duration, status int) {
	s.push(statsdEvent{kind: evRequest, status: uint16(min(max(status, 0), 999)), dur: d})
}

// Close sends what is queued and stops the sender. It may be called more
// than once.
func (s *Statsd) Close() error {
	s.once.Do(func() {
		s.stop()
		<-s.done
		s.conn.Close()
	})
	return nil
}

func (s *Statsd) run(ctx context.Context) {
	defer close(s.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	pk := &packet{s: s, b: make([]byte, 0, statsdPacket)}
	failed := false
	for {
		select {
		case e := <-s.events:
			s.append(pk, e)
			// Take what else is queued before sending: one datagram
			// carries many lines under load.
			for more := true; more; {
				select {
				case e := <-s.events:
					s.append(pk, e)
				default:
					more = false
				}
			}
		case <-tick.C:
			if f := s.workers.Load(); f != nil {
				pk.line("gunicorn.workers", strconv.Itoa((*f)()), "g")
			}
		case <-ctx.Done():
			for more := true; more; {
				select {
				case e := <-s.events:
					s.append(pk, e)
				default:
					more = false
				}
			}
			pk.flush()
			return
		}
		if err := pk.flush(); err != nil && !failed {
			s.log.Warn("statsd send failed; dropping metrics until it works", "error", err)
		}
		failed = pk.err != nil
	}
}

func (s *Statsd) append(pk *packet, e statsdEvent) {
	switch e.kind {
	case evRequest:
		ms := float64(e.dur) / float64(time.Millisecond)
		pk.line("gunicorn.request.duration", strconv.FormatFloat(ms, 'f', 3, 64), "ms")
		pk.line("gunicorn.requests", "1", "c|@1.0")
		pk.line("gunicorn.request.status."+strconv.Itoa(int(e.status)), "1", "c|@1.0")
	case evLog:
		name := "gunicorn.log.warning"
		if e.level >= slog.LevelError {
			name = "gunicorn.log.error"
		}
		pk.line(name, "1", "c|@1.0")
	}
}

// packet gathers lines into one datagram.
type packet struct {
	s     *Statsd
	b     []byte
	lines int
	err   error // of the last send
}

func (p *packet) line(name, value, typ string) {
	n := len(p.s.prefix) + len(name) + len(value) + len(typ) + 2
	if p.s.tags != "" {
		n += 2 + len(p.s.tags)
	}
	if len(p.b) > 0 && len(p.b)+1+n > statsdPacket {
		_ = p.flush()
	}
	if len(p.b) > 0 {
		p.b = append(p.b, '\n')
	}
	p.b = append(p.b, p.s.prefix...)
	p.b = append(p.b, name...)
	p.b = append(p.b, ':')
	p.b = append(p.b, value...)
	p.b = append(p.b, '|')
	p.b = append(p.b, typ...)
	if p.s.tags != "" {
		p.b = append(p.b, "|#"...)
		p.b = append(p.b, p.s.tags...)
	}
	p.lines++
}

func (p *packet) flush() error {
	if len(p.b) == 0 {
		return nil
	}
	_ = p.s.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, p.err = p.s.conn.Write(p.b)
	if p.err != nil {
		p.s.dropped.Add(int64(p.lines))
	}
	p.b, p.lines = p.b[:0], 0
	return p.err
}

// LogHandler wraps h so that every warning and error is also counted as
// gunicorn.log.warning and gunicorn.log.error.
func (s *Statsd) LogHandler(h slog.Handler) slog.Handler { return logCounter{Handler: h, s: s} }

type logCounter struct {
	slog.Handler
	s *Statsd
}

// Enabled is true for warnings and errors, which are counted even when
// the log level leaves them out of the log, as gunicorn counts them.
func (l logCounter) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn || l.Handler.Enabled(ctx, level)
}

func (l logCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		l.s.push(statsdEvent{kind: evLog, level: r.Level})
	}
	if !l.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return l.Handler.Handle(ctx, r)
}

func (l logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return logCounter{Handler: l.Handler.WithAttrs(as), s: l.s}
}

func (l logCounter) WithGroup(name string) slog.Handler {
	return logCounter{Handler: l.Handler.WithGroup(name), s: l.s}
}
