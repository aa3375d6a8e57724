package config

import (
	"fmt"
	"strings"
)

const usageHead = `Usage: corral [OPTIONS] APP
       corral check [OPTIONS] APP
       corral routes [--json] [OPTIONS] APP
       corral status | corral bans list|add|remove
       corral journal top|slow|errors|clients [--since 1h] [--journal PATH]

Serve a Python WSGI application with a pool of supervised worker processes.

Commands:
  (none)       serve APP
  check APP    import APP in a worker, report any problem and exit
  routes APP   print the routes APP declares (what the route guard checks
               requests against) and exit; --json prints the raw object
  status       show the running servers' workers (corral status --help)
  bans         list, add or remove bans of running servers (corral bans --help)
  journal      the busiest routes, slowest requests, errors or clients, from
               the request journal (corral journal --help)

APP is MODULE:NAME (myproject.wsgi:application), MODULE:FACTORY()
(app:create_app()) or a path to a .py file.

Settings come from, highest precedence first: options, CORRAL_* environment
variables (lists comma-separated), the config file, defaults. The config file
is -c FILE, else corral.toml in the current directory, else the [tool.corral]
table of pyproject.toml there; its keys are the long option names, with - or
_. A DURATION is a number of seconds (30, 0.5) or like 500ms, 2m; a SIZE is a
number of bytes or like 64K, 100M, 1G (binary multiples).
`

// Usage returns the text corral --help prints: synopsis, subcommands, and
// every option by group with its default and environment variable.
func Usage() string {
	return usage(options)
}

func usage(table []option) string {
	var b strings.Builder
	b.WriteString(usageHead)
	for g := group(0); g < groupCount; g++ {
		fmt.Fprintf(&b, "\n%s:\n", g)
		for i := range table {
			o := &table[i]
			if o.group != g {
				continue
			}
			name := o.flagName()
			if !o.positional && o.short == "" {
				name = "    " + name
			}
			if o.arg != "" && !o.positional {
				name += " " + o.arg
			}
			if alt := strings.ReplaceAll(o.name, "_", "-"); alt != o.name {
				name += "  (or --" + alt + ")"
			}
			notes := "Env " + o.envName() + "."
			if d := o.defaultText(); d != "" {
				notes = "Default " + d + ". " + notes
			}
			writeOption(&b, name, o.help, notes)
		}
		if g == groupApp {
			writeOption(&b, "-h, --help", "Print this help and exit.", "")
			writeOption(&b, "-v, --version", "Print the version and exit.", "")
		}
	}
	return b.String()
}

// writeOption writes one option: its name line, then its description
// wrapped to 79 columns and indented, then notes on a line of their own.
func writeOption(b *strings.Builder, name, text, notes string) {
	const indent, width = "        ", 79
	fmt.Fprintf(b, "  %s\n", name)
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
	if notes != "" {
		b.WriteString(indent + notes + "\n")
	}
}

// reference returns the option tables of docs/configuration.md, generated
// from the option table (see TestDocs).
func reference(table []option) string {
	var b strings.Builder
	for g := group(0); g < groupCount; g++ {
		fmt.Fprintf(&b, "\n### %s\n\n", g)
		b.WriteString("| Option | Environment | Config key | Default | Meaning |\n")
		b.WriteString("|---|---|---|---|---|\n")
		for i := range table {
			o := &table[i]
			if o.group != g {
				continue
			}
			flag := "`" + o.flagName() + "`"
			switch {
			case o.positional:
				flag = "`" + o.flagName() + "` (argument)"
			case o.arg != "":
				flag = "`" + o.flagName() + " " + o.arg + "`"
			}
			if alt := strings.ReplaceAll(o.name, "_", "-"); alt != o.name {
				flag += " or `--" + alt + "`"
			}
			key := "`" + strings.ReplaceAll(o.name, "-", "_") + "`"
			if o.noFile {
				key = "—"
			}
			def := o.defaultText()
			switch {
			case def == "":
				def = "—"
			case o.defText == "":
				def = "`" + def + "`"
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n",
				flag, o.envName(), key, def, strings.ReplaceAll(o.help, "|", "\\|"))
		}
	}
	return b.String()
}
