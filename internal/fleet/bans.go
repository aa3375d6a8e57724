package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"corral/internal/guard"
)

// Put shares a ban made here: it is queued and pushed soon, or when the
// store returns.
func (s *Store) Put(b guard.Ban) { s.queue(banRecord(b, s.cfg.ID)) }

// Delete shares the lifting of the ban of addr at at.
func (s *Store) Delete(addr string, at time.Time) { s.queue(unbanRecord(addr, at, s.cfg.ID)) }

// queue adds a change to the pending ones (the later of two changes of an
// address replaces the earlier) and wakes the writer. Past maxPending
// addresses, changes are dropped: the bans in force here are pushed
// anyway when the store returns (see reconcile); an unban dropped here is
// not.
func (s *Store) queue(r record) {
	s.mu.Lock()
	if _, ok := s.pending[r.Addr]; !ok && len(s.pending) >= maxPending {
		logIt := !s.fullOnce
		s.fullOnce = true
		s.mu.Unlock()
		s.dropped.Add(1)
		if logIt {
			s.log.Error("too many ban changes waiting for the guard store; dropping changes until it takes them", "pending", maxPending)
		}
		return
	}
	s.pending[r.Addr] = r
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// requeue puts back changes whose push failed, unless a later change of
// the same address was queued meanwhile.
func (s *Store) requeue(rs []record) {
	s.mu.Lock()
	for _, r := range rs {
		if _, ok := s.pending[r.Addr]; !ok {
			s.pending[r.Addr] = r
		}
	}
	s.mu.Unlock()
}

// takePending removes and returns up to n pending changes.
func (s *Store) takePending(n int) []record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]record, 0, min(n, len(s.pending)))
	for addr, r := range s.pending {
		if len(out) == n {
			break
		}
		out = append(out, r)
		delete(s.pending, addr)
	}
	return out
}

// writer pushes the pending changes while the store is up.
func (s *Store) writer() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		}
		if !s.up.Load() {
			continue // the session pushes them when the store returns
		}
		_, err := s.push(s.ctx, s.cfg.Timeout)
		s.count(err)
	}
}

// push pushes every pending change, in pipelines of pushBatch, each
// within each (0: within ctx alone). It returns how many the store took;
// on an error the changes not pushed are queued again.
func (s *Store) push(ctx context.Context, each time.Duration) (int, error) {
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	n := 0
	for {
		batch := s.takePending(pushBatch)
		if len(batch) == 0 {
			return n, nil
		}
		bctx, cancel := ctx, context.CancelFunc(func() {})
		if each > 0 {
			bctx, cancel = context.WithTimeout(ctx, each)
		}
		err := s.pushBatch(bctx, batch)
		cancel()
		if err != nil {
			s.requeue(batch)
			return n, err
		}
		n += len(batch)
	}
}

func (s *Store) pushBatch(ctx context.Context, batch []record) error {
	now := time.Now()
	return s.pipeline(ctx, func(p redis.Pipeliner) []*redis.Cmd {
		cmds := make([]*redis.Cmd, 0, len(batch))
		for _, r := range batch {
			ttl := r.ttl(now)
			if ttl < 0 {
				continue
			}
			ks := make([]string, 0, 1+guard.NumJails)
			ks = append(ks, s.keys.ban(r.Addr))
			for j := range guard.NumJails {
				ks = append(ks, s.keys.jail(guard.JailName(j), r.Addr))
			}
			cmds = append(cmds, putScript.EvalSha(ctx, p, ks, r.encode(), r.TS, ttl.Milliseconds(), s.keys.channel))
		}
		return cmds
	})
}

// pipeline runs the script calls that queue adds in one round trip. When
// the store has lost the scripts (it restarted), it loads them and runs
// the calls again, once. An error of one call alone (a script error) is
// left in its Cmd; an error of the round trip is returned.
func (s *Store) pipeline(ctx context.Context, queue func(p redis.Pipeliner) []*redis.Cmd) error {
	for attempt := 0; ; attempt++ {
		p := s.rdb.Pipeline()
		cmds := queue(p)
		if len(cmds) == 0 {
			return nil
		}
		_, err := p.Exec(ctx)
		if err == nil {
			return nil
		}
		var rerr redis.Error
		if !errors.As(err, &rerr) {
			return err
		}
		if !redis.HasErrorPrefix(err, "NOSCRIPT") || attempt > 0 {
			return nil // per call: the caller reads each Cmd's error
		}
		for _, sc := range allScripts {
			if err := sc.Load(ctx, s.rdb).Err(); err != nil {
				return fmt.Errorf("load script: %w", err)
			}
		}
	}
}

// Push pushes the pending changes now, within the call timeout: the guard
// calls it after a ban it made from a shared count, before the answer
// that earned it goes out. A push by the writer in progress is waited for
// (its changes are in the store when Push returns). Changes not pushed
// stay queued.
func (s *Store) Push(ctx context.Context) error {
	return s.call(ctx, func(ctx context.Context) error {
		_, err := s.push(ctx, 0)
		return err
	})
}

// Banned returns the store's latest ban change of each of addrs (a zero
// Change when it has none), in one round trip within the call timeout:
// the guard asks before it serves a suspect.
func (s *Store) Banned(ctx context.Context, addrs []string) ([]guard.Change, error) {
	var cmds []*redis.StringCmd
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		cmds = make([]*redis.StringCmd, len(addrs))
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, a := range addrs {
				cmds[i] = p.Get(ctx, s.keys.ban(a))
			}
			return nil
		})
		if errors.Is(err, redis.Nil) {
			err = nil // some have none
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]guard.Change, len(addrs))
	for i, c := range cmds {
		var r record
		if v, err := c.Result(); err == nil && json.Unmarshal([]byte(v), &r) == nil && r.Addr != "" {
			out[i] = r.change()
		}
	}
	return out, nil
}

// Flush pushes the pending changes now, within ctx. While the store is
// down it returns at once: the changes stay queued until Close, and the
// bans among them are pushed from the ban store at the next start.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	n := len(s.pending)
	s.mu.Unlock()
	if n == 0 {
		return nil
	}
	if !s.up.Load() {
		return fmt.Errorf("%d ban changes not shared: %w", n, guard.ErrDown)
	}
	if _, err := s.push(ctx, 0); err != nil {
		return fmt.Errorf("share ban changes: %w", err)
	}
	return nil
}

// receive applies a ban change published by another instance.
func (s *Store) receive(payload string) {
	var r record
	if err := json.Unmarshal([]byte(payload), &r); err != nil || r.Addr == "" {
		s.log.Debug("a message on the ban channel that is not a ban change", "error", err)
		return
	}
	if r.Origin == s.cfg.ID {
		return // ours, applied when made
	}
	s.local.Apply(r.change())
}

// reconcile brings this instance and the store together after the store
// was away (or at the first connection): the changes made here meanwhile
// go first, then the fleet's bans are applied here, then the bans in
// force here that the store lacks, or holds older, are pushed. It returns
// how many changes it pushed and how many it read.
func (s *Store) reconcile(ctx context.Context) (pushed, read int, err error) {
	pushed, err = s.push(ctx, setupTimeout)
	if err != nil {
		return pushed, 0, err
	}
	seen := map[string]int64{} // address → the store's latest change
	var cursor uint64
	for {
		cctx, cancel := context.WithTimeout(ctx, setupTimeout)
		keys, next, err := s.rdb.Scan(cctx, cursor, s.keys.banScan, scanCount).Result()
		var vals []any
		if err == nil && len(keys) > 0 {
			vals, err = s.rdb.MGet(cctx, keys...).Result()
		}
		cancel()
		if err != nil {
			return pushed, len(seen), fmt.Errorf("read the fleet's bans: %w", err)
		}
		for _, v := range vals {
			str, ok := v.(string)
			if !ok {
				continue // expired between SCAN and MGET
			}
			var r record
			if json.Unmarshal([]byte(str), &r) != nil || r.Addr == "" {
				continue
			}
			seen[r.Addr] = r.TS
			c := r.change()
			c.Resync = true
			s.local.Apply(c)
		}
		cursor = next
		if cursor == 0 {
			break
		}
	}
	for _, b := range s.local.Bans() {
		if ts, ok := seen[b.Addr]; !ok || b.Since.UnixMilli() > ts {
			s.queue(banRecord(b, s.cfg.ID))
		}
	}
	n, err := s.push(ctx, setupTimeout)
	return pushed + n, len(seen), err
}
