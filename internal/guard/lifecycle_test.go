package guard

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// within fails the test if f does not return within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

func TestLifecycleBeforeStart(t *testing.T) {
	tests := []struct {
		name string
		stop func(*Guard) error
	}{
		{"Close", (*Guard).Close},
		{"Shutdown", func(g *Guard) error { return g.Shutdown(context.Background()) }},
	}
	for _, tt := range tests {
		g, err := New(Config{Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		within(t, 2*time.Second, tt.name+" before Start", func() {
			if err := tt.stop(g); err != nil {
				t.Errorf("%s before Start: %v", tt.name, err)
			}
		})
		within(t, 2*time.Second, tt.name+" again", func() {
			if err := tt.stop(g); err != nil {
				t.Errorf("%s again: %v", tt.name, err)
			}
		})
		if err := g.Start(context.Background(), newMemStore()); !errors.Is(err, ErrClosed) {
			t.Errorf("Start after %s = %v, want ErrClosed", tt.name, err)
		}
		// Closed or not, the guard answers from memory.
		if _, err := g.Ban("192.0.2.1", time.Hour, "manual", ""); err != nil || len(g.Bans()) != 1 {
			t.Errorf("Ban after %s: %v, %d bans", tt.name, err, len(g.Bans()))
		}
	}
}

func TestLifecycleAfterStart(t *testing.T) {
	st := newMemStore()
	g, err := New(Config{Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background(), st); err == nil || errors.Is(err, ErrClosed) {
		t.Errorf("second Start = %v, want an error", err)
	}
	within(t, 2*time.Second, "Shutdown, Close, Close, Shutdown", func() {
		if err := g.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("Close after Shutdown: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("Close twice: %v", err)
		}
		if err := g.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown again: %v", err)
		}
	})
	if st.flushes != 2 {
		t.Errorf("store flushed %d times, want once per Shutdown", st.flushes)
	}
	if err := g.Start(context.Background(), st); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
}

// TestCloseCutsStartShort: a Start stuck resolving the lists' host names
// returns when the guard is closed, and Close does not wait for the
// lookup's own timeout.
func TestCloseCutsStartShort(t *testing.T) {
	entered := make(chan struct{})
	g, err := New(Config{Enabled: true, Allow: hosts(t, "slow.test"),
		LookupHost: func(ctx context.Context, _ string) ([]netip.Addr, error) {
			close(entered)
			<-ctx.Done()
			return nil, ctx.Err()
		}})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- g.Start(context.Background(), nil) }()
	<-entered
	within(t, 2*time.Second, "Close during Start", func() { g.Close() })
	select {
	case err := <-started:
		if err != nil {
			t.Errorf("Start: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Start did not return after Close")
	}
}

// blockingStore never finishes a flush before its context ends.
type blockingStore struct{ *memStore }

func (*blockingStore) Flush(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestShutdownGracePeriod(t *testing.T) {
	g, err := New(Config{Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background(), &blockingStore{newMemStore()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	within(t, 2*time.Second, "Shutdown past its deadline", func() {
		if err := g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want the context's deadline", err)
		}
	})
	if err := g.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
}
