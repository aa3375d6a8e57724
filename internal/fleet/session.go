package fleet

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// run lives the connection's life until Close: a session while the store
// answers, a wait with backoff after it ends, another session.
func (s *Store) run() {
	defer s.wg.Done()
	b := backoff{min: backoffMin, max: backoffMax, rand: rand.Float64}
	for {
		reached, err := s.session()
		if s.ctx.Err() != nil {
			return
		}
		s.wentDown(err)
		if reached {
			b.reset()
		}
		t := time.NewTimer(b.wait())
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// session connects, subscribes to the ban channel, reconciles, closes the
// circuit and then applies the ban changes published by the other
// instances until the subscription breaks, a failing call opens the
// circuit, or Close. It reports whether the store was reached (the
// circuit closed) and why it ended.
func (s *Store) session() (bool, error) {
	ctx := s.ctx
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	err := s.setup(sctx)
	var ps *redis.PubSub
	if err == nil {
		// Subscribed before the fleet's bans are read, so that no change
		// falls between the two.
		ps = s.rdb.Subscribe(sctx, s.keys.channel)
		_, err = ps.Receive(sctx) // the confirmation, or why not
	}
	cancel()
	if err != nil {
		if ps != nil {
			ps.Close()
		}
		return false, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ps.Close()
		return false, nil
	}
	s.ps = ps
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.ps = nil
		s.mu.Unlock()
		ps.Close()
	}()
	pushed, read, err := s.reconcile(ctx)
	if err != nil {
		return false, err
	}
	s.cameUp(pushed, read)
	for {
		msg, err := ps.ReceiveTimeout(ctx, healthEvery)
		if !s.up.Load() {
			return true, s.lastError() // a failing call opened the circuit
		}
		if err != nil {
			if ctx.Err() != nil {
				return true, nil
			}
			if timeout(err) {
				// Quiet: make sure the store still answers.
				_ = s.call(ctx, func(ctx context.Context) error { return s.rdb.Ping(ctx).Err() })
				continue
			}
			return true, err
		}
		if m, ok := msg.(*redis.Message); ok {
			s.receive(m.Payload)
		}
	}
}

func timeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

func (s *Store) lastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// cameUp closes the circuit, with one log line: pushed ban changes went
// to the store, read came from it.
func (s *Store) cameUp(pushed, read int) {
	s.mu.Lock()
	down := s.downSince
	first := !s.everUp
	s.everUp = true
	s.downSince = time.Time{}
	s.fullOnce = false
	s.failures.Store(0)
	s.up.Store(true)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}: // what was queued during the reconcile
	default:
	}
	switch {
	case first && down.IsZero():
		s.log.Info("guard store connected; bans, jail counts and rate limits are shared", "store", s.url,
			"instance", s.cfg.ID, "fleet_bans", read, "pushed_bans", pushed)
	default:
		s.log.Info("guard store reachable again; sharing resumes", "store", s.url,
			"down_for", time.Since(down).Round(time.Millisecond).String(), "fleet_bans", read, "pushed_bans", pushed)
	}
}

// wentDown opens the circuit after a session ended with err, and logs the
// outage when it begins (not at each failed attempt to reconnect).
func (s *Store) wentDown(err error) {
	s.up.Store(false)
	s.mu.Lock()
	if err != nil {
		s.lastErr = err
	}
	err = s.lastErr
	begins := s.downSince.IsZero()
	if begins {
		s.downSince = time.Now()
		s.outages++
	}
	s.mu.Unlock()
	if begins {
		s.log.Warn("guard store unreachable; the local guard goes on alone until it answers", "store", s.url,
			"error", errString(err))
	}
}

func errString(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}

// backoff is the wait before an attempt to reconnect: it doubles from min
// to max, with ±20% of jitter so that the instances of a fleet do not
// reconnect in step.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
	rand     func() float64 // in [0, 1)
}

func (b *backoff) wait() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return time.Duration(float64(b.cur) * (0.8 + 0.4*b.rand()))
}

func (b *backoff) reset() { b.cur = 0 }
