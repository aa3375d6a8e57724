package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"corral/internal/admin"
	"corral/internal/guard"
)

const bansUsage = `Usage: corral bans list [--admin-bind ADDRESS] [--json]
       corral bans add ADDRESS [--for DURATION] [--reason TEXT] [--admin-bind ADDRESS]
       corral bans remove ADDRESS [--admin-bind ADDRESS]

Manage the bans of running corral servers through their admin API: the one
at --admin-bind, else every corral of this user in the runtime directory.
ADDRESS is an IP address (an IPv6 address stands for its /64). --for is a
duration like 30m, 12h or 3600 (seconds); 0 bans until removed.
`

// runBans is `corral bans`.
func runBans(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("corral bans", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("admin-bind", "", "admin API address of the server")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	dur := fs.String("for", "24h", "ban duration")
	reason := fs.String("reason", "", "why, for the log and the list")
	help := fs.BoolP("help", "h", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "corral bans: %v\n%s", err, bansUsage)
		return exitConfig
	}
	rest := fs.Args()
	if *help {
		fmt.Fprint(stdout, bansUsage)
		return exitOK
	}
	if len(rest) == 0 {
		fmt.Fprint(stderr, bansUsage)
		return exitConfig
	}
	cmd, rest := rest[0], rest[1:]
	want := map[string]int{"list": 0, "add": 1, "remove": 1}
	n, ok := want[cmd]
	if !ok || len(rest) != n {
		fmt.Fprintf(stderr, "corral bans: unknown command or wrong arguments: %s\n%s", strings.Join(append([]string{cmd}, rest...), " "), bansUsage)
		return exitConfig
	}
	addrs := []string{*addr}
	if *addr == "" {
		dir := admin.RuntimeDir(os.Getenv)
		if addrs = admin.Sockets(dir); len(addrs) == 0 {
			fmt.Fprintf(stderr, "corral bans: no running corral found in %s (use --admin-bind)\n", dir)
			return exitFail
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code := exitOK
	for _, a := range addrs {
		var st int
		var body []byte
		var err error
		switch cmd {
		case "list":
			st, body, err = admin.Get(ctx, a, "/bans")
		case "add":
			d, perr := parseSeconds(*dur)
			if perr != nil {
				fmt.Fprintf(stderr, "corral bans: --for: %v\n", perr)
				return exitConfig
			}
			req, _ := json.Marshal(admin.BanRequest{Addr: rest[0], Seconds: d.Seconds(), Reason: *reason})
			st, body, err = admin.Do(ctx, a, http.MethodPost, "/bans", req)
		case "remove":
			st, body, err = admin.Do(ctx, a, http.MethodDelete, "/bans?addr="+url.QueryEscape(rest[0]), nil)
		}
		if err == nil && st != http.StatusOK {
			var e struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(body, &e)
			err = fmt.Errorf("%s: %s", a, e.Error)
		}
		if err != nil {
			fmt.Fprintf(stderr, "corral bans %s: %v\n", cmd, err)
			code = exitFail
			continue
		}
		switch {
		case *asJSON:
			stdout.Write(body)
		case cmd == "list":
			var doc struct {
				Bans []guard.BanInfo `json:"bans"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				fmt.Fprintf(stderr, "corral bans: %s: %v\n", a, err)
				code = exitFail
				continue
			}
			if len(addrs) > 1 {
				fmt.Fprintf(stdout, "%s:\n", a)
			}
			printBans(stdout, doc.Bans, time.Now())
		case cmd == "add":
			fmt.Fprintf(stdout, "banned %s on %s\n", rest[0], a)
		case cmd == "remove":
			fmt.Fprintf(stdout, "removed the ban of %s on %s\n", rest[0], a)
		}
	}
	return code
}

func printBans(w io.Writer, bans []guard.BanInfo, now time.Time) {
	if len(bans) == 0 {
		fmt.Fprintln(w, "no bans")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tJAIL\tLEFT\tOFFENCES\tBLOCKED\tREASON")
	for _, b := range bans {
		left := "forever"
		if b.Until != nil {
			left = roundDur(b.Until.Sub(now))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", b.Addr, b.Jail, left, b.Offences, b.Blocked+b.Refused, b.Reason)
	}
	tw.Flush()
}

// parseSeconds reads a duration: a number of seconds or a Go duration.
func parseSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration like 30m, 12h or 3600, got %q", s)
	}
	return d, nil
}
