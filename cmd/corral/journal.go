package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"corral/internal/config"
	"corral/internal/journal"
)

const journalUsage = `Usage: corral journal top|slow|errors|clients [--journal PATH] [-c FILE] [--since DURATION] [--limit N]

Answer the usual questions from the request journal. Which journal: the
server's, found as the server finds it: --journal, else CORRAL_JOURNAL,
else the journal key of the config file (-c FILE or CORRAL_CONFIG, else
corral.toml or pyproject.toml's [tool.corral] in this directory).
Reports:
  top      the busiest routes: requests, rate, mean and max time, 5xx
  slow     the slowest requests, with their worker and request ID
  errors   4xx and 5xx answers by status and route, with the last ID
  clients  the clients sending the most requests
--since is how far back to look, like 15m, 1h (the default) or 7d.
`

// runJournal is `corral journal`, run in the directory cwd.
func runJournal(args []string, environ []string, cwd string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("corral journal", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("journal", "", "the journal's SQLite file")
	file := fs.StringP("config", "c", "", "the server's config file")
	since := fs.String("since", "1h", "how far back")
	limit := fs.Int("limit", 20, "lines at most")
	help := fs.BoolP("help", "h", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "corral journal: %v\n%s", err, journalUsage)
		return exitConfig
	}
	if *help {
		fmt.Fprint(stdout, journalUsage)
		return exitOK
	}
	rest := fs.Args()
	if len(rest) != 1 || !slices.Contains(journal.ReportNames, rest[0]) {
		fmt.Fprint(stderr, journalUsage)
		return exitConfig
	}
	back, err := parseSince(*since)
	if err != nil {
		fmt.Fprintf(stderr, "corral journal: --since: %v\n", err)
		return exitConfig
	}
	if *path == "" {
		// The server's settings, as it would read them: the environment,
		// then the config file.
		var cargs []string
		if *file != "" {
			cargs = []string{"--config", *file}
		}
		cfg, err := config.LoadSettings(cargs, environ, cwd)
		if err != nil {
			fmt.Fprintf(stderr, "corral journal: %v\n", err)
			return exitConfig
		}
		if *path = cfg.Journal; *path != "" && !filepath.IsAbs(*path) {
			*path = filepath.Join(cwd, *path)
		}
	}
	if *path == "" {
		fmt.Fprintf(stderr, "corral journal: which journal? Give --journal PATH, set CORRAL_JOURNAL, or set journal in the config file\n")
		return exitConfig
	}
	rep, err := journal.OpenReports(*path)
	if err != nil {
		fmt.Fprintf(stderr, "corral journal: %v\n", err)
		if errors.Is(err, journal.ErrNoJournal) {
			return exitConfig
		}
		return exitFail
	}
	defer rep.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now()
	cols, rows, err := rep.Report(ctx, rest[0], now.Add(-back), now, max(1, *limit))
	if err != nil {
		fmt.Fprintf(stderr, "corral journal: %v\n", err)
		return exitFail
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	if len(rows) == 0 {
		fmt.Fprintf(stderr, "no requests in the last %s\n", *since)
	}
	return exitOK
}

// parseSince reads a --since duration: Go's syntax plus a d suffix for days.
func parseSince(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err != nil || days < 0 || fmt.Sprint(days) != n {
			return 0, fmt.Errorf("want a duration like 15m, 1h or 7d, got %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration like 15m, 1h or 7d, got %q", s)
	}
	return d, nil
}
