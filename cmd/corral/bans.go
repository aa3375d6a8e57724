package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"corral/internal/admin"
	"corral/internal/guard"
)

const bansUsage = `Usage: corral bans list [--admin-bind ADDRESS] [--admin-token TOKEN] [--json]
       corral bans add ADDRESS [--for DURATION] [--reason TEXT] [--admin-bind ADDRESS] [--admin-token TOKEN]
       corral bans remove ADDRESS [--admin-bind ADDRESS] [--admin-token TOKEN]

Manage the bans of running corral servers through their admin API: the one
at --admin-bind, else every corral of this user in the runtime directory.
ADDRESS is an IP address (an IPv6 address stands for its /64). --for is a
duration like 30m, 12h or 3600 (seconds); 0 bans until removed.
--admin-token (default: $CORRAL_ADMIN_TOKEN) is the server's, needed
for an admin API on TCP reached from another host.
`

// runBans is `corral bans`.
func runBans(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("corral bans", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("admin-bind", "", "admin API address of the server")
	token := fs.String("admin-token", os.Getenv("CORRAL_ADMIN_TOKEN"), "the server's --admin-token (default $CORRAL_ADMIN_TOKEN)")
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
	var d time.Duration
	if cmd == "add" {
		var err error
		if d, err = parseSeconds(*dur); err != nil {
			fmt.Fprintf(stderr, "corral bans: --for: %v\n", err)
			return exitConfig
		}
	}
	addrs := adminAddrs("bans", *addr, stderr)
	if len(addrs) == 0 {
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code := exitOK
	for _, a := range addrs {
		c := admin.Client{Addr: a, Token: *token}
		var bans []guard.BanInfo
		var body []byte
		var err error
		switch cmd {
		case "list":
			bans, body, err = c.Bans(ctx)
		case "add":
			body, err = c.Ban(ctx, admin.BanRequest{Addr: rest[0], Seconds: d.Seconds(), Reason: *reason})
		case "remove":
			body, err = c.Unban(ctx, rest[0])
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
			if len(addrs) > 1 {
				fmt.Fprintf(stdout, "%s:\n", a)
			}
			admin.WriteBans(stdout, bans, time.Now())
		case cmd == "add":
			fmt.Fprintf(stdout, "banned %s on %s\n", rest[0], a)
		case cmd == "remove":
			fmt.Fprintf(stdout, "removed the ban of %s on %s\n", rest[0], a)
		}
	}
	return code
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
