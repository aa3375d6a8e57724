package journal

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func openTest(t *testing.T, cfg RequestsConfig) (*Requests, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "journal.db")
	j, err := OpenRequests(path, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, path
}

func count(t *testing.T, path, where string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM requests " + where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRequestsWriteAndColumns(t *testing.T) {
	j, path := openTest(t, RequestsConfig{FlushInterval: time.Hour})
	now := time.Now()
	j.Add(Request{Time: now, Method: "GET", Path: "/user/ann", Route: "/user/<name>", Status: 200,
		Duration: 1500 * time.Microsecond, BytesIn: 3, BytesOut: 42, Client: "192.0.2.1", Worker: 1234, RequestID: "abc"})
	j.Add(Request{Time: now, Method: "POST", Path: "/x", Status: 503})
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := j.Written(); got != 2 {
		t.Fatalf("Written = %d, want 2", got)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT * FROM requests ORDER BY rowid")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	want := []string{"ts", "method", "path", "route", "status", "duration_ms", "bytes_in", "bytes_out", "client", "worker", "request_id"}
	if fmt.Sprint(cols) != fmt.Sprint(want) {
		t.Errorf("columns = %v, want %v", cols, want)
	}
	rows.Close()
	var ts, ms float64
	var route, client, id sql.NullString
	var worker sql.NullInt64
	var status, in, out int
	err = db.QueryRow("SELECT ts, route, status, duration_ms, bytes_in, bytes_out, client, worker, request_id FROM requests WHERE method = 'GET'").
		Scan(&ts, &route, &status, &ms, &in, &out, &client, &worker, &id)
	if err != nil {
		t.Fatal(err)
	}
	if d := ts - float64(now.UnixMicro())/1e6; d > 1e-3 || d < -1e-3 || route.String != "/user/<name>" || status != 200 || ms != 1.5 ||
		in != 3 || out != 42 || client.String != "192.0.2.1" || worker.Int64 != 1234 || id.String != "abc" {
		t.Errorf("row = %v %v %v %v %v %v %v %v %v", ts, route, status, ms, in, out, client, worker, id)
	}
	// Unknown values are NULL, not empty strings or zeros.
	if n := count(t, path, "WHERE method = 'POST' AND route IS NULL AND client IS NULL AND worker IS NULL AND request_id IS NULL"); n != 1 {
		t.Errorf("rows with NULL unknowns = %d, want 1", n)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
}

// A full buffer drops rows, counts them and never blocks the caller.
func TestRequestsDropWhenFull(t *testing.T) {
	j, _ := openTest(t, RequestsConfig{FlushInterval: time.Hour, Buffer: 10})
	// Hold the writer: it waits for the database's only connection.
	conn, err := j.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The writer takes up to maxBatch rows, then blocks in its write.
	const adds = 10000
	done := make(chan struct{})
	go func() {
		for range adds {
			j.Add(Request{Method: "GET", Path: "/"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Add blocked")
	}
	if d := j.Dropped(); d < adds-10-maxBatch {
		t.Errorf("Dropped = %d after %d adds into a buffer of 10 with a stuck writer, want >= %d", d, adds, adds-10-maxBatch)
	}
	conn.Close()
}

func TestRequestsRetention(t *testing.T) {
	j, path := openTest(t, RequestsConfig{FlushInterval: time.Hour, MaxAge: time.Hour})
	now := time.Now()
	for i := range 10 {
		j.Add(Request{Time: now.Add(-2 * time.Hour), Method: "GET", Path: fmt.Sprint("/old", i)})
	}
	j.Add(Request{Time: now, Method: "GET", Path: "/new"})
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := j.retain(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	if n, all := count(t, path, "WHERE path = '/new'"), count(t, path, ""); n != 1 || all != 1 {
		t.Errorf("after age retention: %d new rows of %d, want 1 of 1", n, all)
	}

	// By size: rows with long paths, a limit well under what they take.
	j2, path2 := openTest(t, RequestsConfig{FlushInterval: time.Hour, MaxSize: 64 << 10})
	long := string(make([]byte, 1000))
	for i := range 1000 {
		j2.Add(Request{Time: now, Method: "GET", Path: fmt.Sprint(i, long)})
	}
	if err := j2.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := j2.retain(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	used, err := j2.usedBytes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := count(t, path2, "")
	if used > 64<<10 || n == 0 || n == 1000 {
		t.Errorf("after size retention: %d bytes used, %d rows left of 1000; want <= 64 KiB and some rows", used, n)
	}
	// The newest rows are the ones kept.
	if m := count(t, path2, "WHERE path LIKE '999%'"); m != 1 {
		t.Errorf("the newest row is gone")
	}
}

func TestReports(t *testing.T) {
	j, path := openTest(t, RequestsConfig{FlushInterval: time.Hour})
	now := time.Now()
	add := func(route string, status int, ms int, client string) {
		j.Add(Request{Time: now.Add(-time.Minute), Method: "GET", Path: route, Route: route, Status: status,
			Duration: time.Duration(ms) * time.Millisecond, Client: client, RequestID: fmt.Sprint("id-", ms)})
	}
	for range 3 {
		add("/a", 200, 1, "192.0.2.1")
	}
	add("/b", 500, 900, "192.0.2.2")
	add("/b", 404, 2, "192.0.2.2")
	j.Add(Request{Time: now.Add(-3 * time.Hour), Method: "GET", Path: "/old", Status: 500})
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReports(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	since := now.Add(-time.Hour)
	for _, c := range []struct {
		name  string
		lines int
		first string // of the first line, the column named by col
		col   int
	}{
		{"top", 2, "/a", 5},
		{"slow", 5, "id-900", 6},
		{"errors", 2, "/b", 2},
		{"clients", 2, "192.0.2.1", 5},
	} {
		_, rows, err := r.Report(context.Background(), c.name, since, now, 10)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(rows) != c.lines || rows[0][c.col] != c.first {
			t.Errorf("%s: %v, want %d lines, the first with %q", c.name, rows, c.lines, c.first)
		}
	}
	if _, err := OpenReports(filepath.Join(t.TempDir(), "none.db")); err == nil {
		t.Error("OpenReports of a missing file: no error")
	}
}

// rowidSince finds the start of a period by rowid, across deleted rows.
func TestRowidSince(t *testing.T) {
	j, _ := openTest(t, RequestsConfig{FlushInterval: time.Hour})
	base := time.Unix(1_000_000, 0)
	for i := range 100 {
		j.Add(Request{Time: base.Add(time.Duration(i) * time.Second), Method: "GET", Path: "/"})
	}
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Rowids 1..100 hold ts base+0..99; make gaps.
	if _, err := j.db.Exec(`DELETE FROM requests WHERE rowid BETWEEN 40 AND 60 OR rowid < 5`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sec  int
		want int64 // first rowid kept with ts >= base+sec, or 101
	}{{0, 5}, {4, 5}, {5, 6}, {38, 39}, {39, 61}, {45, 61}, {60, 61}, {99, 100}, {100, 101}} {
		got, err := rowidSince(context.Background(), j.db, float64(base.Unix()+int64(c.sec)))
		if err != nil {
			t.Fatal(err)
		}
		// Any rowid in a gap before the answer selects the same rows.
		var n int
		j.db.QueryRow(`SELECT count(*) FROM requests WHERE rowid >= ? AND rowid < ?`, min(got, c.want), max(got, c.want)).Scan(&n)
		if n != 0 {
			t.Errorf("rowidSince(base+%d) = %d, want %d", c.sec, got, c.want)
		}
	}
}
