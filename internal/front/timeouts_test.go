package front

import "testing"

func TestWildcard(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"/reports/*", "/reports/2024/q1", true},
		{"/reports/*", "/reports/", true},
		{"/reports/*", "/reports", false},
		{"/reports", "/reports", true},
		{"/reports", "/reports/x", false},
		{"*.csv", "/export/all.csv", true},
		{"*.csv", "/export/all.csv.gz", false},
		{"/a/*/b/*", "/a/x/y/b/z", true},
		{"/a/*/b", "/a/x/c", false},
		{"*", "", true},
		{"", "", true},
		{"", "/", false},
		{"/x*y*z", "/xaaybbzcc", false},
		{"/x*y*z", "/xaaybbz", true},
	}
	for _, c := range cases {
		if got := wildcard(c.pattern, c.s); got != c.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestTimeoutFor(t *testing.T) {
	h := New(Config{RouteTimeouts: []RouteTimeout{{"/reports/*", 120e9}, {"/reports/*/fast", 1e9}, {"*", 5e9}}})
	if got := h.timeoutFor("/reports/a/fast"); got != 120e9 {
		t.Errorf("first match should win: got %v", got)
	}
	if got := h.timeoutFor("/other"); got != 5e9 {
		t.Errorf("catch-all: got %v", got)
	}
	if got := New(Config{}).timeoutFor("/x"); got != 0 {
		t.Errorf("no patterns: got %v, want 0", got)
	}
}
