package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"corral/internal/worker"
)

// Start spawns the workers and waits until each has either become ready or
// failed. It fails if the app cannot be loaded (a *worker.BootError, with
// the traceback) or if no worker could start at all; then nothing is left
// running. Workers that fail for other reasons are retried in the
// background.
func (p *Pool) Start(ctx context.Context) error {
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
	return nil
}

// Reload replaces every worker with one that imports the app afresh, one
// slot at a time: each new worker serves before the old one is retired, so
// capacity never drops. If a new worker cannot load the app, the reload
// stops there and the remaining workers keep the code they run; the error
// (a *worker.BootError with the traceback) is returned.
func (p *Pool) Reload(ctx context.Context) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
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

// AddWorker adds a slot with a new worker (SIGTTIN).
func (p *Pool) AddWorker() {
	p.mu.Lock()
	if p.stopping {
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

// RemoveWorker retires the newest slot's worker, never the last one (SIGTTOU).
func (p *Pool) RemoveWorker() {
	p.mu.Lock()
	if len(p.slotList) <= 1 || p.stopping {
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

// Stop ends every worker: each gets EOF and grace to finish what it has
// started, then SIGTERM, then SIGKILL. Call Drain first for a graceful
// stop. Stop returns when every worker process is gone.
func (p *Pool) Stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping, p.halted = true, true
	p.failQueuedLocked(ErrShuttingDown)
	p.mu.Unlock()
	p.stopFunc()
	p.wg.Wait() // supervisors return; none starts a worker after this
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			_ = m.w.Shutdown(ctx)
			cancel()
			<-m.dead
		}()
	}
	wg.Wait()
	p.stopZygotes()
}
