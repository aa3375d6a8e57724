package front

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"corral/internal/fakeworker"
	"corral/internal/pool"
	"corral/internal/proto"
	"corral/internal/worker"
)

// benchWorkerEnv makes the test binary a minimal worker: it answers every
// REQUEST with the same small response at once, so a benchmark measures
// the master's cost per request and nothing of Python's.
const benchWorkerEnv = "CORRAL_FRONT_BENCH_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(benchWorkerEnv) != "" {
		benchWorker()
		os.Exit(0)
	}
	if fakeworker.Requested() {
		fakeworker.Main()
	}
	os.Exit(m.Run())
}

func benchWorker() {
	f := os.NewFile(3, "data")
	c, err := net.FileConn(f)
	if err != nil {
		os.Exit(70)
	}
	r := bufio.NewReaderSize(c, 256<<10)
	var hdr [proto.HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		os.Exit(70)
	}
	h, _ := proto.ParseHeaderAny(hdr[:])
	if _, err := r.Discard(int(h.Length)); err != nil {
		os.Exit(70)
	}
	hello := []byte(`{"protocol":2,"pid":1,"python":"bench","implementation":"go","threads":1}`)
	if os.Getenv(benchWorkerEnv) == "asgi" {
		hello = []byte(`{"protocol":2,"pid":1,"python":"bench","implementation":"go","threads":1000,"interface":"asgi"}`)
	}
	if _, err := c.Write(proto.AppendFrame(nil, proto.Hello, 0, 0, hello)); err != nil {
		os.Exit(70)
	}
	head := []byte("200 OK\x00Content-Type\x00text/plain")
	body := []byte("Hello, World!")
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(head)))
	var out []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			os.Exit(0)
		}
		h, _ := proto.ParseHeaderAny(hdr[:])
		if _, err := r.Discard(int(h.Length)); err != nil {
			os.Exit(0)
		}
		if h.Type == proto.Request {
			out = proto.AppendFrame(out, proto.Start, proto.FlagEnd, h.ID, n[:], head, body)
		}
		if r.Buffered() == 0 && len(out) > 0 { // answer a batch with one write
			if _, err := c.Write(out); err != nil {
				os.Exit(0)
			}
			out = out[:0]
		}
	}
}

// BenchmarkServeHTTP is the master's cost per request through the handler
// and the pool, with two workers that answer at once. Run with
// -benchmem; allocations per request are the figure to watch.
func BenchmarkServeHTTP(b *testing.B) { benchServe(b, "wsgi") }

// BenchmarkServeHTTPASGI is the same for ASGI workers: a scope block
// instead of an environ, dispatch by in-flight count.
func BenchmarkServeHTTPASGI(b *testing.B) { benchServe(b, "asgi") }

func benchServe(b *testing.B, iface string) {
	sp := worker.NewSpawner()
	defer sp.Close()
	p := pool.New(pool.Config{
		Workers: 2,
		Spawner: sp,
		Worker: worker.Config{
			Python: os.Args[0], Bootstrap: "bench", Env: append(os.Environ(), benchWorkerEnv+"="+iface),
			Logger: slog.New(slog.DiscardHandler),
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	h := New(Config{Pool: p, ASGI: p.ASGI(), LimitRequestLine: 4094, LimitRequestFields: 100, LimitRequestFieldSize: 8190})
	req := httptest.NewRequest(http.MethodGet, "http://bench.test/hello?x=1", nil)
	req.Header.Set("User-Agent", "wrk")
	req.Header.Set("Accept", "*/*")
	b.ReportAllocs()
	b.SetParallelism(25) // like 50 client connections on 2 cores: enough to pipeline
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Errorf("status %d", w.Code)
			}
		}
	})
}
