// Package watch tells corral when the app's source files change, for
// `corral --reload` in development.
package watch

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce groups the bursts of events one save produces (editors write,
// rename and chmod) into one reload.
const debounce = 300 * time.Millisecond

// Config says what to watch.
type Config struct {
	// Files returns the files to watch now; it is asked again after every
	// change, since a reloaded app may import new modules.
	Files func() []string
	// Globs are extra patterns, relative to Dir, matched against changed
	// files in the watched directories and expanded to find more of them.
	Globs []string
	Dir   string
	// OnChange is called (from Run's goroutine) once per burst of changes.
	OnChange func(changed string)
	Logger   *slog.Logger
}

// Run watches until ctx ends. It watches the directories of the files
// (editors replace files by renaming, which a watch on the file itself
// would lose) and reacts to events on the files or on paths matching a glob.
func Run(ctx context.Context, cfg Config) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Close()
	watched := map[string]bool{} // files
	dirs := map[string]bool{}
	refresh := func() {
		watched = map[string]bool{}
		for _, f := range cfg.Files() {
			watched[filepath.Clean(f)] = true
		}
		for _, g := range cfg.Globs {
			matches, _ := filepath.Glob(filepath.Join(cfg.Dir, g))
			for _, m := range matches {
				watched[filepath.Clean(m)] = true
			}
		}
		for f := range watched {
			d := filepath.Dir(f)
			if !dirs[d] {
				if err := w.Add(d); err == nil {
					dirs[d] = true
				}
			}
		}
	}
	refresh()
	cfg.Logger.Info("watching the app's files for changes", "files", len(watched), "directories", len(dirs))
	var timer *time.Timer
	var fire <-chan time.Time
	changed := ""
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod || !interesting(ev.Name, watched, cfg) {
				continue
			}
			changed = ev.Name
			if timer == nil {
				timer = time.NewTimer(debounce)
			} else {
				timer.Reset(debounce)
			}
			fire = timer.C
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			cfg.Logger.Warn("file watch error", "error", err)
		case <-fire:
			fire = nil
			cfg.OnChange(changed)
			refresh()
		}
	}
}

func interesting(name string, watched map[string]bool, cfg Config) bool {
	name = filepath.Clean(name)
	if watched[name] {
		return true
	}
	for _, g := range cfg.Globs {
		if ok, _ := filepath.Match(filepath.Join(cfg.Dir, g), name); ok {
			return true
		}
	}
	// A new .py file next to watched ones may be imported after the reload.
	if filepath.Ext(name) == ".py" {
		if _, err := os.Stat(name); err == nil {
			for f := range watched {
				if filepath.Dir(f) == filepath.Dir(name) {
					return true
				}
			}
		}
	}
	return false
}
