package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

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

// Start spawns the workers and waits until each has either become ready or
// failed. It fails if the app cannot be loaded (a *worker.BootError, with
// the traceback) or if no worker could start at all; then nothing is left
// running. Workers that fail for other reasons are retried in the
// background.
func (p *Pool) Start(ctx context.Context) error {
	type result struct {
		slot int
		w    *worker.Worker
		err  error
	}
	results := make(chan result, p.cfg.Workers)
	for i := range p.cfg.Workers {
		go func() {
			w, err := p.spawn(ctx, i+1)
			results <- result{i, w, err}
		}()
	}
	var firstErr error
	var bootErr *worker.BootError
	started := make([]*worker.Worker, p.cfg.Workers)
	for range p.cfg.Workers {
		r := <-results
		started[r.slot] = r.w
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
		if r.err != nil && bootErr == nil {
			errors.As(r.err, &bootErr)
		}
	}
	ready := 0
	for _, w := range started {
		if w != nil {
			ready++
		}
	}
	if bootErr != nil || ready == 0 {
		for _, w := range started {
			if w != nil {
				w.Close()
			}
		}
		if bootErr != nil {
			return bootErr
		}
		return firstErr
	}
	for i, w := range started {
		p.wg.Add(1)
		go p.supervise(i+1, w)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.housekeep()
	}()
	return nil
}

func (p *Pool) spawn(ctx context.Context, slot int) (*worker.Worker, error) {
	cfg := p.cfg.Worker
	cfg.Boot.WorkerID = slot
	cfg.Boot.Mode = "serve"
	cfg.Boot.Threads = p.cfg.Threads
	cfg.Boot.Multiprocess = p.cfg.Workers > 1
	ctx, cancel := context.WithTimeout(ctx, p.cfg.BootTimeout)
	defer cancel()
	return worker.Spawn(ctx, p.cfg.Spawner, cfg)
}

// supervise keeps slot filled with a worker until the pool stops. w is the
// slot's first worker, or nil if it failed to start.
func (p *Pool) supervise(slot int, w *worker.Worker) {
	defer p.wg.Done()
	backoff := backoffMin
	failing := false
	for {
		if w == nil {
			var err error
			w, err = p.spawn(p.stopCtx, slot)
			if err != nil {
				if p.stopCtx.Err() != nil {
					return
				}
				if !failing {
					p.log.Error("worker failed to start; retrying with backoff", "worker", slot, "error", err)
					failing = true
				}
				if !p.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, backoffMax)
				continue
			}
		}
		if failing {
			p.log.Info("worker slot recovered", "worker", slot)
			failing = false
		}
		m := newMember(slot, w)
		p.mu.Lock()
		p.members[slot-1] = m
		ps := p.assignQueued(time.Now())
		p.mu.Unlock()
		p.log.Info("worker ready", "worker", slot, "pid", w.Pid)
		p.flush(ps)

		err := p.read(m)
		lived := time.Since(m.started)
		p.died(m, err)
		w = nil
		if p.stopCtx.Err() != nil {
			return
		}
		if lived >= stableAfter {
			backoff = backoffMin
		} else {
			if !p.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, backoffMax)
		}
	}
}

// sleep waits d unless the pool stops first.
func (p *Pool) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stopCtx.Done():
		return false
	}
}

// read handles m's frames until its channel breaks. It returns why.
func (p *Pool) read(m *member) error {
	for {
		f, fd, err := m.w.Next()
		if err != nil {
			return err
		}
		if err := p.handle(m, f, fd); err != nil {
			if fd != nil {
				fd.Close()
			}
			return err
		}
	}
}

// errProtocol marks a worker that broke the protocol; it is killed.
var errProtocol = errors.New("protocol violation")

func (p *Pool) handle(m *member, f proto.Frame, fd *os.File) error {
	switch f.Type {
	case proto.Returned:
		p.returned(m, proto.ParseReturned(f.Payload))
		return nil
	case proto.Pong:
		return nil
	case proto.Log:
		p.workerLog(m, nil, f.Payload)
		return nil
	case proto.Hello, proto.BootFail:
		return fmt.Errorf("%w: %s after boot", errProtocol, f.Type)
	}
	c := m.lookup(f.ID)
	if c == nil {
		return fmt.Errorf("%w: %s for unknown request %d", errProtocol, f.Type, f.ID)
	}
	switch f.Type {
	case proto.Start:
		head, body, err := proto.SplitStart(f.Payload)
		if err != nil {
			return err
		}
		status, headers, err := proto.ParseHead(head)
		if err != nil {
			return err
		}
		if f.Flags&proto.FlagEnd != 0 {
			_, _ = c.body.write(body)
			c.body.finish(nil)
			p.finish(c)
			if err := c.setHead(status, headers); err != nil {
				p.log.Error("invalid response status from app", "worker", m.id, "method", c.req.Method, "path", c.req.Path, "error", err)
			}
			return nil
		}
		if err := c.setHead(status, headers); err != nil {
			p.log.Error("invalid response status from app", "worker", m.id, "method", c.req.Method, "path", c.req.Path, "error", err)
		}
		p.bodyBytes(m, c, body)
	case proto.Body:
		p.bodyBytes(m, c, f.Payload)
	case proto.File:
		off, n, err := proto.ParseFile(f.Payload)
		if err != nil {
			fd.Close()
			return err
		}
		c.body.addFile(fd, off, n)
	case proto.End:
		var err error
		if f.Flags&proto.FlagAborted != 0 {
			err = ErrAborted
		}
		c.body.finish(err)
		p.finish(c)
		c.fail(ErrAborted) // no-op when the head was set
	case proto.Error:
		ae := &AppError{}
		if err := json.Unmarshal(f.Payload, ae); err != nil {
			ae.Err = "unreadable ERROR frame"
		}
		p.finish(c)
		p.log.Error("application error", "worker", m.id, "method", c.req.Method, "path", c.req.Path,
			"error", ae.Err, "traceback", ae.Traceback)
		c.fail(ae)
	case proto.Read:
		n, err := proto.ParseRead(f.Payload)
		if err != nil {
			return err
		}
		return p.serveRead(m, c, n)
	default:
		return fmt.Errorf("%w: unexpected %s", errProtocol, f.Type)
	}
	return nil
}

// finish completes c in the pool before its waiter is woken, so the waiter
// never sees a finished call as still running.
func (p *Pool) finish(c *Call) {
	p.mu.Lock()
	ps := p.complete(c, time.Now())
	p.mu.Unlock()
	p.flush(ps)
}

func (p *Pool) bodyBytes(m *member, c *Call, b []byte) {
	pause, err := c.body.write(b)
	if err != nil {
		p.log.Error("spooling response failed", "worker", m.id, "method", c.req.Method, "path", c.req.Path, "error", err)
		c.body.finish(err)
		p.release(c) // cancel at the worker; the client will see an aborted response
		return
	}
	if pause {
		p.mu.Lock()
		send := c.state == callSent && !c.paused
		c.paused = send || c.paused
		p.mu.Unlock()
		if send {
			m.send(proto.AppendFrame(nil, proto.Pause, 0, c.id), false)
		}
	}
}

// serveRead answers a READ with the next part of the request body.
func (p *Pool) serveRead(m *member, c *Call, n int) error {
	b := c.req.Body
	if b == nil {
		return fmt.Errorf("%w: READ for a request with an inline body", errProtocol)
	}
	buf := make([]byte, proto.HeaderSize+n)
	got, err := b.ReadAt(buf[proto.HeaderSize:], c.readOff)
	if err != nil && !errors.Is(err, io.EOF) {
		p.log.Error("reading buffered request body failed", "method", c.req.Method, "path", c.req.Path, "error", err)
		got = 0 // the app sees a short body; the request is failed when it answers
	}
	c.readOff += int64(got)
	proto.PutHeader(buf, proto.Header{Type: proto.Data, ID: c.id, Length: uint32(got)})
	m.send(buf[:proto.HeaderSize+got], false)
	return nil
}

// returned re-dispatches the requests a worker gave back after STEAL.
func (p *Pool) returned(m *member, ids []uint32) {
	now := time.Now()
	p.mu.Lock()
	m.stealing = false
	var back []*Call
	for _, id := range ids {
		c := m.lookup(id)
		if c == nil || c.m != m {
			continue
		}
		m.byIDDel(id)
		for i, x := range m.inflight {
			if x == c {
				m.inflight = append(m.inflight[:i], m.inflight[i+1:]...)
				break
			}
		}
		p.inflight--
		back = append(back, c)
	}
	if len(back) > 0 {
		p.log.Debug("requests taken back from a slow worker", "worker", m.id, "count", len(back))
	}
	ps := p.requeue(back, now)
	p.mu.Unlock()
	p.flush(ps)
}

// timedOut fails a request that ran past its deadline and replaces its
// worker: the stacks are dumped for the log, requests waiting behind it
// are taken back, and the worker is stopped.
func (p *Pool) timedOut(c *Call) {
	p.mu.Lock()
	if c.state != callSent || c.m == nil {
		p.mu.Unlock()
		return
	}
	m := c.m
	elapsed := time.Since(c.since)
	p.mu.Unlock()
	p.log.Error("request timed out; replacing its worker", "worker", m.id, "pid", m.w.Pid,
		"method", c.req.Method, "path", c.req.Path, "elapsed", elapsed.Round(time.Millisecond))
	c.fail(ErrTimeout)
	p.kill(m, "timeout")
}

// kill takes m out of dispatch and ends its process: stack dump, STEAL,
// SIGTERM, and SIGKILL after the grace. Its death is handled by its
// supervisor as usual.
func (p *Pool) kill(m *member, reason string) {
	p.mu.Lock()
	changed := m.transition(StateStopping)
	p.mu.Unlock()
	if !changed {
		return
	}
	m.w.DumpStacks()
	_ = m.w.Steal()
	go func() {
		time.Sleep(100 * time.Millisecond) // let faulthandler write before TERM changes the stacks
		m.w.Signal(syscall.SIGTERM)
		select {
		case <-m.w.Exited():
		case <-time.After(p.cfg.KillGrace):
			p.log.Warn("worker did not exit after SIGTERM; killing it", "worker", m.id, "pid", m.w.Pid, "reason", reason)
			m.w.Kill()
		}
	}()
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
	m.transition(StateExited)
	if p.members[m.id-1] == m {
		p.members[m.id-1] = nil
	}
	var lost, back []*Call
	for i, c := range m.inflight {
		m.byIDDel(c.id)
		p.inflight--
		if i < p.slots {
			c.state = callDone
			lost = append(lost, c)
		} else {
			back = append(back, c)
		}
	}
	m.inflight = nil
	ps := p.requeue(back, now)
	p.drained()
	stopping := p.halted
	p.mu.Unlock()
	for _, c := range lost {
		c.fail(ErrWorkerDied)
	}
	p.flush(ps)
	level := "worker exited"
	if !stopping {
		level = "worker died; replacing it"
	}
	p.log.Info(level, "worker", m.id, "pid", m.w.Pid, "status", exitStatus(m.w.ExitErr()),
		"served", m.served, "lost", len(lost), "redispatched", len(back))
}

func exitStatus(err error) string {
	if err == nil {
		return "exit 0"
	}
	var ee interface{ Sys() any }
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				return "killed by " + ws.Signal().String()
			}
			return fmt.Sprintf("exit %d", ws.ExitStatus())
		}
	}
	return err.Error()
}

func (p *Pool) workerLog(m *member, c *Call, payload []byte) {
	var l struct {
		Level   string `json:"level"`
		Message string `json:"message"`
	}
	if json.Unmarshal(payload, &l) != nil {
		return
	}
	args := []any{"worker", m.id}
	if c != nil {
		args = append(args, "method", c.req.Method, "path", c.req.Path)
	}
	switch l.Level {
	case "error", "critical":
		p.log.Error(l.Message, args...)
	case "warning":
		p.log.Warn(l.Message, args...)
	default:
		p.log.Info(l.Message, args...)
	}
}

// Stop ends every worker: each gets EOF and grace to finish what it has
// started, then SIGTERM, then SIGKILL. Call Drain first for a graceful
// stop. Stop returns when every worker process is gone.
func (p *Pool) Stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping, p.halted = true, true
	p.failQueued(ErrShuttingDown)
	var ms []*member
	for _, m := range p.members {
		if m != nil {
			m.transition(StateStopping)
			ms = append(ms, m)
		}
	}
	p.mu.Unlock()
	p.stopFunc()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.w.Stop(grace, p.cfg.KillGrace)
		}()
	}
	wg.Wait()
	p.wg.Wait()
}

// WorkerStatus is one worker's line in the pool's status.
type WorkerStatus struct {
	ID       int            `json:"id"`
	Pid      int            `json:"pid"`
	State    string         `json:"state"`
	InFlight int            `json:"in_flight"` // running and pipelined requests
	Served   int64          `json:"served"`
	RSS      int64          `json:"rss_bytes"`
	AgeSec   float64        `json:"age_seconds"`
	Current  *RequestStatus `json:"current,omitempty"` // the oldest running request
}

// RequestStatus describes a running request.
type RequestStatus struct {
	Method    string  `json:"method"`
	Path      string  `json:"path"`
	ElapsedMS float64 `json:"elapsed_ms"`
}

// Status reports the workers and the number of queued requests.
func (p *Pool) Status() (workers []WorkerStatus, queued int) {
	now := time.Now()
	var ws []*worker.Worker
	p.mu.Lock()
	for _, m := range p.members {
		if m == nil {
			continue
		}
		st := WorkerStatus{
			ID: m.id, Pid: m.w.Pid, State: m.state.String(), InFlight: len(m.inflight),
			Served: m.served, AgeSec: now.Sub(m.started).Seconds(),
		}
		if len(m.inflight) > 0 && !m.inflight[0].since.IsZero() {
			c := m.inflight[0]
			st.Current = &RequestStatus{Method: c.req.Method, Path: c.req.Path,
				ElapsedMS: float64(now.Sub(c.since).Microseconds()) / 1000}
		}
		workers = append(workers, st)
		ws = append(ws, m.w)
	}
	queued = p.queue.n
	p.mu.Unlock()
	for i, w := range ws { // /proc reads stay outside the lock
		workers[i].RSS, _ = w.RSS()
	}
	return workers, queued
}

// Ready reports whether the pool takes requests: not stopping, and at least
// one worker ready.
func (p *Pool) Ready() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.stopping:
		return false, "shutting down"
	case p.readyCount() == 0:
		return false, "no worker is ready"
	}
	return true, ""
}
