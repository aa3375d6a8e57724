package admin

import (
	"strings"
	"testing"
	"time"

	"corral/internal/guard"
)

// TestWriteStatusStore: corral status prints the guard's shared store,
// up and down, without its password.
func TestWriteStatusStore(t *testing.T) {
	since := time.Date(2026, 12, 7, 3, 10, 2, 0, time.UTC)
	for _, tc := range []struct {
		store guard.SharedStats
		want  []string
		not   []string
	}{
		{guard.SharedStats{URL: "redis://:xxxxx@10.0.0.20:6379/0", Up: true, Outages: 1, Dropped: 4, Errors: 2},
			[]string{"  guard store redis://:xxxxx@10.0.0.20:6379/0  up  outages 1  pending bans 0  dropped updates 4  errors 2\n"},
			[]string{"DOWN", "last error"}},
		{guard.SharedStats{URL: "rediss://10.0.0.20:6380/0", DownSince: &since, DownSeconds: 12.5, Outages: 2,
			PendingBans: 3, Dropped: 340, Errors: 7, LastError: "dial tcp 10.0.0.20:6380: connect: connection refused"},
			[]string{"  guard store rediss://10.0.0.20:6380/0  DOWN since 2026-12-07T03:10:02Z (12.5s)  outages 2  pending bans 3  dropped updates 340  errors 7\n",
				"    last error: dial tcp 10.0.0.20:6380: connect: connection refused\n"},
			[]string{"0  up  outages"}},
	} {
		st := (&fakeSource{}).Status()
		st.Guard.Store = &tc.store
		var b strings.Builder
		if err := WriteStatus(&b, &st); err != nil {
			t.Fatal(err)
		}
		got := b.String()
		for _, want := range tc.want {
			if !strings.Contains(got, want) {
				t.Errorf("WriteStatus wrote\n%s\nwant it to contain %q", got, want)
			}
		}
		for _, not := range tc.not {
			if strings.Contains(got, not) {
				t.Errorf("WriteStatus wrote\n%s\nwant no %q", got, not)
			}
		}
	}
	// Without a store, no store line.
	st := (&fakeSource{}).Status()
	var b strings.Builder
	_ = WriteStatus(&b, &st)
	if strings.Contains(b.String(), "guard store") {
		t.Errorf("a store line without a store:\n%s", b.String())
	}
}
