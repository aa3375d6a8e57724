package pool

import "time"

// nextWorker is a new worker for slot s: its spare when it has a live one
// forked from the current zygote, else a new one.
func (p *Pool) nextWorker(s *slot) (*member, error) {
	if sp := p.takeSpare(s); sp != nil {
		return sp, nil
	}
	return p.spawn(p.stopCtx, s.id)
}

// takeSpare hands over slot s's spare, if it is alive and was forked from
// the current zygote; a spare that is not is closed, and takeSpare
// returns nil.
func (p *Pool) takeSpare(s *slot) *member {
	p.mu.Lock()
	sp := s.spare
	s.spare = nil
	p.mu.Unlock()
	if sp == nil {
		return nil
	}
	p.zmu.Lock()
	current := p.zyg != nil && p.zyg.Pid() == sp.zygote
	p.zmu.Unlock()
	select {
	case <-sp.w.Exited():
		current = false
	default:
	}
	if !current { // died, or forked from a zygote a reload replaced
		sp.w.Close()
		return nil
	}
	// Its age and --max-lifetime count from now, not from the fork: a
	// spare that waited an hour is not due for recycling on its first
	// request.
	sp.started = time.Now()
	sp.lastActive = sp.started
	return p.starting(sp)
}

// refillSpare forks a spare for slot s in the background (--preload only).
func (p *Pool) refillSpare(s *slot) {
	if !p.cfg.Preload {
		return
	}
	p.mu.Lock()
	if s.spare != nil || s.refilling || s.removed || p.phase >= phaseDraining {
		p.mu.Unlock()
		return
	}
	s.refilling = true
	p.wg.Add(1) // halt waits for it: no fork may outlive the pool
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		m, err := p.spawn(p.stopCtx, s.id)
		p.mu.Lock()
		s.refilling = false
		keep := err == nil && s.spare == nil && !s.removed && p.phase < phaseDraining
		if keep {
			s.spare = m
		}
		p.mu.Unlock()
		if err == nil && !keep {
			m.w.Close()
		}
	}()
}

// dropSpare stops slot s's spare, if it has one.
func (p *Pool) dropSpare(s *slot) {
	p.mu.Lock()
	sp := s.spare
	s.spare = nil
	p.mu.Unlock()
	if sp != nil {
		p.shutdownWithin(sp.w, time.Second)
	}
}
