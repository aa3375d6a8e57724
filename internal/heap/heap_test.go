package heap

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimitFollowsLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	g := Govern(32<<20, time.Hour) // no ticks: the test calls Limit itself
	defer g.Close()
	if got := debug.SetMemoryLimit(-1); got < 32<<20 {
		t.Fatalf("limit after Govern = %d, want at least the floor", got)
	}
	runtime.GC()
	small := g.Limit()
	if small != 32<<20 {
		t.Fatalf("limit with a small heap = %d, want the floor %d", small, 32<<20)
	}
	keep := make([][]byte, 64)
	for i := range keep {
		keep[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	big := g.Limit()
	if want := int64(2*64<<20 + Overhead); big < want || big > want+16<<20 {
		t.Fatalf("limit with 64 MiB live = %d MiB, want about twice that plus the overhead", big>>20)
	}
	runtime.KeepAlive(keep)
}

func TestCloseRestoresTheLimit(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	before := debug.SetMemoryLimit(-1)
	g := Govern(1<<30, time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Fatalf("limit while governed = %d, want the floor", got)
	}
	g.Close()
	g.Close()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit after Close = %d, want %d", got, before)
	}
}
