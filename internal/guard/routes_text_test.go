package guard

import (
	"strings"
	"testing"
)

func TestWriteRoutes(t *testing.T) {
	raw := []byte(`{"framework": "flask",
		"routes": [
			{"rule": "/", "regex": "^/$", "methods": ["GET", "HEAD"], "endpoint": "index"},
			{"rule": "/static/<path:filename>", "regex": "^/static/.+$", "methods": ["GET"], "endpoint": "static", "static": true},
			{"rule": "/<path with //>", "regex": "^(?s:.*//.*)$", "methods": [], "endpoint": "(merge_slashes redirect)"}
		],
		"prefixes": ["/legacy/"],
		"warnings": ["host and subdomain matching ignored"]}`)
	var b strings.Builder
	if err := WriteRoutes(&b, "app:app", raw); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"app:app: flask app, 3 routes, 1 prefix\n",
		"METHODS   RULE                     ENDPOINT                  REGEX\n",
		"GET,HEAD  /                        index                     ^/$\n",
		"GET       /static/<path:filename>  static [static]           ^/static/.+$\n",
		"*         /<path with //>          (merge_slashes redirect)  ^(?s:.*//.*)$\n",
		"\nPrefixes (every path under them counts as a route):\n  /legacy/\n",
		"\nWarnings:\n  host and subdomain matching ignored\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestWriteRoutesPlainApp(t *testing.T) {
	for _, raw := range []string{"null", "", " null\n"} {
		var b strings.Builder
		if err := WriteRoutes(&b, "hello:app", []byte(raw)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "learn its routes from traffic") {
			t.Errorf("routes %q: output %q", raw, b.String())
		}
	}
	var b strings.Builder
	if err := WriteRoutes(&b, "x:app", []byte(`{"routes": 3}`)); err == nil {
		t.Errorf("malformed routes: no error; output %q", b.String())
	}
}
