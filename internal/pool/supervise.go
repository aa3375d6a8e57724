package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"corral/internal/proto"
	"corral/internal/worker"
)

// Backoff between restarts of a slot whose worker keeps dying: doubling
// from backoffMin to backoffMax, back to the minimum once a worker has
// lived for stableAfter.
const (
	backoffMin  = 100 * time.Millisecond
	backoffMax  = 30 * time.Second
	stableAfter = 30 * time.Second
)

// slot is one place in the pool, kept filled with a worker by its
// supervisor goroutine. Its id is the worker id the app sees; a replacement
// worker takes the same id.
type slot struct {
	id      int
	cur     *member         // guarded by p.mu; nil while the slot has no worker
	replace chan replaceReq // recycle, reload, timeout: start a new worker, retire the old
	remove  chan struct{}   // closed to take the slot out of the pool
	removed bool            // guarded by p.mu
	failing bool            // guarded by p.mu: in a crash loop (a long backoff)
	// With --preload: a forked worker kept ready to take the slot over at
	// once (crash, stuck, timeout, recycling), refilled in the background.
	spare     *member // guarded by p.mu
	refilling bool    // guarded by p.mu
}

// replaceReq asks a slot's supervisor for a new worker. m is the worker
// to replace (nil: whichever serves the slot then): a request that finds
// m replaced already, by an earlier request or after its death, replaces
// nothing, so a timeout's request that waited behind a recycle never
// recycles the recycle's new worker. done, if not nil, gets the outcome:
// nil once the new worker serves, or why it could not start (the old
// worker then keeps serving).
type replaceReq struct {
	m      *member
	reason string
	done   chan error
}

// newSlotLocked adds an empty slot.
func (p *Pool) newSlotLocked(id int) *slot {
	s := &slot{id: id, replace: make(chan replaceReq, 1), remove: make(chan struct{})}
	p.slotList = append(p.slotList, s)
	return s
}

// spawn starts a worker for slot id and returns it as a member that is not
// yet dispatched to.
func (p *Pool) spawn(ctx context.Context, id int) (*member, error) {
	cfg := p.cfg.Worker
	cfg.KillGrace = p.cfg.KillGrace
	cfg.Boot.WorkerID = id
	cfg.Boot.Mode = "serve"
	cfg.Boot.Threads = p.cfg.Threads
	cfg.Boot.Multiprocess = p.cfg.Workers > 1
	ctx, cancel := context.WithTimeout(ctx, p.cfg.BootTimeout)
	defer cancel()
	var w *worker.Worker
	var err error
	if p.cfg.Preload {
		var z *worker.Zygote
		if z, err = p.zygote(ctx); err == nil {
			w, err = z.Fork(ctx, id, p.cfg.Worker.Logger)
		}
		if err != nil {
			return nil, err
		}
		if err := p.checkInterface(w); err != nil {
			return nil, err
		}
		m := newMember(id, w)
		m.zygote = z.Pid()
		return p.starting(m), nil
	}
	w, err = worker.Spawn(ctx, p.cfg.Spawner, cfg)
	if err != nil {
		return nil, err
	}
	if err := p.checkInterface(w); err != nil {
		return nil, err
	}
	return p.starting(newMember(id, w)), nil
}

// ErrInterfaceChanged is why a new worker is refused when its app is not
// of the interface (WSGI or ASGI) the pool started with: the front end
// builds requests for one of them.
var ErrInterfaceChanged = errors.New("the app's interface changed; restart corral to serve it")

// checkInterface closes w and fails if it serves another interface than
// the pool's workers; before Start has decided, it accepts any.
func (p *Pool) checkInterface(w *worker.Worker) error {
	p.mu.Lock()
	want := p.iface
	p.mu.Unlock()
	if want != "" && w.Hello.Interface != want {
		w.Close()
		return fmt.Errorf("worker %d serves %s, the running workers %s: %w", w.ID, w.Hello.Interface, want, ErrInterfaceChanged)
	}
	return nil
}

// starting sets the capacity of a worker about to take its slot (a new
// one, or a spare taking over) and its recycling limits (with jitter).
func (p *Pool) starting(m *member) *member {
	if h := &m.w.Hello; h.IsASGI() {
		// Every request an ASGI worker reads starts at once: its capacity
		// is its connections, with nothing pipelined behind them.
		m.asgi = true
		m.slots = max(1, h.Threads)
		if h.Threads <= 0 && p.cfg.Worker.Boot.WorkerConnections > 0 {
			m.slots = p.cfg.Worker.Boot.WorkerConnections
		}
		m.depth = m.slots
	} else {
		m.slots, m.depth = p.slots, p.depth
	}
	if r := p.cfg.MaxRequests; r > 0 {
		m.maxServed = int64(r + jitter(p.cfg.MaxRequestsJitter))
	}
	if l := p.cfg.MaxLifetime; l > 0 {
		m.retireAt = m.started.Add(l + time.Duration(rand.Int64N(int64(p.cfg.MaxLifetimeJitter)+1)))
	}
	return m
}

// jitter is a random int in [0, n], so that workers started together do
// not all retire together.
func jitter(n int) int {
	if n <= 0 {
		return 0
	}
	return rand.IntN(n + 1)
}

// install starts reading m's frames, warms it up if configured, and makes
// it its slot's current worker. It fails if m died on the way.
func (p *Pool) install(s *slot, m *member) error {
	go func() {
		err := p.read(m)
		p.died(m, err)
		close(m.dead)
	}()
	if path := p.cfg.WarmupPath; path != "" {
		p.warmup(m, path)
	}
	p.mu.Lock()
	if !p.transitionLocked(m, StateReady) {
		p.mu.Unlock()
		return errors.New("worker died before it was ready")
	}
	s.cur = m
	s.failing = false
	p.members = append(p.members, m)
	ps := p.assignQueuedLocked(time.Now())
	p.mu.Unlock()
	if m.zygote > 0 {
		p.log.Info("worker ready", "worker", m.id, "pid", m.w.Pid, "zygote", m.zygote)
	} else {
		p.log.Info("worker ready", "worker", m.id, "pid", m.w.Pid)
	}
	p.flush(ps)
	if p.cfg.OnReady != nil {
		p.cfg.OnReady(&m.w.Hello)
	}
	return nil
}

// supervise keeps slot s filled with a worker until the pool stops or the
// slot is removed. m is the slot's first worker, or nil if it failed to
// start.
func (p *Pool) supervise(s *slot, m *member) {
	defer p.wg.Done()
	backoff := backoffMin
	failing := false
	for {
		if m == nil {
			var err error
			m, err = p.nextWorker(s)
			if err != nil {
				if p.stopCtx.Err() != nil {
					return
				}
				if !failing {
					p.log.Error("worker failed to start; retrying with backoff", "worker", s.id, "error", err)
					failing = true
				}
				if !p.backoff(s, backoff) {
					return
				}
				backoff = min(2*backoff, backoffMax)
				continue
			}
			if failing {
				p.log.Info("worker slot recovered", "worker", s.id)
				failing = false
			}
		}
		p.mu.Lock()
		starting := m.state == StateStarting // its reader may be moving it on: read under the lock
		p.mu.Unlock()
		if starting {
			if err := p.install(s, m); err != nil {
				<-m.dead
				m = nil
				if !p.backoff(s, backoff) {
					return
				}
				backoff = min(2*backoff, backoffMax)
				continue
			}
		}
		p.refillSpare(s)
		select {
		case <-m.dead:
			p.mu.Lock()
			if s.cur == m {
				s.cur = nil
			}
			p.mu.Unlock()
			lived := time.Since(m.started)
			p.mu.Lock()
			// A worker that had served and then died running a request was
			// killed by that request, not by a broken app: replace it at
			// once. Backoff is for workers that die booting or idle.
			killedByRequest := m.served > 0 && m.diedBusy
			p.mu.Unlock()
			m = nil
			if lived >= stableAfter || killedByRequest {
				backoff = backoffMin
			} else if !p.backoff(s, backoff) {
				return
			} else {
				backoff = min(2*backoff, backoffMax)
			}
		case r := <-s.replace:
			if r.m != nil && r.m != m {
				// m was replaced already; the restart's reason still counts
				// if nothing reported m's end.
				p.restarted(r.m, r.reason)
				continue
			}
			nm, err := p.nextWorker(s)
			if err != nil {
				if r.done != nil {
					r.done <- err
				} else if p.stopCtx.Err() == nil {
					p.log.Error("replacement worker failed to start; the old one keeps serving", "worker", s.id, "reason", r.reason, "error", err)
				}
				continue
			}
			if err := p.install(s, nm); err != nil {
				<-nm.dead
				if r.done != nil {
					r.done <- err
				}
				continue
			}
			old := m
			m = nm
			p.retire(old, r.reason)
			p.restarted(old, r.reason)
			p.refillSpare(s)
			if r.done != nil {
				r.done <- nil
			}
		case <-s.remove:
			p.retire(m, "removed")
			p.dropSpare(s)
			return
		case <-p.stopCtx.Done():
			return
		}
	}
}

// backoff waits before the slot's next start. A slot waiting a second or
// more is in a crash loop: while every slot is, requests are refused at
// once instead of queueing for workers that are not coming soon.
func (p *Pool) backoff(s *slot, d time.Duration) bool {
	p.mu.Lock()
	s.failing = d >= time.Second
	p.mu.Unlock()
	return p.sleep(d, s.remove)
}

// sleep waits d unless the pool stops or the slot is removed first.
func (p *Pool) sleep(d time.Duration, removed <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stopCtx.Done():
	case <-removed:
	}
	return false
}

// requestReplace asks s's supervisor for a worker to replace m unless a
// request is already pending. It never blocks, so callers may hold p.mu.
func (p *Pool) requestReplace(s *slot, m *member, reason string) {
	select {
	case s.replace <- replaceReq{m: m, reason: reason}:
	default:
	}
}

// retire takes m out of dispatch and ends it gracefully: requests pipelined
// to it that it has not started are taken back, the ones it runs may finish
// within the graceful timeout, then it gets EOF (and TERM and KILL if it
// does not exit). A worker already stopping is left to its fate.
func (p *Pool) retire(m *member, reason string) {
	p.mu.Lock()
	if !p.transitionLocked(m, StateDraining) {
		p.mu.Unlock()
		return
	}
	steal := len(m.inflight) > m.slots
	if steal {
		m.stealing = true
	}
	idle := len(m.inflight) == 0
	if !idle {
		m.emptied = make(chan struct{})
	}
	emptied := m.emptied
	served := m.served // complete counts under the lock, until the worker is gone
	p.mu.Unlock()
	p.log.Info("retiring worker", "worker", m.id, "pid", m.w.Pid, "reason", reason, "served", served)
	if steal {
		_ = m.w.Steal()
	}
	go func() {
		if !idle {
			t := time.NewTimer(p.cfg.GracefulTimeout)
			select {
			case <-emptied:
			case <-m.dead:
			case <-t.C:
				p.log.Warn("retiring worker still busy after the graceful timeout; stopping it", "worker", m.id, "pid", m.w.Pid)
				if p.restartSockets(m) > 0 {
					// A moment for the apps to hear it and end.
					select {
					case <-emptied:
					case <-m.dead:
					case <-time.After(time.Second):
					}
				}
			}
			t.Stop()
		}
		p.mu.Lock()
		p.transitionLocked(m, StateStopping)
		p.mu.Unlock()
		p.shutdownWithin(m.w, time.Second)
	}()
}

// timedOut fails a request that ran past its deadline and replaces its
// worker: the stacks are dumped for the log, requests waiting behind it
// are taken back, and the worker is stopped while a new one starts.
func (p *Pool) timedOut(c *Call) {
	p.mu.Lock()
	if c.state != callSent || c.m == nil {
		p.mu.Unlock()
		return
	}
	m := c.m
	elapsed := time.Since(c.since)
	if m.asgi {
		// An ASGI worker runs its other requests meanwhile: only this
		// one's task is cancelled (CANCEL|TIMEOUT, under p.mu so it never
		// follows the request's completion), and the client gets 504 now.
		// The call stays in flight until the worker says the task ended.
		c.cancelled = true
		write := m.push(proto.AppendFrame(nil, proto.Cancel, proto.FlagTimeout, c.id))
		p.mu.Unlock()
		if write {
			go m.drain()
		}
		p.log.Error("request timed out; its task is cancelled", "worker", m.id, "pid", m.w.Pid,
			"method", c.req.Method, "path", c.req.Path, "elapsed", elapsed.Round(time.Millisecond))
		c.fail(ErrTimeout)
		return
	}
	p.mu.Unlock()
	p.log.Error("request timed out; replacing its worker", "worker", m.id, "pid", m.w.Pid,
		"method", c.req.Method, "path", c.req.Path, "elapsed", elapsed.Round(time.Millisecond))
	c.fail(ErrTimeout)
	p.kill(m, "timeout")
}

// kill takes m out of dispatch and ends its process: stack dump, STEAL,
// SIGTERM twice, and SIGKILL after the grace. A replacement is asked for
// at once.
func (p *Pool) kill(m *member, reason string) {
	p.mu.Lock()
	changed := p.transitionLocked(m, StateStopping)
	if changed {
		if s := p.slotOfLocked(m); s != nil {
			p.requestReplace(s, m, reason)
		}
	}
	p.mu.Unlock()
	if !changed {
		return
	}
	m.w.DumpStacks()
	_ = m.w.Steal()
	go func() {
		time.Sleep(100 * time.Millisecond) // let faulthandler write before TERM changes the stacks
		// The first SIGTERM asks the worker to stop after its request; the
		// second stops it now (docs/PROTOCOL.md), so a hung request does
		// not hold a process for the whole kill grace.
		m.w.Signal(syscall.SIGTERM)
		select {
		case <-m.w.Exited():
			return
		case <-time.After(50 * time.Millisecond):
		}
		m.w.Signal(syscall.SIGTERM)
		select {
		case <-m.w.Exited():
		case <-time.After(p.cfg.KillGrace):
			p.log.Warn("worker did not exit after SIGTERM; killing it", "worker", m.id, "pid", m.w.Pid, "reason", reason)
			m.w.Kill()
		}
	}()
}

// slotOfLocked returns the slot whose current worker is m, or nil.
func (p *Pool) slotOfLocked(m *member) *slot {
	for _, s := range p.slotList {
		if s.cur == m {
			return s
		}
	}
	return nil
}

// died handles the end of m's process: requests it may have started fail
// with ErrWorkerDied, the others go back to the queue.
func (p *Pool) died(m *member, readErr error) {
	if errors.Is(readErr, errProtocol) || errors.Is(readErr, proto.ErrMalformed) ||
		errors.Is(readErr, proto.ErrTooLarge) || errors.Is(readErr, proto.ErrUnknownType) {
		p.log.Error("worker broke the protocol; killing it", "worker", m.id, "pid", m.w.Pid, "error", readErr)
	}
	m.w.Close()
	m.closeOut() // no write may still use a frame that is about to be re-dispatched
	now := time.Now()
	p.mu.Lock()
	planned := m.state >= StateDraining || p.phase >= phaseHalted
	p.transitionLocked(m, StateExited) // ends stuck and emptied
	for i, x := range p.members {
		if x == m {
			p.members = append(p.members[:i], p.members[i+1:]...)
			break
		}
	}
	var lost, back []*Call
	for i, c := range m.inflight {
		m.byIDDel(c.id)
		p.untrackLocked(c)
		if i < m.slots {
			c.state = callDone
			lost = append(lost, c)
		} else {
			back = append(back, c)
		}
	}
	m.inflight = nil
	m.websockets = 0
	m.diedBusy = len(lost) > 0
	ps := p.requeueLocked(back, now)
	p.drainedLocked()
	served := m.served
	p.mu.Unlock()
	for _, c := range lost {
		c.fail(ErrWorkerDied)
	}
	p.flush(ps)
	msg := "worker exited"
	if !planned {
		msg = "worker died; replacing it"
	}
	p.log.Info(msg, "worker", m.id, "pid", m.w.Pid, "status", exitStatus(m.w.ExitErr()),
		"served", served, "lost", len(lost), "redispatched", len(back))
	if !planned {
		p.restarted(m, "crash")
	}
}

// Restart is a worker replaced while the pool runs (Config.OnRestart).
type Restart struct {
	Worker int       `json:"worker"` // the slot's worker number
	Pid    int       `json:"pid"`    // the process replaced
	Reason string    `json:"reason"`
	Served int64     `json:"served"` // requests it had answered
	At     time.Time `json:"at"`
}

// restarted tells Config.OnRestart that m is being replaced for reason,
// once per worker: the first reason counts.
func (p *Pool) restarted(m *member, reason string) {
	p.mu.Lock()
	served, reported := m.served, m.reported
	m.reported = true
	p.mu.Unlock()
	if reported || p.cfg.OnRestart == nil {
		return
	}
	p.cfg.OnRestart(Restart{Worker: m.id, Pid: m.w.Pid, Reason: reason, Served: served, At: time.Now()})
}

func exitStatus(err error) string {
	if err == nil {
		return "exit 0"
	}
	var ee interface{ Sys() any }
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				return "killed by " + unix.SignalName(ws.Signal())
			}
			return fmt.Sprintf("exit %d", ws.ExitStatus())
		}
	}
	return err.Error()
}
