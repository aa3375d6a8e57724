package pool

import "time"

// stuckFactor: a request is stuck once it has run this many times longer
// than its route usually takes (and at least StuckAfter).
const stuckFactor = 20

// maxStuck is how many stuck workers may be set aside at once.
func (p *Pool) maxStuck() int {
	if p.cfg.MaxStuck > 0 {
		return p.cfg.MaxStuck
	}
	return p.cfg.Workers
}

// tick is how often the housekeeper looks at the pool while requests are
// queued or running. It bounds how late a timeout fires and how long a
// request can sit behind an overdue one before it is taken back.
const tick = 10 * time.Millisecond

// wake tells the housekeeper there is work. It never blocks, so callers
// may hold p.mu.
func (p *Pool) wake() {
	select {
	case p.busy <- struct{}{}:
	default:
	}
}

// housekeep enforces queue timeouts and hard request timeouts, and steals
// requests pipelined behind overdue ones. One goroutine per pool, ticking
// only while there is work, replaces a timer per request.
func (p *Pool) housekeep() {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		t.Stop()
		select {
		case <-p.busy:
		case <-p.stopCtx.Done():
			return
		}
		t.Reset(tick)
		for busy := true; busy; {
			select {
			case now := <-t.C:
				busy = p.sweep(now)
			case <-p.stopCtx.Done():
				return
			}
		}
	}
}

// sweep does one round of housekeeping and reports whether anything is
// still queued or running.
func (p *Pool) sweep(now time.Time) bool {
	var expired, late, slow []*Call
	var steal []*member
	p.mu.Lock()
	if qt := p.cfg.QueueTimeout; qt > 0 {
		for k := range p.queue.lanes {
			for c := p.queue.lanes[k].head; c != nil; {
				next := c.next
				if now.Sub(c.enqueued) > qt {
					p.queue.remove(c)
					c.state = callDone
					expired = append(expired, c)
				}
				c = next
			}
		}
		p.drainedLocked()
	}
	for _, m := range p.members {
		if m == nil {
			continue
		}
		stuck := 0
		for i, c := range m.inflight {
			if i >= m.slots {
				break
			}
			if c.since.IsZero() || c.timedOut {
				continue
			}
			if m.asgi && c.x != nil && c.x.responded.Load() {
				// An ASGI request's hard timeout ends with its response's
				// start (a stream runs as long as its client stays), a
				// WebSocket's with its accept. Its stuck check is the event
				// loop's (watchLoops).
				continue
			}
			ran := now.Sub(c.since)
			if sa := p.cfg.StuckAfter; sa > 0 && !m.asgi && ran > max(sa, stuckFactor*c.est) {
				stuck++
			}
			if t := p.timeoutOf(c); t > 0 && ran > t {
				c.timedOut = true
				late = append(late, c)
			} else if sr := p.cfg.SlowRequest; sr > 0 && ran > sr && !c.slowLogged {
				c.slowLogged = true
				slow = append(slow, c)
			}
		}
		if stuck == m.slots && m.state == StateReady && !m.recycling && p.stuck < p.maxStuck() {
			// Every thread of m is on a request far slower than its route
			// usually is: give its slot a fresh worker now, and let m finish
			// (or time out) on the side.
			if sl := p.slotOfLocked(m); sl != nil {
				m.recycling, m.stuck = true, true
				p.stuck++
				p.requestReplace(sl, m, "stuck")
			}
		}
		if m.state == StateReady && !m.stealing && len(m.inflight) > m.slots {
			if _, ok := p.expectedWaitLocked(m, now); !ok {
				m.stealing = true
				steal = append(steal, m)
			}
		}
	}
	busy := p.inflight > 0 || p.queue.n > 0
	p.mu.Unlock()

	for _, c := range expired {
		c.fail(ErrQueueTimeout)
	}
	for _, c := range late {
		p.timedOut(c)
	}
	for _, c := range slow {
		p.slowRequest(c, now)
	}
	for _, m := range steal {
		if err := m.w.Steal(); err != nil {
			p.log.Debug("steal failed", "worker", m.id, "error", err)
		}
	}
	return busy
}

// slowRequest logs a request that runs past the slow-request threshold,
// with its worker's Python stacks (faulthandler writes them to the
// worker's stderr, which the log shows with the worker id). The request
// goes on.
func (p *Pool) slowRequest(c *Call, now time.Time) {
	p.mu.Lock()
	m := c.m
	var ran time.Duration
	if m != nil {
		ran = now.Sub(c.since)
	}
	p.mu.Unlock()
	if m == nil {
		return
	}
	if m.asgi {
		// A coroutine waiting for I/O is on no thread's stack; a loop that
		// is blocked is reported by watchLoops, with the stacks.
		p.log.Warn("slow request", "worker", m.id, "pid", m.w.Pid,
			"method", c.req.Method, "path", c.req.Path, "elapsed", ran.Round(time.Millisecond))
		return
	}
	p.log.Warn("slow request; its worker's stacks follow", "worker", m.id, "pid", m.w.Pid,
		"method", c.req.Method, "path", c.req.Path, "elapsed", ran.Round(time.Millisecond))
	m.w.DumpStacks()
}
