package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"corral/internal/worker"
)

// ErrClosed is returned by Start after Shutdown or Close, and by a
// Shutdown that Close (or another Shutdown's ended context) cut short.
var ErrClosed = errors.New("pool closed")

// phase is where the pool is in its lifecycle. It only moves forward;
// Ready, Submit and the supervisors read it under p.mu.
type phase uint8

const (
	phaseRunning  phase = iota // New and Start: takes requests (once started)
	phaseNotReady              // MarkNotReady: Ready reports false; requests are still admitted
	phaseDraining              // Shutdown: new requests refused; admitted ones go on
	phaseHalted                // the workers are being stopped: nothing runs again
)

// Start spawns the workers and waits until each has either become ready or
// failed. It fails if the app cannot be loaded (a *worker.BootError, with
// the traceback) or if no worker could start at all; then nothing is left
// running. Workers that fail for other reasons are retried in the
// background.
//
// Start may be called once. After Shutdown or Close it fails with
// ErrClosed; so does a Start that Close (or Shutdown) interrupts, which
// then waits for Start to have put away what it started.
func (p *Pool) Start(ctx context.Context) error {
	p.mu.Lock()
	switch {
	case p.phase >= phaseDraining:
		p.mu.Unlock()
		return ErrClosed
	case p.started:
		p.mu.Unlock()
		return errors.New("pool: Start called twice")
	}
	p.started = true
	p.wg.Add(1) // halt waits for Start; under p.mu, so never after halt's Wait began
	p.mu.Unlock()
	defer p.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(p.stopCtx, cancel) // Close aborts the spawns
	defer stop()

	type result struct {
		i   int
		m   *member
		err error
	}
	n := p.cfg.Workers
	results := make(chan result, n)
	for i := range n {
		go func() {
			m, err := p.spawn(ctx, i+1)
			results <- result{i, m, err}
		}()
	}
	var firstErr error
	var bootErr *worker.BootError
	started := make([]*member, n)
	for range n {
		r := <-results
		started[r.i] = r.m
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
		if r.err != nil && bootErr == nil {
			errors.As(r.err, &bootErr)
		}
	}
	ready := 0
	for _, m := range started {
		if m != nil {
			ready++
		}
	}
	if p.stopCtx.Err() != nil { // Close or Shutdown came during the spawns
		for _, m := range started {
			if m != nil {
				m.w.Close()
			}
		}
		return ErrClosed
	}
	iface := ""
	for _, m := range started {
		if m == nil {
			continue
		}
		if iface != "" && m.w.Hello.Interface != iface && bootErr == nil {
			firstErr = fmt.Errorf("workers disagree on the app's interface (%s and %s)", iface, m.w.Hello.Interface)
			ready = 0
		}
		iface = m.w.Hello.Interface
	}
	if bootErr != nil || ready == 0 {
		for _, m := range started {
			if m != nil {
				m.w.Close()
			}
		}
		if bootErr != nil {
			return bootErr
		}
		return firstErr
	}
	p.mu.Lock()
	p.iface = iface
	p.asgi.Store(iface == worker.InterfaceASGI)
	if iface == worker.InterfaceASGI && p.cfg.ReserveASGI != nil {
		p.cfg.Reserve = p.cfg.ReserveASGI
	}
	slots := make([]*slot, n)
	for i := range slots {
		slots[i] = p.newSlotLocked(i + 1)
	}
	p.mu.Unlock()
	// The first workers serve before Start returns; the supervisors take
	// over from there (and start the ones that failed, with backoff).
	var wg sync.WaitGroup
	for i, m := range started {
		if m == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.install(slots[i], m); err != nil {
				started[i] = nil
			}
		}()
	}
	wg.Wait()
	for i, s := range slots {
		p.wg.Add(1)
		go p.supervise(s, started[i])
	}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.housekeep()
	}()
	go func() {
		defer p.wg.Done()
		p.monitor()
	}()
	if iface == worker.InterfaceASGI {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.watchLoops()
		}()
	}
	return nil
}

// ASGI reports whether the workers serve an ASGI app: requests for them
// carry a scope block instead of an environ. It is decided by Start, from
// the first workers' HELLO, and false before.
func (p *Pool) ASGI() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.iface == worker.InterfaceASGI
}

// Reload replaces every worker with one that imports the app afresh, one
// slot at a time: each new worker serves before the old one is retired, so
// capacity never drops. If a new worker cannot load the app, the reload
// stops there and the remaining workers keep the code they run; the error
// (a *worker.BootError with the traceback) is returned.
//
// It fails with ErrClosed once Shutdown or Close has been called; one that
// is under way when the workers are stopped ends early.
func (p *Pool) Reload(ctx context.Context) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	p.mu.Lock()
	if p.phase >= phaseDraining {
		p.mu.Unlock()
		return ErrClosed
	}
	p.wg.Add(1) // halt waits for it: a zygote it starts must not outlive the pool
	p.mu.Unlock()
	defer p.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(p.stopCtx, cancel)
	defer stop()
	if p.cfg.Preload {
		// The new code loads once, in a new zygote: if it fails, nothing
		// was replaced. The old zygote lives on until its last worker has
		// been retired (its workers die with it).
		nz, err := p.startZygote(ctx)
		if err != nil {
			return fmt.Errorf("reload: %w", err)
		}
		p.zmu.Lock()
		old := p.zyg
		p.zyg = nz
		if old != nil {
			p.oldZygotes = append(p.oldZygotes, old)
		}
		p.zmu.Unlock()
		if old != nil {
			defer func() { go p.retireZygote(old) }()
		}
	}
	p.mu.Lock()
	slots := append([]*slot(nil), p.slotList...)
	p.mu.Unlock()
	for i, s := range slots {
		done := make(chan error, 1)
		select {
		case s.replace <- replaceReq{reason: "reload", done: done}:
		case <-s.remove:
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("reload: new worker %d of %d: %w", i+1, len(slots), err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// AddWorker adds a slot with a new worker (SIGTTIN). It does nothing
// before Start or once Shutdown or Close has been called.
func (p *Pool) AddWorker() {
	p.mu.Lock()
	if !p.started || p.phase >= phaseDraining {
		p.mu.Unlock()
		return
	}
	id := 1
	for taken := true; taken; {
		taken = false
		for _, s := range p.slotList {
			if s.id == id {
				taken = true
				id++
				break
			}
		}
	}
	s := p.newSlotLocked(id)
	p.wg.Add(1)
	p.mu.Unlock()
	p.log.Info("adding a worker", "worker", id, "workers", p.Workers())
	go p.supervise(s, nil)
}

// RemoveWorker retires the newest slot's worker, never the last one
// (SIGTTOU). It does nothing once Shutdown or Close has been called.
func (p *Pool) RemoveWorker() {
	p.mu.Lock()
	if len(p.slotList) <= 1 || p.phase >= phaseDraining {
		p.mu.Unlock()
		p.log.Warn("not removing the last worker")
		return
	}
	s := p.slotList[len(p.slotList)-1]
	p.slotList = p.slotList[:len(p.slotList)-1]
	s.removed = true
	close(s.remove)
	n := len(p.slotList)
	p.mu.Unlock()
	p.log.Info("removing a worker", "worker", s.id, "workers", n)
}

// Workers returns the number of worker slots.
func (p *Pool) Workers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.slotList)
}

// MarkNotReady makes Ready report false from now on, while Submit still
// admits requests and they run as before. It exists for the first moment
// of a graceful shutdown behind an HTTP server: readiness probes must see
// the instance leave rotation at once, before the HTTP server has stopped
// reading requests, but Shutdown refuses new requests, so calling it
// before the HTTP server's own Shutdown has returned would refuse requests
// already read from clients. Shutdown and Close imply it. It may be called
// at any time, more than once, and before Start.
func (p *Pool) MarkNotReady() {
	p.mu.Lock()
	p.phase = max(p.phase, phaseNotReady)
	p.mu.Unlock()
}

// Ready reports whether the pool takes requests: not shutting down (nor
// marked not ready), and at least one worker ready. If not, it says why.
func (p *Pool) Ready() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.phase >= phaseNotReady:
		return false, "shutting down"
	case p.readyCountLocked() == 0:
		return false, "no worker is ready"
	}
	return true, ""
}

// Shutdown stops the pool gracefully. At once Ready reports false and
// Submit fails with ErrShuttingDown, while the requests already admitted,
// queued or running, go on. When none is left, or when ctx ends, the
// workers are stopped: each gets EOF, and the time ctx has left to finish
// what it runs, then SIGTERM, and SIGKILL Config.KillGrace later. Requests
// still queued then fail with ErrShuttingDown, running ones with
// ErrWorkerDied.
//
// Shutdown returns once every worker process (and zygote) is gone: nil if
// every admitted request completed, else an error wrapping ctx's error, or
// ErrClosed if Close (or another Shutdown whose ctx ended) stopped the
// workers first. Behind an HTTP server, call MarkNotReady first and
// Shutdown once the server's Shutdown has returned (see MarkNotReady).
//
// Shutdown may be called more than once and concurrently, with Close too;
// the workers' grace ends when any caller's ctx ends, or Close is called.
// Before Start it stops nothing and Start then fails with ErrClosed.
func (p *Pool) Shutdown(ctx context.Context) error {
	err := p.drain(ctx)
	p.halt(ctx)
	return err
}

// Close stops the pool now: queued requests fail with ErrShuttingDown,
// running ones with ErrWorkerDied, and every worker gets EOF and SIGTERM
// at once and SIGKILL Config.KillGrace later (a worker exits on SIGTERM
// when its running requests are done: docs/PROTOCOL.md). Close returns
// once every worker process (and zygote) is gone. It may be called more
// than once, concurrently with Shutdown (which it cuts short) or Start
// (which then fails with ErrClosed), and before Start.
func (p *Pool) Close() {
	p.endGrace()
	p.halt(p.graceCtx)
}

// drain refuses new requests from now on and waits until every admitted
// one, queued or running, has completed, or ctx ends, or the workers are
// being stopped.
func (p *Pool) drain(ctx context.Context) error {
	p.mu.Lock()
	p.phase = max(p.phase, phaseDraining)
	if p.inflight == 0 && p.queue.n == 0 {
		p.mu.Unlock()
		return nil
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutdown: %d requests still running: %w", p.InFlight(), ctx.Err())
	case <-p.stopCtx.Done():
		return fmt.Errorf("shutdown: %d requests still running: %w", p.InFlight(), ErrClosed)
	}
}

// halt stops every worker, spare and zygote, once, and returns when they
// are gone; every caller waits for that. grace is the caller's context:
// when it ends (or Close is called) the workers still running get
// SIGTERM, then SIGKILL after Config.KillGrace.
func (p *Pool) halt(grace context.Context) {
	stop := context.AfterFunc(grace, p.endGrace)
	defer stop()
	p.mu.Lock()
	first := p.phase < phaseHalted
	p.phase = phaseHalted
	if first {
		p.failQueuedLocked(ErrShuttingDown)
	}
	p.mu.Unlock()
	if !first {
		<-p.halted
		return
	}
	defer close(p.halted)
	p.stopFunc()
	p.wg.Wait() // Start, Reload, supervisors and refills return; none starts a worker after this
	p.mu.Lock()
	slots := append([]*slot(nil), p.slotList...)
	p.mu.Unlock()
	for _, sl := range slots {
		p.dropSpare(sl)
	}
	p.mu.Lock()
	ms := append([]*member(nil), p.members...)
	for _, m := range ms {
		p.transitionLocked(m, StateStopping)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() {
			_ = m.w.Shutdown(p.graceCtx)
			<-m.dead
		})
	}
	wg.Wait()
	p.stopZygotes()
}

// shutdownWithin shuts w (a worker or a zygote) down with a grace of d,
// which Close, or the end of a Shutdown's grace, cuts short.
func (p *Pool) shutdownWithin(w interface{ Shutdown(context.Context) error }, d time.Duration) {
	ctx, cancel := context.WithTimeout(p.graceCtx, d)
	defer cancel()
	_ = w.Shutdown(ctx)
}
