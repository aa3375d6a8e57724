// Package heap owns the master's Go heap policy: collect rarely while the
// heap is small, and never let it grow far past what is live when it is
// not.
//
// The master's live heap is a few MiB under ordinary load, and a
// collection then costs about as much as it would for a heap ten times
// that size (it scans every goroutine's stack): at Go's default pacing
// (GOGC=100) collections took 6% of the master's CPU on hello, at
// GOGC=400 under 1%. But a GOGC of 400 lets the heap grow to five times
// what is live, and under a 2,000-connection overload (about 60 MiB live,
// stacks included) that is 220 MiB. A fixed soft limit (GOMEMLIMIT) would
// bound it, but a server holding more live memory than the limit (10,000
// idle connections need about 230 MiB) would then collect without pause.
//
// So the Governor moves the soft limit with what is live: it is the larger
// of a floor and twice the live heap and stacks plus Overhead (the limit
// counts all of the runtime's memory, not only the heap), re-read four
// times a second. Small heaps get GOGC=400's pacing (their goal stays
// under the floor); large ones about GOGC=100's.
package heap

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Defaults for Govern.
const (
	Floor    = 64 << 20 // the soft limit is never set below this
	GCRatio  = 400      // GOGC while the heap is under the floor
	Interval = 250 * time.Millisecond
	// Overhead is what the runtime holds beside the live heap and stacks
	// (heap fragmentation, its own structures, memory not yet returned).
	Overhead = 16 << 20
)

// Governor adjusts the Go runtime's soft memory limit. Create with Govern;
// Close stops it and restores the limit it found.
type Governor struct {
	floor    int64
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	oldLimit int64
	samples  []metrics.Sample
}

// Govern sets GOGC to GCRatio and starts moving the soft memory limit
// (never below floor) every interval. The caller should not call it when
// the user set GOGC or GOMEMLIMIT: theirs is the policy then.
func Govern(floor int64, interval time.Duration) *Governor {
	g := &Governor{
		floor: floor,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		samples: []metrics.Sample{
			{Name: "/gc/heap/live:bytes"},
			{Name: "/gc/scan/stack:bytes"},
		},
	}
	debug.SetGCPercent(GCRatio)
	g.oldLimit = debug.SetMemoryLimit(g.Limit())
	go g.run(interval)
	return g
}

// Limit is the soft limit for what is live now.
func (g *Governor) Limit() int64 {
	metrics.Read(g.samples)
	var live uint64
	for _, s := range g.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			live += s.Value.Uint64()
		}
	}
	if live > math.MaxInt64/4 {
		return math.MaxInt64
	}
	return max(g.floor, 2*int64(live)+Overhead)
}

func (g *Governor) run(interval time.Duration) {
	defer close(g.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			debug.SetMemoryLimit(g.Limit())
		}
	}
}

// Close stops the governor and restores the limit it found. It may be
// called more than once.
func (g *Governor) Close() error {
	g.once.Do(func() {
		close(g.stop)
		<-g.done
		debug.SetMemoryLimit(g.oldLimit)
	})
	return nil
}
