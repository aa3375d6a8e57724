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
// trip, and returns each bucket's fill after them (negative for a take
// whose call failed alone). Its timeout is the call timeout or
// takeTimeout, whichever is longer.
func (s *Store) Take(ctx context.Context, takes []guard.Take) ([]time.Duration, error) {
	var cmds []*redis.Cmd
	err := s.callWithin(ctx, max(s.cfg.Timeout, takeTimeout), func(ctx context.Context) error {
		return s.pipeline(ctx, func(p redis.Pipeliner) []*redis.Cmd {
			cmds = make([]*redis.Cmd, len(takes))
			for i, t := range takes {
				cmds[i] = takeScript.EvalSha(ctx, p, []string{s.keys.rate(t.Limit, t.Addr)}, t.N, interval(t.Rate))
			}
			return cmds
		})
	})
	if err != nil {
		return nil, err
	}
	out := make([]time.Duration, len(takes))
	for i, c := range cmds {
		us, err := c.Int64()
		if err != nil {
			out[i] = -1
			continue
		}
		out[i] = time.Duration(us) * time.Microsecond
	}
	return out, nil
}

// interval is a limit's emission interval: µs per request, at least 1.
func interval(rate float64) int64 {
	if rate <= 0 {
		return math.MaxInt32
	}
	return max(1, int64(math.Round(1e6/rate)))
}
