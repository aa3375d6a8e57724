package journal

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRequestsAdd is the request path's cost: one Add.
func BenchmarkRequestsAdd(b *testing.B) {
	j, err := OpenRequests(filepath.Join(b.TempDir(), "j.db"), RequestsConfig{Buffer: 1 << 16}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	r := Request{Time: time.Now(), Method: "GET", Path: "/user/ann", Route: "/user/<username>", Status: 200,
		Duration: time.Millisecond, BytesOut: 13, Client: "127.0.0.1", Worker: 1234, RequestID: "a6a711a72fa1d010-0000000000000001"}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			j.Add(r)
		}
	})
}

// BenchmarkRequestsWrite is the writer's cost per row committed (one op
// = one row), which is CPU taken from the workers on a small machine.
func BenchmarkRequestsWrite(b *testing.B) {
	j, err := OpenRequests(filepath.Join(b.TempDir(), "j.db"), RequestsConfig{FlushInterval: time.Hour}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	rows := make([]Request, maxBatch)
	for i := range rows {
		rows[i] = Request{Time: time.Now(), Method: "GET", Path: "/user/ann", Route: "/user/<username>", Status: 200,
			Duration: time.Millisecond, BytesOut: 13, Client: "127.0.0.1", Worker: 1234, RequestID: "a6a711a72fa1d010-0000000000000001"}
	}
	b.ResetTimer()
	for n := 0; n < b.N; n += maxBatch {
		if err := j.insert(context.Background(), rows[:min(maxBatch, b.N-n)]); err != nil {
			b.Fatal(err)
		}
	}
}
