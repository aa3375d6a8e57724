package pool

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestChaosEveryCallEnds: closed-loop clients, as wrk runs them, while some
// requests crash their worker and some hang past their timeout, with stuck
// workers set aside. Every call must end with its own answer: the fast
// ones 200 from a live worker, the crashing ones ErrWorkerDied, the hung
// ones ErrTimeout; none may wait for ever or start twice.
func TestChaosEveryCallEnds(t *testing.T) {
	h := start(t, Config{Workers: 2, Budget: time.Second, KillGrace: 200 * time.Millisecond,
		StuckAfter: 20 * time.Millisecond, MaxStuck: 8})
	const clients, each = 8, 40
	var mu sync.Mutex
	var problems []string
	var fastToks []string
	var wg sync.WaitGroup
	for cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(cl), 7))
			for i := range each {
				tok := fmt.Sprintf("c%d-%d", cl, i)
				var r *Request
				var want error
				switch n := rng.IntN(100); {
				case n < 4:
					r, want = req("/crash", "", tok), ErrWorkerDied
				case n < 8:
					r, want = req("/hang", "", tok), ErrTimeout
					r.Timeout = 150 * time.Millisecond
				default:
					r = req("/fast", "", tok)
				}
				c, err := h.p.Submit(r)
				if err != nil {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%s: Submit: %v", tok, err))
					mu.Unlock()
					continue
				}
				status, body, err := result(c)
				c.Release()
				var problem string
				switch {
				case want != nil && !errors.Is(err, want):
					problem = fmt.Sprintf("%s %s: err %v, want %v", tok, r.Path, err, want)
				case want == nil && (err != nil || status != 200 || !strings.HasPrefix(body, "ok "+tok+" ")):
					problem = fmt.Sprintf("%s: %d %q %v, want 200 ok", tok, status, body, err)
				}
				mu.Lock()
				if problem != "" {
					problems = append(problems, problem)
				}
				if want == nil {
					fastToks = append(fastToks, tok)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	h.startedOnce(fastToks...)
	if ws, _ := h.p.Status(); len(ws) == 0 {
		t.Error("no worker left after the chaos")
	}
	// The pool still serves.
	h.wantOK(h.submit(req("/fast", "", "after")), "after")
}
