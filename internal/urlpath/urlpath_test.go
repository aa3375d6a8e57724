package urlpath

import "testing"

func TestBelow(t *testing.T) {
	for _, c := range []struct {
		path, prefix, rest string
		ok                 bool
	}{
		{"/app/x", "/app", "/x", true},
		{"/app", "/app", "", true},
		{"/app/", "/app", "/", true},
		{"/apple", "/app", "", false},
		{"/other", "/app", "", false},
	} {
		if rest, ok := Below(c.path, c.prefix); rest != c.rest || ok != c.ok {
			t.Errorf("Below(%q, %q) = %q, %v; want %q, %v", c.path, c.prefix, rest, ok, c.rest, c.ok)
		}
	}
}
