package watch

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestChangeDropsBytecode: a change to a watched .py file removes its
// cached bytecode before OnChange, so the reloaded workers compile the
// new source even when the edit kept the size within the second of the
// last import (which Python's .pyc check cannot tell from no change).
// Other modules' bytecode stays.
func TestChangeDropsBytecode(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app[1].py") // a name with glob characters
	other := filepath.Join(dir, "other.py")
	cache := filepath.Join(dir, "__pycache__")
	for _, f := range []string{app, other} {
		if err := os.WriteFile(f, []byte("V = 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	pycs := map[string]string{
		"app[1].cpython-311.pyc":       "drop",
		"app[1].cpython-312.opt-1.pyc": "drop",
		"other.cpython-311.pyc":        "keep",
		"app.cpython-311.pyc":          "keep",
	}
	for name := range pycs {
		if err := os.WriteFile(filepath.Join(cache, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan string, 1)
	ready := make(chan struct{})
	go func() {
		_ = Run(ctx, Config{
			Files: func() []string {
				select {
				case <-ready:
				default:
					close(ready)
				}
				return []string{app, other}
			},
			Dir:      dir,
			OnChange: func(f string) { changed <- f },
			Logger:   slog.New(slog.DiscardHandler),
		})
	}()
	<-ready
	time.Sleep(100 * time.Millisecond) // the watch is added right after Files
	if err := os.WriteFile(app, []byte("V = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-changed:
		if f != app {
			t.Errorf("OnChange(%q), want %q", f, app)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OnChange after an edit")
	}
	for name, want := range pycs {
		_, err := os.Stat(filepath.Join(cache, name))
		if gone := err != nil; gone != (want == "drop") {
			t.Errorf("%s: gone %v, want %s", name, gone, want)
		}
	}
}
