package main

import (
	"bytes"
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
	if code := runJournal([]string{"busiest"}, nil, &out, &errs); code != exitConfig || !strings.Contains(errs.String(), "Usage: corral journal") {
		t.Errorf("unknown report: exit %d, %q", code, errs.String())
	}
	errs.Reset()
	if code := runJournal([]string{"top"}, nil, &out, &errs); code != exitConfig || !strings.Contains(errs.String(), "--journal") {
		t.Errorf("no journal given: exit %d, %q", code, errs.String())
	}
	errs.Reset()
	if code := runJournal([]string{"top", "--since", "soon"}, []string{"CORRAL_JOURNAL=/nonexistent.db"}, &out, &errs); code != exitConfig {
		t.Errorf("bad --since: exit %d, %q", code, errs.String())
	}
}
