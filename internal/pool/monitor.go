package pool

import (
	"context"
	"io"
	"time"

	"corral/internal/proto"
)

// Heartbeats: an idle worker gets a PING when it has done nothing for
// heartbeatEvery, and is replaced if the PONG does not come within
// heartbeatTimeout. A worker answers PING even when idle in its loop, so
// silence means it is wedged (a deadlock, a thread holding the GIL).
const (
	monitorEvery     = time.Second
	heartbeatEvery   = 5 * time.Second
	heartbeatTimeout = 10 * time.Second
)

// monitor recycles workers past their lifetime or memory limit and checks
// idle workers' heartbeats. It runs once a second, busy or not.
func (p *Pool) monitor() {
	t := time.NewTicker(monitorEvery)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			p.checkWorkers(now)
		case <-p.stopCtx.Done():
			return
		}
	}
}

func (p *Pool) checkWorkers(now time.Time) {
	type recycle struct {
		m      *member
		reason string
	}
	var pings, wedged []*member
	var rss []*member
	var recycles []recycle
	p.mu.Lock()
	for _, m := range p.members {
		if m.state != StateReady {
			continue
		}
		switch {
		case m.asgi:
			// watchLoops pings ASGI workers, busy or not.
		case !m.pingSent.IsZero() && now.Sub(m.pingSent) > heartbeatTimeout:
			wedged = append(wedged, m)
		case len(m.inflight) == 0 && m.pingSent.IsZero() && now.Sub(m.lastActive) > heartbeatEvery:
			m.pingSent = now
			pings = append(pings, m)
		}
		if !m.recycling && !m.retireAt.IsZero() && now.After(m.retireAt) {
			m.recycling = true
			recycles = append(recycles, recycle{m, "max-lifetime"})
		}
		if p.cfg.MaxRSS > 0 && !m.recycling {
			rss = append(rss, m)
		}
	}
	p.mu.Unlock()

	for _, m := range pings {
		m.send(proto.AppendFrame(nil, proto.Ping, 0, 0), false)
	}
	for _, m := range wedged {
		p.log.Error("worker stopped answering heartbeats; replacing it", "worker", m.id, "pid", m.w.Pid)
		p.kill(m, "heartbeat")
	}
	for _, m := range rss { // /proc reads stay outside the lock
		if n, err := m.w.RSS(); err == nil && n > p.cfg.MaxRSS {
			p.mu.Lock()
			if !m.recycling {
				m.recycling = true
				recycles = append(recycles, recycle{m, "max-rss"})
			}
			p.mu.Unlock()
			p.log.Info("worker over its memory limit", "worker", m.id, "pid", m.w.Pid, "rss_mib", n>>20, "max_rss_mib", p.cfg.MaxRSS>>20)
		}
	}
	if len(recycles) > 0 {
		p.mu.Lock()
		for _, r := range recycles {
			if s := p.slotOfLocked(r.m); s != nil {
				p.requestReplace(s, r.m, r.reason)
			}
		}
		p.mu.Unlock()
	}
}

// ASGI workers answer PING from their event loop, so a PONG that does not
// come means the loop is blocked: a call that does not await (time.sleep,
// a synchronous database driver, CPU-bound work) holds every request of
// the worker. watchLoops pings each ASGI worker every loopPingEvery, busy
// or not, with at most one PING outstanding. A loop that has not answered
// for BlockedLoopAfter is reported, with its stacks, once per blocking; past
// StuckAfter its slot gets a fresh worker (the blocked one finishes on the
// side), and past the hard timeout it is replaced as a hung worker is.
const (
	loopPingEvery = 250 * time.Millisecond
	// BlockedLoopAfter is how long an ASGI worker's event loop may leave a
	// PING unanswered before it is reported as blocked.
	BlockedLoopAfter = time.Second
)

// watchLoops runs the heartbeat of ASGI workers until the pool stops.
func (p *Pool) watchLoops() {
	t := time.NewTicker(loopPingEvery)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			p.checkLoops(now)
		case <-p.stopCtx.Done():
			return
		}
	}
}

func (p *Pool) checkLoops(now time.Time) {
	type report struct {
		m        *member
		dur      time.Duration
		inflight int
	}
	var pings []*member
	var blocked, stuck, hung []report
	p.mu.Lock()
	for _, m := range p.members {
		if !m.asgi || m.state != StateReady && m.state != StateDraining {
			continue
		}
		if m.pingSent.IsZero() {
			m.pingSent = now
			pings = append(pings, m)
			continue
		}
		d := now.Sub(m.pingSent)
		if d < BlockedLoopAfter {
			continue
		}
		r := report{m, d, len(m.inflight)}
		if !m.blocked {
			m.blocked = true
			blocked = append(blocked, r)
		}
		if sa := p.cfg.StuckAfter; sa > 0 && d > sa && m.state == StateReady && !m.recycling && p.stuck < p.maxStuck() {
			if sl := p.slotOfLocked(m); sl != nil {
				m.recycling, m.stuck = true, true
				p.stuck++
				p.requestReplace(sl, m, "stuck")
				stuck = append(stuck, r)
			}
		}
		if t := p.cfg.Timeout; t > 0 && d > t {
			hung = append(hung, r)
		}
	}
	p.mu.Unlock()
	for _, m := range pings {
		m.send(proto.AppendFrame(nil, proto.Ping, 0, 0), false)
	}
	for _, r := range blocked {
		p.log.Error("event loop blocked; its stacks follow", "worker", r.m.id, "pid", r.m.w.Pid,
			"blocked_for", r.dur.Round(time.Millisecond), "in_flight", r.inflight)
		r.m.w.DumpStacks()
	}
	for _, r := range stuck {
		p.log.Warn("event loop blocked past --stuck-after; a fresh worker takes its slot", "worker", r.m.id, "pid", r.m.w.Pid,
			"blocked_for", r.dur.Round(time.Millisecond), "in_flight", r.inflight)
	}
	for _, r := range hung {
		p.log.Error("event loop blocked past --timeout; replacing its worker", "worker", r.m.id, "pid", r.m.w.Pid,
			"blocked_for", r.dur.Round(time.Millisecond), "in_flight", r.inflight)
		p.kill(r.m, "event loop blocked")
	}
}

// warmupFrame is the REQUEST of a warm-up GET for path to m.
func (p *Pool) warmupFrame(m *member, path string) ([]byte, error) {
	b := proto.BeginRequest(nil)
	if m.asgi {
		root := p.cfg.Worker.Boot.RootPath
		for _, f := range []string{"GET", "http", "1.1", root + path, root + path, "", root,
			"127.0.0.1", "0", "127.0.0.1", "80", "host", "localhost", "user-agent", "corral-warmup"} {
			b = proto.AddField(b, f)
		}
		return proto.FinishRequest(b, 0, 0, nil)
	}
	for _, kv := range [][2]string{
		{"REQUEST_METHOD", "GET"}, {"PATH_INFO", path}, {"QUERY_STRING", ""},
		{"RAW_URI", path}, {"REQUEST_URI", path}, {"SERVER_PROTOCOL", "HTTP/1.1"},
		{"wsgi.url_scheme", "http"}, {"SERVER_NAME", "localhost"}, {"SERVER_PORT", "80"},
		{"REMOTE_ADDR", "127.0.0.1"}, {"REMOTE_PORT", "0"}, {"HTTP_HOST", "localhost"},
		{"HTTP_USER_AGENT", "corral-warmup"},
	} {
		b = proto.AddEnv(b, kv[0], kv[1])
	}
	return proto.FinishRequest(b, 0, 0, nil)
}

// warmup sends one GET for path to a new worker before it takes traffic,
// so the first real request does not pay for lazy imports and caches.
// Whatever the answer, the worker then serves; a failure is logged.
func (p *Pool) warmup(m *member, path string) {
	frame, err := p.warmupFrame(m, path)
	if err != nil {
		p.log.Error("warm-up request too large", "path", path, "error", err)
		return
	}
	c := &Call{req: Request{Frame: frame, Method: "GET", Path: path},
		pool: p, headC: make(chan struct{})}
	if m.asgi {
		c.x = &asgiCall{}
	}
	now := time.Now()
	p.mu.Lock()
	c.key = p.est.key(&c.req)
	c.est = p.est.get(c.key)
	if p.inflight == 0 && p.queue.n == 0 {
		p.wake()
	}
	write := p.assignLocked(c, m, now)
	p.mu.Unlock()
	if write {
		m.drain()
	}
	ctx, cancel := context.WithTimeout(p.stopCtx, p.cfg.BootTimeout)
	defer cancel()
	code, _, _, err := c.Head(ctx)
	if err == nil {
		err = c.WriteBody(ctx, discard{}, nil)
	}
	c.Release()
	switch {
	case err != nil:
		p.log.Warn("warm-up request failed", "worker", m.id, "path", path, "error", err)
	case code >= 500:
		p.log.Warn("warm-up request answered with an error", "worker", m.id, "path", path, "status", code)
	default:
		p.log.Debug("worker warmed up", "worker", m.id, "path", path, "status", code, "took", time.Since(now).Round(time.Millisecond))
	}
}

// discard is a Writer that drops everything.
type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func (discard) ReadFrom(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }
