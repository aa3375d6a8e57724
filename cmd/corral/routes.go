package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

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
	if err := guard.WriteRoutes(out, app, raw); err != nil {
		fmt.Fprintf(out, "corral: %s: %v\n", app, err)
		return exitFail
	}
	return exitOK
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
