// Command fleetops measures how many guard operations one Redis serves:
// it drives the fleet's store (internal/fleet) as several corral
// instances would under load, each sending batches of rate-limit reports
// (Take, one GCRA script each) and jail events (Count) for many distinct
// clients, as fast as the store answers, and reads the CPU time
// redis-server spent meanwhile from /proc.
//
//	fleetops -url redis://127.0.0.1:6379/0 -instances 8 -batch 16 -clients 100000 -d 10s
//
// It prints one line: operations per second, redis-server's CPU use, and
// operations per second of one fully busy Redis core.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"corral/internal/fleet"
	"corral/internal/guard"
)

func main() {
	url := flag.String("url", "redis://127.0.0.1:6379/0", "the store")
	instances := flag.Int("instances", 8, "simulated corral instances (one Store each)")
	batch := flag.Int("batch", 16, "operations per call, as the guard batches them")
	clients := flag.Int("clients", 100000, "distinct client addresses")
	events := flag.Float64("events", 0.05, "share of the operations that are jail events (the rest: rate-limit reports)")
	dur := flag.Duration("d", 10*time.Second, "measured duration")
	flag.Parse()

	ctx := context.Background()
	pid, err := redisPid(ctx, *url)
	if err != nil {
		fail(err)
	}
	var stores []*fleet.Store
	for i := range *instances {
		s, err := fleet.Open(ctx, fleet.Config{URL: *url, Prefix: "fleetops", Timeout: time.Second, ID: "bench-" + strconv.Itoa(i)})
		if err != nil {
			fail(err)
		}
		s.Start(nobody{})
		stores = append(stores, s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, s := range stores {
		for !s.Up() {
			if time.Now().After(deadline) {
				fail(fmt.Errorf("the store did not come up"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	var ops, errs atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	cpu0, err := cpuTime(pid)
	if err != nil {
		fail(err)
	}
	t0 := time.Now()
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 1))
			addr := func() string {
				n := r.IntN(*clients)
				return fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				var takes []guard.Take
				var evs []guard.Event
				for range *batch {
					if r.Float64() < *events {
						evs = append(evs, guard.Event{Jail: "probe", Addr: addr(), MaxRetry: 10, FindTime: 10 * time.Minute})
					} else {
						takes = append(takes, guard.Take{Limit: "client", Addr: addr(), N: 1 + r.IntN(3), Rate: 20})
					}
				}
				if len(takes) > 0 {
					if _, err := s.Take(ctx, takes); err != nil {
						errs.Add(1)
						continue
					}
				}
				if len(evs) > 0 {
					if _, err := s.Count(ctx, evs); err != nil {
						errs.Add(1)
						continue
					}
				}
				ops.Add(int64(len(takes) + len(evs)))
			}
		}()
	}
	time.Sleep(*dur)
	close(stop)
	wg.Wait()
	elapsed := time.Since(t0)
	cpu1, _ := cpuTime(pid)
	for _, s := range stores {
		s.Close()
	}
	rate := float64(ops.Load()) / elapsed.Seconds()
	busy := (cpu1 - cpu0).Seconds() / elapsed.Seconds()
	fmt.Printf("%d instances, batches of %d, %d clients, %.0f%% events: %.0f guard operations/s, redis-server at %.0f%% of a core: %.0f operations/s per busy core; %d failed calls\n",
		*instances, *batch, *clients, 100**events, rate, 100*busy, rate/busy, errs.Load())
}

// nobody is the guard's side of the simulated instances: nothing to push.
type nobody struct{}

func (nobody) Bans() []guard.Ban  { return nil }
func (nobody) Apply(guard.Change) {}

// redisPid asks the server for its process id (it runs on this machine).
func redisPid(ctx context.Context, url string) (int, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return 0, err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("INFO server has no process_id")
}

// cpuTime is the user and system CPU time of process pid so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fleetops:", err)
	os.Exit(1)
}
