// Package logformat parses gunicorn's access log format strings
// (--access-logformat): Python %-formatting with a mapping, such as
// `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`. It turns a
// format into parts once, at start; package front renders them per
// request without parsing anything.
package logformat

import (
	"fmt"
	"strings"
)

// Atom is what a %(key)s stands for.
type Atom int

// The atoms gunicorn knows (gunicorn/glogging.py, Logger.atoms).
const (
	Literal        Atom = iota // text between the atoms (Part.Text)
	RemoteAddr                 // h: REMOTE_ADDR
	Ident                      // l: always "-"
	User                       // u: the user of HTTP Basic authentication, "-" if none
	Time                       // t: [10/Oct/2000:13:55:36 -0700], brackets included
	RequestLine                // r: method, raw URI and protocol
	Status                     // s
	Method                     // m
	URLPath                    // U: PATH_INFO
	Query                      // q: QUERY_STRING
	Protocol                   // H: SERVER_PROTOCOL
	BytesDash                  // b: body bytes sent ("0" when none, as gunicorn)
	Bytes                      // B: body bytes sent
	Referer                    // f: "-" if none
	UserAgent                  // a: "-" if none
	Seconds                    // T: whole seconds
	Micros                     // D: microseconds
	Millis                     // M: milliseconds
	SecondsFrac                // L: seconds with 6 decimals
	PID                        // p: <pid> of the worker that ran the request
	RequestHeader              // {name}i; Part.Key is the lower-case name
	ResponseHeader             // {name}o; Part.Key is the lower-case name
	Environ                    // {name}e; Part.Key is the name as written
	Unknown                    // any other key: "-", as gunicorn
)

var letters = map[string]Atom{
	"h": RemoteAddr, "l": Ident, "u": User, "t": Time, "r": RequestLine, "s": Status,
	"m": Method, "U": URLPath, "q": Query, "H": Protocol, "b": BytesDash, "B": Bytes,
	"f": Referer, "a": UserAgent, "T": Seconds, "D": Micros, "M": Millis, "L": SecondsFrac,
	"p": PID,
}

// Part is a piece of a format: literal text, or an atom.
type Part struct {
	Atom Atom
	Text string // Literal: the text
	Key  string // RequestHeader, ResponseHeader, Environ: the name
}

// Default is gunicorn's default access log format.
const Default = `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`

// Parse turns a format into parts. It accepts what Python's %-formatting
// accepts with a mapping and the conversions gunicorn users write: s (and
// d, i, which print the same here). "%%" is a percent sign. Keys are case
// sensitive, except between braces: %({User-Agent}i)s is
// %({user-agent}i)s. A key gunicorn does not know prints "-" (gunicorn's
// SafeAtoms), so a format written for gunicorn never fails here; one that
// Python itself would refuse (a lone %, a conversion without a key,
// flags or widths) is an error.
func Parse(format string) ([]Part, error) {
	var parts []Part
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, Part{Atom: Literal, Text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			lit.WriteByte(c)
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			lit.WriteByte('%')
			i++
			continue
		}
		if i+1 >= len(format) || format[i+1] != '(' {
			return nil, fmt.Errorf("at byte %d: %% must be followed by (key) or %%", i)
		}
		// Python matches parentheses inside the key.
		depth, j := 1, i+2
		for ; j < len(format) && depth > 0; j++ {
			switch format[j] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		if depth > 0 {
			return nil, fmt.Errorf("at byte %d: unclosed %%(", i)
		}
		key := format[i+2 : j-1]
		if j >= len(format) {
			return nil, fmt.Errorf("at byte %d: %%(%s) has no conversion (like s)", i, key)
		}
		switch conv := format[j]; conv {
		case 's', 'd', 'i':
		default:
			return nil, fmt.Errorf("at byte %d: %%(%s)%c: only the conversions s, d and i are supported", i, key, conv)
		}
		flush()
		parts = append(parts, atom(key))
		i = j
	}
	flush()
	return parts, nil
}

// atom is the part for a key.
func atom(key string) Part {
	if a, ok := letters[key]; ok {
		return Part{Atom: a}
	}
	if len(key) >= 3 && key[0] == '{' && key[len(key)-2] == '}' {
		name := strings.ToLower(key[1 : len(key)-2])
		switch key[len(key)-1] {
		case 'i':
			return Part{Atom: RequestHeader, Key: name}
		case 'o':
			return Part{Atom: ResponseHeader, Key: name}
		case 'e':
			return Part{Atom: Environ, Key: name}
		}
	}
	return Part{Atom: Unknown}
}
