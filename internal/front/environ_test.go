package front

import "testing"

func TestPathInfo(t *testing.T) {
	for _, c := range []struct{ path, prefix, want string }{
		{"/a/b", "", "/a/b"},
		{"/app/a/b", "/app", "/a/b"},
		{"/app", "/app", ""},
		{"/app/", "/app", "/"},
		{"/apple/x", "/app", "/apple/x"}, // not under the prefix: a different segment
		{"/other", "/app", "/other"},
	} {
		if got := pathInfo(c.path, c.prefix); got != c.want {
			t.Errorf("pathInfo(%q, %q) = %q, want %q", c.path, c.prefix, got, c.want)
		}
	}
}
