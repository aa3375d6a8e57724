package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// startObserved runs testdata/observed.py (Flask) with the admin API on a
// free loopback port, and returns the server and the admin API's URL.
func startObserved(t *testing.T, args ...string) (*server, string) {
	t.Helper()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := start(t, nil, append(append([]string{"--admin-bind", admin, "--pythonpath", testdata("")}, args...), "observed:app")...)
	return s, "http://" + admin
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// metricValue returns the value of the sample line that starts with
// series (name and labels as the text format writes them), or -1.
func metricValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// TestMetricsEndpoint checks /metrics against the requests sent: the
// route label is the app's rule, unknown paths share one label, a crash
// is a restart with reason crash, the request journal's rows are counted,
// and promtool accepts the output.
func TestMetricsEndpoint(t *testing.T) {
	s, admin := startObserved(t, "-w", "2", "--journal", filepath.Join(t.TempDir(), "requests.db"))
	for _, p := range []string{"/", "/", "/item/1", "/item/2", "/item/3", "/nope", "/wp-login.php"} {
		s.get(p)
	}
	s.do(http.MethodPost, "/item/4", strings.NewReader("0123456789"), nil) // 405 from Flask
	s.get("/crash")
	resp, err := http.Post(admin+"/bans", "application/json", strings.NewReader(`{"addr":"203.0.113.7","seconds":3600,"reason":"test"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /bans: %v %v", err, resp)
	}
	resp.Body.Close()
	var text string
	eventually(t, 15*time.Second, "the crash counted and its worker replaced", func() bool {
		_, text = httpGet(t, admin+"/metrics")
		return metricValue(text, `corral_worker_restarts_total{reason="crash"}`) == 1 &&
			metricValue(text, `corral_workers{state="ready"}`) == 2 &&
			metricValue(text, `corral_journal_rows_total{outcome="written"}`) >= 9 // flushed every second
	})
	if v := metricValue(text, `corral_journal_rows_total{outcome="dropped"}`); v != 0 {
		t.Errorf("journal rows dropped = %v, want 0", v)
	}
	for series, want := range map[string]float64{
		`corral_requests_total{code="200",method="GET",route="/"}`:                    2,
		`corral_requests_total{code="200",method="GET",route="/item/<int:item_id>"}`:  3,
		`corral_requests_total{code="405",method="POST",route="/item/<int:item_id>"}`: 1,
		`corral_requests_total{code="404",method="GET",route="(unmatched)"}`:          2,
		`corral_request_duration_seconds_count{route="/item/<int:item_id>"}`:          4,
		`corral_request_bytes_total`:                                                  10,
		`corral_worker_restarts_total{reason="timeout"}`:                              0,
		`corral_queue_depth`:        0,
		`corral_requests_in_flight`: 0,
	} {
		if got := metricValue(text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	for _, name := range []string{"corral_requests_in_flight", "corral_queue_wait_seconds_count", "corral_response_bytes_total",
		`corral_worker_rss_bytes{worker="1"}`, `corral_build_info{goversion=`, "corral_guard_rate_limited_requests_total",
		"corral_guard_tarpitted_connections_total", "process_resident_memory_bytes"} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("no %s in /metrics", name)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		missingTool(t, "promtool not installed (Debian package prometheus)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestPrometheusScrape runs a real Prometheus that scrapes corral every
// second and asks it, with PromQL over its HTTP API, how many requests
// the test sent.
func TestPrometheusScrape(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		missingTool(t, "prometheus not installed (Debian package prometheus)")
	}
	s, admin := startObserved(t, "-w", "1")
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: corral
    static_configs:
      - targets: [%q]
`, strings.TrimPrefix(admin, "http://"))
	writeFile(t, filepath.Join(dir, "prometheus.yml"), cfg)
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var out syncBuffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})

	const sent = 37
	for i := range sent {
		if code, _ := s.get("/item/" + strconv.Itoa(i)); code != 200 {
			t.Fatalf("GET /item/%d = %d", i, code)
		}
	}
	query := `sum(corral_requests_total{route="/item/<int:item_id>",code="200"})`
	var got string
	eventually(t, 60*time.Second, "Prometheus to report the requests sent", func() bool {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(query))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var doc struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&doc) != nil || doc.Status != "success" || len(doc.Data.Result) != 1 {
			return false
		}
		v := doc.Data.Result[0].Value
		if len(v) == 2 {
			got, _ = v[1].(string)
		}
		return got == strconv.Itoa(sent)
	})
	if got != strconv.Itoa(sent) {
		t.Errorf("%s = %s, want %d", query, got, sent)
	}
}

// TestStatsd points --statsd-host at a UDP listener and checks gunicorn's
// metric names, the prefix and the DogStatsD tags.
func TestStatsd(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, _ := startObserved(t, "-w", "1", "--statsd-host", pc.LocalAddr().String(), "--statsd-prefix", "shop",
		"--dogstatsd-tags", "env:test")
	s.get("/item/1")
	s.get("/nope")
	seen := map[string]bool{}
	var mu sync.Mutex
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(15 * time.Second)
	want := []string{
		"shop.gunicorn.requests:1|c|@1.0|#env:test",
		"shop.gunicorn.request.status.200:1|c|@1.0|#env:test",
		"shop.gunicorn.request.status.404:1|c|@1.0|#env:test",
		"shop.gunicorn.workers:1|g|#env:test",
	}
	durRE := regexp.MustCompile(`^shop\.gunicorn\.request\.duration:\d+\.\d{3}\|ms\|#env:test$`)
	done := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range want {
			if !seen[w] {
				return false
			}
		}
		return seen["duration"]
	}
	for !done() && time.Now().Before(deadline) {
		_ = pc.SetReadDeadline(deadline)
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			break
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			mu.Lock()
			seen[line] = true
			if durRE.MatchString(line) {
				seen["duration"] = true
			}
			mu.Unlock()
		}
	}
	for _, w := range append(want, "duration") {
		if !seen[w] {
			t.Errorf("no statsd line %q; got %v", w, seen)
		}
	}
}

// TestMetricsAdminOnly checks that /metrics and the status page are on the
// admin listener only, never on the public one.
func TestMetricsAdminOnly(t *testing.T) {
	s, admin := startObserved(t, "-w", "1")
	for _, p := range []string{"/metrics", "/live"} {
		if code, body := s.get(p); code != 404 || strings.Contains(body, "corral_") {
			t.Errorf("public GET %s = %d %.60q, want the app's 404", p, code, body)
		}
	}
	code, body := httpGet(t, admin+"/")
	if code != 200 || !strings.Contains(body, "<title>corral status</title>") {
		t.Errorf("admin GET / = %d %.80q", code, body)
	}
}

// keepBusy sends requests to s until ctx ends: a steady load, with a slow
// request now and then so that a worker shows a running request.
func keepBusy(ctx context.Context, s *server) *sync.WaitGroup {
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				path := "/item/" + strconv.Itoa(n)
				switch {
				case i == 0 && n%2 == 0:
					path = "/slow/0.5"
				case n%5 == 0:
					path = "/"
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+path, nil)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	return &wg
}

// TestMetricsWebSockets counts a FastAPI app's WebSocket and its messages,
// and labels its HTTP route by the app's rule.
func TestMetricsWebSockets(t *testing.T) {
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s, _ := startFastAPI(t, "-w", "1", "--admin-bind", admin)
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws://"+s.addr+"/ws/echo?tag=m", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, m := range []string{"one", "two", "three"} {
		wsRoundTrip(t, c, websocket.MessageText, []byte(m), []byte(m))
	}
	var text string
	eventually(t, 10*time.Second, "the WebSocket's messages counted", func() bool {
		_, text = httpGet(t, "http://"+admin+"/metrics")
		return metricValue(text, `corral_websocket_messages_total{direction="in"}`) == 3 &&
			metricValue(text, `corral_websocket_messages_total{direction="out"}`) == 3
	})
	for series, want := range map[string]float64{
		`corral_websocket_connections`:       1,
		`corral_websocket_connections_total`: 1,
	} {
		if got := metricValue(text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
}

// TestRestartReasons replaces workers for three of the reasons and reads
// each one back from corral_worker_restarts_total and the status page's
// /live.
func TestRestartReasons(t *testing.T) {
	s, admin := startObserved(t, "-w", "1", "--timeout", "1", "--max-requests", "5")
	restarts := func() string {
		_, text := httpGet(t, admin+"/metrics")
		return text
	}
	// timeout: a request past --timeout gets 504 and its worker is replaced.
	if code, _ := s.get("/slow/5.0"); code != 504 {
		t.Errorf("GET /slow/5.0 with --timeout 1 = %d, want 504", code)
	}
	eventually(t, 20*time.Second, "a timeout restart", func() bool {
		return metricValue(restarts(), `corral_worker_restarts_total{reason="timeout"}`) == 1
	})
	// max-requests: the fifth request recycles the worker.
	for range 5 {
		s.get("/")
	}
	eventually(t, 20*time.Second, "a max-requests restart", func() bool {
		return metricValue(restarts(), `corral_worker_restarts_total{reason="max-requests"}`) >= 1
	})
	// reload: SIGHUP replaces every worker.
	s.signal(syscall.SIGHUP)
	eventually(t, 30*time.Second, "a reload restart", func() bool {
		return metricValue(restarts(), `corral_worker_restarts_total{reason="reload"}`) == 1
	})
	text := restarts()
	if got := metricValue(text, `corral_worker_restarts_total{reason="crash"}`); got != 0 {
		t.Errorf("crash restarts = %v, want 0: a worker killed for a timeout is not a crash", got)
	}
	_, body := httpGet(t, admin+"/live")
	var doc struct {
		Live struct {
			Restarts []struct {
				Reason string `json:"reason"`
			} `json:"restarts"`
		} `json:"live"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, r := range doc.Live.Restarts {
		reasons = append(reasons, r.Reason)
	}
	if got := strings.Join(reasons, " "); !strings.HasPrefix(got, "reload") || !strings.Contains(got, "max-requests") || !strings.HasSuffix(got, "timeout") {
		t.Errorf("/live restarts, newest first: %q; want reload first, then max-requests, timeout last", got)
	}
}

// TestMetricsFleetStoreDown: with a fleet store that does not answer, the
// guard works alone and /metrics says so.
func TestMetricsFleetStoreDown(t *testing.T) {
	_, admin := startObserved(t, "-w", "1", "--guard-store", fmt.Sprintf("redis://127.0.0.1:%d/0", freePort(t)))
	eventually(t, 10*time.Second, "corral_fleet_store_up 0", func() bool {
		_, text := httpGet(t, admin+"/metrics")
		return metricValue(text, "corral_fleet_store_up") == 0
	})
}
