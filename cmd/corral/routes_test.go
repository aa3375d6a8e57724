package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestPrintRoutes(t *testing.T) {
	raw := json.RawMessage(`{"framework": "flask",
		"routes": [
			{"rule": "/", "regex": "^/$", "methods": ["GET", "HEAD"], "endpoint": "index"},
			{"rule": "/static/<path:filename>", "regex": "^/static/.+$", "methods": ["GET"], "endpoint": "static", "static": true},
			{"rule": "/<path with //>", "regex": "^(?s:.*//.*)$", "methods": [], "endpoint": "(merge_slashes redirect)"}
		],
		"prefixes": ["/legacy/"],
		"warnings": ["host and subdomain matching ignored"]}`)
	var b strings.Builder
	if err := printRoutes(&b, "app:app", raw); err != nil {
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

func TestPrintRoutesPlainApp(t *testing.T) {
	for _, raw := range []string{"null", "", " null\n"} {
		var b strings.Builder
		if err := printRoutes(&b, "hello:app", json.RawMessage(raw)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "learn its routes from traffic") {
			t.Errorf("routes %q: output %q", raw, b.String())
		}
	}
	var b strings.Builder
	if err := printRoutes(&b, "x:app", json.RawMessage(`{"routes": 3}`)); err == nil {
		t.Errorf("malformed routes: no error; output %q", b.String())
	}
}

func TestCutFlag(t *testing.T) {
	tests := []struct {
		in    []string
		want  []string
		found bool
	}{
		{[]string{"--json", "app:app"}, []string{"app:app"}, true},
		{[]string{"-w", "2", "app:app", "--json"}, []string{"-w", "2", "app:app"}, true},
		{[]string{"app:app"}, []string{"app:app"}, false},
		{[]string{"--", "--json"}, []string{"--", "--json"}, false},
	}
	for _, tt := range tests {
		got, found := cutFlag(tt.in, "--json")
		if !reflect.DeepEqual(got, tt.want) || found != tt.found {
			t.Errorf("cutFlag(%q) = %q, %v; want %q, %v", tt.in, got, found, tt.want, tt.found)
		}
	}
}
