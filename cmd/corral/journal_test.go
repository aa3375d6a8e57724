package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1h", time.Hour, true}, {"15m", 15 * time.Minute, true}, {"7d", 7 * 24 * time.Hour, true},
		{"0d", 0, true}, {"-1h", 0, false}, {"d", 0, false}, {"1.5d", 0, false}, {"x", 0, false}, {"+1d", 0, false},
	} {
		got, err := parseSince(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseSince(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestJournalUsage(t *testing.T) {
	var out, errs bytes.Buffer
	if code := runJournal([]string{"busiest"}, nil, t.TempDir(), &out, &errs); code != exitConfig || !strings.Contains(errs.String(), "Usage: corral journal") {
		t.Errorf("unknown report: exit %d, %q", code, errs.String())
	}
	errs.Reset()
	if code := runJournal([]string{"top"}, nil, t.TempDir(), &out, &errs); code != exitConfig || !strings.Contains(errs.String(), "--journal") {
		t.Errorf("no journal given: exit %d, %q", code, errs.String())
	}
	errs.Reset()
	if code := runJournal([]string{"top", "--since", "soon"}, []string{"CORRAL_JOURNAL=/nonexistent.db"}, t.TempDir(), &out, &errs); code != exitConfig {
		t.Errorf("bad --since: exit %d, %q", code, errs.String())
	}
}

// TestJournalFromConfigFile: with no --journal, corral journal finds the
// server's journal as the server does: CORRAL_JOURNAL, else the config
// file's journal key (corral.toml in the directory, or -c FILE), a
// relative path being relative to the directory. A broken config file is
// an error naming it.
func TestJournalFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "corral.toml"), []byte("journal = 'var/requests.db'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	// No app in the file: the journal command does not need one. The
	// journal does not exist yet, which is the error that proves the path.
	code := runJournal([]string{"top"}, nil, dir, &out, &errs)
	if want := filepath.Join(dir, "var", "requests.db"); code != exitConfig || !strings.Contains(errs.String(), want) {
		t.Errorf("corral.toml's journal: exit %d, %q; want an error naming %s", code, errs.String(), want)
	}
	errs.Reset()
	code = runJournal([]string{"top"}, []string{"CORRAL_JOURNAL=/elsewhere/j.db"}, dir, &out, &errs)
	if code != exitConfig || !strings.Contains(errs.String(), "/elsewhere/j.db") {
		t.Errorf("CORRAL_JOURNAL over the file: exit %d, %q", code, errs.String())
	}
	other := filepath.Join(t.TempDir(), "prod.toml")
	if err := os.WriteFile(other, []byte("journal = '/srv/journal.db'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	errs.Reset()
	code = runJournal([]string{"top", "-c", other}, nil, dir, &out, &errs)
	if code != exitConfig || !strings.Contains(errs.String(), "/srv/journal.db") {
		t.Errorf("-c FILE: exit %d, %q", code, errs.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "corral.toml"), []byte("journal = 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	errs.Reset()
	code = runJournal([]string{"top"}, nil, dir, &out, &errs)
	if code != exitConfig || !strings.Contains(errs.String(), `corral.toml: key "journal"`) {
		t.Errorf("a bad journal key: exit %d, %q", code, errs.String())
	}
}
