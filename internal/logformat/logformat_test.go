package logformat

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []Part
	}{
		{`%(h)s "%(r)s" 100%%`, []Part{{Atom: RemoteAddr}, {Atom: Literal, Text: ` "`}, {Atom: RequestLine}, {Atom: Literal, Text: `" 100%`}}},
		{`%(s)d %(D)i`, []Part{{Atom: Status}, {Atom: Literal, Text: " "}, {Atom: Micros}}},
		{`%({X-Request-ID}i)s|%({Content-Type}o)s|%({HTTP_HOST}e)s`, []Part{
			{Atom: RequestHeader, Key: "x-request-id"}, {Atom: Literal, Text: "|"},
			{Atom: ResponseHeader, Key: "content-type"}, {Atom: Literal, Text: "|"},
			{Atom: Environ, Key: "http_host"}}},
		// Unknown keys print "-" in gunicorn (SafeAtoms); letters are case sensitive.
		{`%(x)s%(S)s%({a}z)s%((a))s`, []Part{{Atom: Unknown}, {Atom: Unknown}, {Atom: Unknown}, {Atom: Unknown}}},
		{"", nil},
	} {
		got, err := Parse(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	if got, err := Parse(Default); err != nil || len(got) != 18 {
		t.Errorf("Parse(Default) = %d parts, %v; want 18", len(got), err)
	}
	// What Python's %-formatting refuses is an error at start.
	for _, bad := range []string{`%s`, `%(h)`, `%(h`, `50%`, `%(h)5s`, `%(h)x`, `%(h)-s`, `%(()s`} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}
