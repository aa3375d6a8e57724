package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"corral/internal/guard"
	"corral/internal/pool"
)

// fakeSource is a Source with fixed answers; block, when not nil, holds
// Status until it is closed.
type fakeSource struct {
	ready bool
	why   string
	block chan struct{}
}

var started = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func (f *fakeSource) Status() Status {
	if f.block != nil {
		<-f.block
	}
	return Status{
		Version: "1.2.3", Pid: 42, App: "app:app", Binds: []string{"127.0.0.1:8000", "unix:/run/x.sock"},
		Started: started, UptimeSec: 90, Ready: f.ready, Reason: f.why, Queued: 3,
		Workers: []pool.WorkerStatus{{ID: 1, Pid: 100, InFlight: 2, Served: 7, RSS: 3 << 20, AgeSec: 61,
			Current: &pool.RequestStatus{Method: "GET", Path: "/slow", ElapsedMS: 1500}}},
		Guard: &guard.Stats{Enabled: true, Routes: "extracted", Patterns: 4, Bans: 1},
	}
}

func (f *fakeSource) Ready() (bool, string) { return f.ready, f.why }

// fakeBans is a ban table in memory.
type fakeBans struct {
	mu   sync.Mutex
	bans map[string]guard.BanInfo
}

func newFakeBans() *fakeBans { return &fakeBans{bans: map[string]guard.BanInfo{}} }

func (f *fakeBans) List() []guard.BanInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]guard.BanInfo, 0, len(f.bans))
	for _, b := range f.bans {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

func (f *fakeBans) Ban(addr string, d time.Duration, reason string) (string, error) {
	if !strings.Contains(addr, ".") {
		return "", errors.New("not an IP address")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b := guard.BanInfo{Addr: addr, Jail: "manual", Reason: reason, Since: started}
	if d > 0 {
		until := started.Add(d)
		b.Until = &until
	}
	f.bans[addr] = b
	return addr, nil
}

func (f *fakeBans) Unban(addr string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.bans[addr]
	delete(f.bans, addr)
	return ok, nil
}

// serveMux answers one request on the admin handler of src and bans.
func serveMux(src Source, bans Bans, method, target, body string) (int, map[string]any, http.Header) {
	mux := Handler(src)
	if bans != nil {
		HandleBans(mux, bans)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	var doc map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &doc)
	return rec.Code, doc, rec.Header()
}

func TestProbes(t *testing.T) {
	tests := []struct {
		name   string
		src    *fakeSource
		target string
		code   int
		want   map[string]any
	}{
		{"healthz", &fakeSource{}, "/healthz", 200, map[string]any{"status": "alive"}},
		{"readyz ready", &fakeSource{ready: true}, "/readyz", 200, map[string]any{"status": "ready"}},
		{"readyz not ready", &fakeSource{why: "draining"}, "/readyz", 503, map[string]any{"status": "not ready", "reason": "draining"}},
	}
	for _, tt := range tests {
		code, doc, h := serveMux(tt.src, nil, "GET", tt.target, "")
		if code != tt.code || !reflect.DeepEqual(doc, tt.want) {
			t.Errorf("%s: %d %v, want %d %v", tt.name, code, doc, tt.code, tt.want)
		}
		if got := h.Get("Content-Type"); got != "application/json" {
			t.Errorf("%s: Content-Type %q", tt.name, got)
		}
		if got := h.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", tt.name, got)
		}
	}
	if code, _, _ := serveMux(&fakeSource{}, nil, "POST", "/healthz", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d, want 405", code)
	}
	if code, _, _ := serveMux(&fakeSource{}, nil, "GET", "/bans", ""); code != http.StatusNotFound {
		t.Errorf("GET /bans without a ban table: %d, want 404", code)
	}
}

// TestStatusShape pins the JSON of /status, which `corral status --json`
// prints and scripts read.
func TestStatusShape(t *testing.T) {
	code, doc, _ := serveMux(&fakeSource{ready: false, why: "starting"}, nil, "GET", "/status", "")
	if code != 200 {
		t.Fatalf("GET /status: %d", code)
	}
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	want := []string{"app", "binds", "guard", "not_ready_reason", "pid", "queued", "ready", "started", "uptime_seconds", "version", "workers"}
	if got := keys(doc); !slices.Equal(got, want) {
		t.Errorf("/status keys = %q, want %q", got, want)
	}
	if doc["started"] != "2026-11-22T10:00:00Z" || doc["ready"] != false || doc["not_ready_reason"] != "starting" || doc["pid"] != 42.0 {
		t.Errorf("/status = %v", doc)
	}
	w := doc["workers"].([]any)[0].(map[string]any)
	wantW := []string{"age_seconds", "current", "id", "in_flight", "pid", "rss_bytes", "served", "state"}
	if got := keys(w); !slices.Equal(got, wantW) {
		t.Errorf("worker keys = %q, want %q", got, wantW)
	}
	if cur := w["current"].(map[string]any); cur["path"] != "/slow" || cur["elapsed_ms"] != 1500.0 {
		t.Errorf("current = %v", cur)
	}
	if g := doc["guard"].(map[string]any); g["enabled"] != true || g["routes"] != "extracted" {
		t.Errorf("guard = %v", g)
	}

	// Ready, without a guard: the optional keys are left out.
	src := &fakeSource{ready: true}
	st := src.Status()
	st.Guard = nil
	b, _ := json.Marshal(st)
	for _, k := range []string{"not_ready_reason", "guard"} {
		if strings.Contains(string(b), `"`+k+`"`) {
			t.Errorf("%s present in %s", k, b)
		}
	}
}

func TestBansHandlers(t *testing.T) {
	bans := newFakeBans()
	src := &fakeSource{}
	tests := []struct {
		method, target, body string
		code                 int
		want                 map[string]any
	}{
		{"GET", "/bans", "", 200, map[string]any{"bans": []any{}}},
		{"POST", "/bans", `{"addr":"192.0.2.7","seconds":60,"reason":"test"}`, 200, map[string]any{"banned": "192.0.2.7"}},
		{"POST", "/bans", `{"addr":"192.0.2.8"}`, 200, map[string]any{"banned": "192.0.2.8"}},
		{"POST", "/bans", `{"addr":"nope"}`, 400, map[string]any{"error": "not an IP address"}},
		{"POST", "/bans", `{"addr":"192.0.2.9","seconds":-1}`, 400, map[string]any{"error": "seconds must be between 0 (permanent) and 100 years"}},
		{"POST", "/bans", `{"addr":"192.0.2.9","seconds":4e9}`, 400, map[string]any{"error": "seconds must be between 0 (permanent) and 100 years"}},
		{"DELETE", "/bans?addr=192.0.2.8", "", 200, map[string]any{"removed": true}},
		{"DELETE", "/bans?addr=192.0.2.8", "", 404, map[string]any{"removed": false, "error": "no such ban"}},
	}
	for _, tt := range tests {
		code, doc, _ := serveMux(src, bans, tt.method, tt.target, tt.body)
		if code != tt.code || !reflect.DeepEqual(doc, tt.want) {
			t.Errorf("%s %s %s: %d %v, want %d %v", tt.method, tt.target, tt.body, code, doc, tt.code, tt.want)
		}
	}
	code, doc, _ := serveMux(src, bans, "POST", "/bans", `not json`)
	if msg, _ := doc["error"].(string); code != 400 || !strings.HasPrefix(msg, "want a JSON object: ") {
		t.Errorf("POST /bans with a bad body: %d %v", code, doc)
	}
	code, doc, _ = serveMux(src, bans, "GET", "/bans", "")
	list, _ := doc["bans"].([]any)
	if code != 200 || len(list) != 1 {
		t.Fatalf("GET /bans: %d %v, want the one ban left", code, doc)
	}
	if b := list[0].(map[string]any); b["addr"] != "192.0.2.7" || b["reason"] != "test" || b["until"] != "2026-11-22T10:01:00Z" {
		t.Errorf("ban = %v", b)
	}
}

func TestWriteStatus(t *testing.T) {
	var b strings.Builder
	st := (&fakeSource{why: "draining"}).Status()
	if err := WriteStatus(&b, &st); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"corral 1.2.3  pid 42  NOT READY: draining  up 1m30s  queued 3\n",
		"  app app:app  on 127.0.0.1:8000, unix:/run/x.sock\n",
		"  guard on  routes extracted (4 patterns, 0 learned)  bans 1",
		"GET /slow (1.5s)",
		"3.0 MiB",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("WriteStatus wrote\n%s\nwant it to contain %q", got, want)
		}
	}
}

func TestWriteBans(t *testing.T) {
	var b strings.Builder
	if err := WriteBans(&b, nil, started); err != nil || b.String() != "no bans\n" {
		t.Errorf("no bans: %q, %v", b.String(), err)
	}
	until := started.Add(2 * time.Hour)
	b.Reset()
	err := WriteBans(&b, []guard.BanInfo{
		{Addr: "192.0.2.7", Jail: "probe", Until: &until, Offences: 2, Blocked: 3, Refused: 1, Reason: "scan"},
		{Addr: "2001:db8::/64", Jail: "manual", Reason: "forever"},
	}, started)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "CLIENT") {
		t.Fatalf("WriteBans wrote %q", b.String())
	}
	if f := strings.Fields(lines[1]); !slices.Equal(f, []string{"192.0.2.7", "probe", "2h0m0s", "2", "4", "scan"}) {
		t.Errorf("row 1 = %q", f)
	}
	if f := strings.Fields(lines[2]); !slices.Equal(f, []string{"2001:db8::/64", "manual", "forever", "0", "0", "forever"}) {
		t.Errorf("row 2 = %q", f)
	}
}
