package conformance

import "testing"

func TestDecode(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"GET / HTTP/1.1\\r\\n\nHost: a\\r\\n\n\\r\\n\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"a\\tb\\0c\\x41\\x4", "a\tb\x00cA\\x4"},
		{"keep \\q and \\", "keep \\q and \\"},
		{"bad \\xZZ", "bad \\xZZ"},
	} {
		if got := string(Decode([]byte(c.in))); got != c.want {
			t.Errorf("Decode(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
