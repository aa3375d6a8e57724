package guard

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteRoutes writes the routes object raw that app reported in HELLO,
// read as ParseRoutes reads it, for people: a table of the routes, the
// prefixes and the warnings, or what the guard does when the routes are
// unknown. It is `corral routes`.
func WriteRoutes(out io.Writer, app string, raw []byte) error {
	rs, err := ParseRoutes(raw)
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
