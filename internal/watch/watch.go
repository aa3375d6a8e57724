// Package watch tells corral when the app's source files change, for
// `corral --reload` in development.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
	sources := map[string]bool{} // .py files changed in this burst
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
			if filepath.Ext(ev.Name) == ".py" {
				sources[filepath.Clean(ev.Name)] = true
			}
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
			for f := range sources {
				dropBytecode(f, cfg.Logger)
			}
			clear(sources)
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

// dropBytecode removes the cached bytecode of the Python source file src
// (__pycache__/NAME.*.pyc beside it). Python trusts a .pyc whose recorded
// source mtime, in whole seconds, and size match the file: an edit that
// keeps the size, saved within the second of the import that wrote the
// .pyc, would otherwise reload the old code. The workers recompile it.
func dropBytecode(src string, log *slog.Logger) {
	stem := strings.TrimSuffix(filepath.Base(src), ".py")
	pattern := filepath.Join(filepath.Dir(src), "__pycache__", globEscape(stem)+".*.pyc")
	matches, _ := filepath.Glob(pattern)
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("could not remove the cached bytecode of a changed file", "file", m, "error", err)
		}
	}
}

// globEscape escapes the characters filepath.Match treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
