package fleet

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"corral/internal/guard"
)

// Count adds the events to their shared jail windows, in one round trip,
// and returns each window's count after it (0 for an event whose call
// failed alone).
func (s *Store) Count(ctx context.Context, events []guard.Event) ([]int, error) {
	var cmds []*redis.Cmd
	err := s.call(ctx, func(ctx context.Context) error {
		return s.pipeline(ctx, func(p redis.Pipeliner) []*redis.Cmd {
			cmds = make([]*redis.Cmd, len(events))
			for i, e := range events {
				member := s.cfg.ID + ":" + strconv.FormatUint(s.seq.Add(1), 36)
				cmds[i] = countScript.EvalSha(ctx, p, []string{s.keys.jail(e.Jail, e.Addr)},
					e.MaxRetry, e.FindTime.Milliseconds(), member)
			}
			return cmds
		})
	})
	if err != nil {
		return nil, err
	}
	out := make([]int, len(events))
	for i, c := range cmds {
		n, _ := c.Int64()
		out[i] = int(n)
	}
	return out, nil
}

// Take records admitted requests in their shared buckets, in one round
// trip, and returns how long each bucket refuses requests now (0 for a
// take whose call failed alone).
func (s *Store) Take(ctx context.Context, takes []guard.Take) ([]time.Duration, error) {
	var cmds []*redis.Cmd
	err := s.call(ctx, func(ctx context.Context) error {
		return s.pipeline(ctx, func(p redis.Pipeliner) []*redis.Cmd {
			cmds = make([]*redis.Cmd, len(takes))
			for i, t := range takes {
				interval, tolerance := gcra(t.Rate, t.Burst)
				cmds[i] = takeScript.EvalSha(ctx, p, []string{s.keys.rate(t.Limit, t.Addr)}, t.N, interval, tolerance)
			}
			return cmds
		})
	})
	if err != nil {
		return nil, err
	}
	out := make([]time.Duration, len(takes))
	for i, c := range cmds {
		us, _ := c.Int64()
		out[i] = time.Duration(us) * time.Microsecond
	}
	return out, nil
}

// gcra returns the emission interval of a limit (µs per request, at least
// 1) and its tolerance ((burst-1) intervals).
func gcra(rate float64, burst int) (interval, tolerance int64) {
	if rate <= 0 {
		return math.MaxInt32, 0
	}
	interval = max(1, int64(math.Round(1e6/rate)))
	return interval, int64(max(burst-1, 0)) * interval
}
