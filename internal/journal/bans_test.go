package journal

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestBansRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "bans.db")
	now := time.UnixMilli(time.Now().UnixMilli())
	st, err := OpenBans(path, now.Add(-48*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := Ban{Addr: "192.0.2.1", Since: now, Until: now.Add(time.Hour), Jail: "probe", Reason: "10 probes", Offences: 2, Status: 403}
	forever := Ban{Addr: "2001:db8::/64", Since: now, Jail: "manual", Reason: "test", Offences: 1, Status: 403}
	old := Ban{Addr: "192.0.2.3", Since: now.Add(-72 * time.Hour), Until: now.Add(-71 * time.Hour), Jail: "auth", Offences: 1, Status: 403}
	st.Put(kept)
	st.Put(forever)
	st.Put(old)
	st.Put(Ban{Addr: "192.0.2.2", Since: now, Until: now.Add(time.Hour), Jail: "ratelimit", Status: 429})
	st.Delete("192.0.2.2")
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("Load = %+v, want 3 bans", got)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// Reopened, the store forgets the bans that ended before forgetBefore.
	st, err = OpenBans(path, now.Add(-48*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err = st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byAddr := map[string]Ban{}
	for _, b := range got {
		byAddr[b.Addr] = b
	}
	if len(got) != 2 || !byAddr[kept.Addr].Since.Equal(kept.Since) || !byAddr[kept.Addr].Until.Equal(kept.Until) ||
		byAddr[kept.Addr].Offences != 2 || byAddr[kept.Addr].Reason != kept.Reason || !byAddr[forever.Addr].Until.IsZero() {
		t.Errorf("after reopening: %+v", got)
	}
}
