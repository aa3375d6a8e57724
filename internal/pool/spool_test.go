package pool

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func testLimits(t *testing.T, perCall, budget, pauseOver int64) *spoolLimits {
	return &spoolLimits{dir: t.TempDir(), perCall: perCall, budget: budget, pauseOver: pauseOver}
}

// drain reads every part of s until its end.
func drainSpool(t *testing.T, s *spool) ([]byte, error) {
	t.Helper()
	var out []byte
	for {
		p, _, err := s.next(nil)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if p.data != nil {
			out = append(out, p.data...)
			continue
		}
		n := p.n
		if n < 0 {
			st, err := p.file.Stat()
			if err != nil {
				t.Fatal(err)
			}
			n = st.Size() - p.off
		}
		b := make([]byte, n)
		if _, err := p.file.ReadAt(b, p.off); err != nil {
			t.Fatal(err)
		}
		if p.own {
			p.file.Close()
		}
		out = append(out, b...)
	}
}

func write(t *testing.T, s *spool, b []byte) bool {
	t.Helper()
	pause, err := s.write(append([]byte(nil), b...))
	if err != nil {
		t.Fatal(err)
	}
	return pause
}

func TestSpoolMemoryThenFile(t *testing.T) {
	l := testLimits(t, 100, 1000, 0)
	s := newSpool(l)
	write(t, s, bytes.Repeat([]byte("a"), 60))
	write(t, s, bytes.Repeat([]byte("b"), 30))
	if s.tmp != nil || s.mem != 90 || l.inMemory.Load() != 90 {
		t.Fatalf("after 90 bytes: file %v, mem %d, pool %d; want all 90 in memory", s.tmp != nil, s.mem, l.inMemory.Load())
	}
	write(t, s, bytes.Repeat([]byte("c"), 30)) // over perCall: spills, and everything after goes to the file
	write(t, s, []byte("d"))
	if s.tmp == nil {
		t.Fatal("no spill over the per-response limit")
	}
	if s.mem != 90 || l.inMemory.Load() != 90 {
		t.Errorf("mem %d, pool %d after spilling; want 90", s.mem, l.inMemory.Load())
	}
	s.finish(nil)
	got, err := drainSpool(t, s)
	if err != nil {
		t.Fatal(err)
	}
	want := string(bytes.Repeat([]byte("a"), 60)) + string(bytes.Repeat([]byte("b"), 30)) + string(bytes.Repeat([]byte("c"), 30)) + "d"
	if string(got) != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if l.inMemory.Load() != 0 || s.mem != 0 || s.pending != 0 {
		t.Errorf("after reading everything: pool %d, mem %d, pending %d; want 0", l.inMemory.Load(), s.mem, s.pending)
	}
	s.release()
	if s.tmp != nil {
		t.Error("temporary file kept after release")
	}
}

func TestSpoolBudgetAcrossSpools(t *testing.T) {
	l := testLimits(t, 100, 150, 0)
	a, b := newSpool(l), newSpool(l)
	write(t, a, make([]byte, 100))
	write(t, b, make([]byte, 80)) // fits its own limit, not the pool's
	if a.tmp != nil {
		t.Error("the first spool spilled within both limits")
	}
	if b.tmp == nil {
		t.Error("the second spool did not spill over the pool's budget")
	}
	if got := l.inMemory.Load(); got != 100 {
		t.Errorf("pool memory %d, want 100 (a failed reservation must be undone)", got)
	}
	write(t, b, make([]byte, 10))
	if got := l.inMemory.Load(); got != 100 {
		t.Errorf("pool memory %d after more spilled bytes, want 100", got)
	}
	// Unread parts are returned to the budget on release.
	a.release()
	b.release()
	a.release() // idempotent
	if got := l.inMemory.Load(); got != 0 {
		t.Errorf("pool memory %d after release, want 0", got)
	}
	if _, err := a.write([]byte("late")); err != nil || l.inMemory.Load() != 0 {
		t.Errorf("write after release: %v, pool memory %d; want ignored", err, l.inMemory.Load())
	}
	// Once released, a spool's memory can be used by another.
	c := newSpool(l)
	write(t, c, make([]byte, 100))
	if c.tmp != nil {
		t.Error("budget not returned: a new spool spilled")
	}
	c.release()
}

func TestSpoolPauseResume(t *testing.T) {
	l := testLimits(t, 1000, 1000, 100)
	s := newSpool(l)
	defer s.release()
	if write(t, s, make([]byte, 60)) {
		t.Error("pause at 60 pending bytes, threshold 100")
	}
	if !write(t, s, make([]byte, 60)) {
		t.Error("no pause at 120 pending bytes, threshold 100")
	}
	if _, resume, _ := s.next(nil); resume {
		t.Error("resume at 60 pending, want it only at half the threshold (50)")
	}
	if _, resume, _ := s.next(nil); !resume {
		t.Error("no resume when pending fell from 60 to 0")
	}
	if write(t, s, make([]byte, 10)) {
		t.Error("pause at 10 pending")
	}
	if _, resume, _ := s.next(nil); resume {
		t.Error("resume when pending never went over half the threshold")
	}
}

func TestSpoolFileParts(t *testing.T) {
	l := testLimits(t, 1000, 1000, 10)
	s := newSpool(l)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("..hello.."), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, []byte("<"))
	s.addFile(f, 2, 5)
	write(t, s, []byte(">"))
	if s.pending != 2 {
		t.Errorf("pending = %d, want 2: passed files cost no memory and never pause", s.pending)
	}
	s.finish(nil)
	got, err := drainSpool(t, s)
	if err != nil || string(got) != "<hello>" {
		t.Errorf("body = %q, %v; want \"<hello>\"", got, err)
	}
	s.release()

	// A file part left unread is closed by release.
	g, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s2 := newSpool(l)
	s2.addFile(g, 0, -1)
	s2.release()
	if _, err := g.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Stat of a released file part: %v, want os.ErrClosed", err)
	}
	// And one added after release is closed at once.
	h, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s2.addFile(h, 0, -1)
	if _, err := h.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Stat of a file added after release: %v, want os.ErrClosed", err)
	}
}

func TestSpoolEndAndCancel(t *testing.T) {
	l := testLimits(t, 1000, 1000, 0)
	s := newSpool(l)
	defer s.release()
	cancel := make(chan struct{})
	close(cancel)
	if _, _, err := s.next(cancel); !errors.Is(err, errCancelled) {
		t.Errorf("next on an empty spool with cancel closed: %v, want errCancelled", err)
	}
	write(t, s, []byte("x"))
	boom := errors.New("boom")
	s.finish(boom)
	s.finish(nil) // the first end wins
	if p, _, err := s.next(nil); err != nil || string(p.data) != "x" {
		t.Errorf("next = %q, %v; want the part written before the failure", p.data, err)
	}
	if _, _, err := s.next(nil); !errors.Is(err, boom) {
		t.Errorf("next at the end = %v, want the failure", err)
	}

	// A waiting reader wakes when a part arrives.
	s2 := newSpool(l)
	defer s2.release()
	got := make(chan string)
	go func() {
		p, _, _ := s2.next(nil)
		got <- string(p.data)
	}()
	write(t, s2, []byte("woken"))
	if g := <-got; g != "woken" {
		t.Errorf("waiting reader got %q", g)
	}
}
