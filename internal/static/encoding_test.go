package static

import "testing"

func TestNegotiate(t *testing.T) {
	both := []string{"br", "gzip"}
	gz := []string{"gzip"}
	tests := []struct {
		name      string
		values    []string // Accept-Encoding fields; nil = no field
		available []string
		want      string
	}{
		{"no field", nil, both, ""},
		{"empty field", []string{""}, both, ""},
		{"gzip", []string{"gzip"}, both, "gzip"},
		{"browser", []string{"gzip, deflate, br, zstd"}, both, "br"},
		{"br preferred on a tie", []string{"gzip, br"}, both, "br"},
		{"q decides", []string{"br;q=0.5, gzip;q=0.8"}, both, "gzip"},
		{"q with spaces and case", []string{"BR ; Q=0.9 , gzip ; q=0.1"}, both, "br"},
		{"refused br", []string{"br;q=0, gzip"}, both, "gzip"},
		{"all refused", []string{"br;q=0, gzip;q=0"}, both, ""},
		{"only br offered, gzip asked", []string{"gzip"}, gz[:0], ""},
		{"star", []string{"*"}, both, "br"},
		{"star refuses the rest", []string{"*;q=0, gzip"}, both, "gzip"},
		{"star with lower q", []string{"gzip;q=0.2, *;q=0.5"}, both, "br"},
		{"identity ranked higher", []string{"gzip;q=0.5, identity"}, gz, ""},
		{"identity ranked equal", []string{"gzip, identity"}, gz, "gzip"},
		{"identity refused, gzip ok", []string{"identity;q=0, gzip"}, both, "gzip"},
		{"identity refused, nothing else: send it anyway", []string{"identity;q=0"}, both, ""},
		{"star refused, nothing else", []string{"*;q=0"}, both, ""},
		{"x-gzip alias", []string{"x-gzip"}, gz, "gzip"},
		{"two fields", []string{"identity;q=0.1", "gzip;q=0.5"}, gz, "gzip"},
		{"malformed q skipped", []string{"br;q=2, gzip"}, both, "gzip"},
		{"NaN q skipped", []string{"br;q=NaN, gzip"}, both, "gzip"},
		{"garbage", []string{",,;q=1,  ,"}, both, ""},
		{"other parameters ignored", []string{"gzip;level=9;q=0.7, br;q=0.6"}, both, "gzip"},
	}
	for _, tt := range tests {
		if got := negotiate(tt.values, tt.available); got != tt.want {
			t.Errorf("%s: negotiate(%q, %q) = %q, want %q", tt.name, tt.values, tt.available, got, tt.want)
		}
	}
}
