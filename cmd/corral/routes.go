package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"corral/internal/guard"
	"corral/internal/worker"
)

// routes is `corral routes`: load the app in one worker and print the
// routes it reports, as a table or (asJSON) as the raw object.
func routes(wcfg worker.Config, app string, asJSON bool, out io.Writer) int {
	w, done := spawnOne(wcfg, "routes", app)
	if w == nil {
		return exitFail
	}
	raw := w.Hello.Routes
	done()
	if asJSON {
		var b bytes.Buffer
		if len(bytes.TrimSpace(raw)) == 0 {
			raw = json.RawMessage("null")
		}
		if err := json.Indent(&b, raw, "", "  "); err != nil {
			fmt.Fprintf(out, "%s\n", raw)
			return exitOK
		}
		b.WriteByte('\n')
		_, _ = out.Write(b.Bytes())
		return exitOK
	}
	if err := printRoutes(out, app, raw); err != nil {
		fmt.Fprintf(out, "corral: %s: %v\n", app, err)
		return exitFail
	}
	return exitOK
}

// printRoutes writes the routes object raw of app (HELLO's, read as the
// guard reads it) as a table for people.
func printRoutes(out io.Writer, app string, raw json.RawMessage) error {
	rs, err := guard.ParseRoutes(raw)
	if err != nil {
		return fmt.Errorf("from the worker: %w", err)
	}
	if rs == nil {
		fmt.Fprintf(out, "%s: an app whose routes cannot be read from its code.\n", app)
		fmt.Fprintln(out, "corral will learn its routes from traffic (paths that answer with a status other than 404).")
		return nil
	}
	fmt.Fprintf(out, "%s: %s app, %d %s", app, rs.Framework, len(rs.Routes), plural(len(rs.Routes), "route", "routes"))
	if n := len(rs.Prefixes); n > 0 {
		fmt.Fprintf(out, ", %d %s", n, plural(n, "prefix", "prefixes"))
	}
	fmt.Fprint(out, "\n\n")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METHODS\tRULE\tENDPOINT\tREGEX")
	for _, r := range rs.Routes {
		methods := strings.Join(r.Methods, ",")
		if methods == "" {
			methods = "*"
		}
		endpoint := r.Endpoint
		if r.Static {
			endpoint += " [static]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", methods, r.Rule, endpoint, r.Regex)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rs.Prefixes) > 0 {
		fmt.Fprintln(out, "\nPrefixes (every path under them counts as a route):")
		for _, p := range rs.Prefixes {
			fmt.Fprintf(out, "  %s\n", p)
		}
	}
	if len(rs.Warnings) > 0 {
		fmt.Fprintln(out, "\nWarnings:")
		for _, w := range rs.Warnings {
			fmt.Fprintf(out, "  %s\n", w)
		}
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// cutFlag removes every occurrence of flag (a boolean option) from args
// before a "--" terminator and reports whether it was there.
func cutFlag(args []string, flag string) ([]string, bool) {
	out := make([]string, 0, len(args))
	found := false
	for i, a := range args {
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		if a == flag {
			found = true
			continue
		}
		out = append(out, a)
	}
	return out, found
}
