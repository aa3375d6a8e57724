package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestStatusPageInBrowser loads the status page in a real headless
// Chromium while load runs, and checks what a person would see: the
// workers' pids (as the master's /status reports them), a non-zero
// request rate and the routes. The page is served with its own strict
// Content-Security-Policy, so a blocked script or style would leave the
// page empty and fail the test. Screenshots (desktop and phone) are saved
// in the test's artifact directory (go test -artifacts).
func TestStatusPageInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		missingTool(t, "chromium not installed (Debian package chromium)")
	}
	s, admin := startObserved(t, "-w", "2")
	// A restart and a ban for the page to show.
	s.get("/crash")
	resp, err := http.Post(admin+"/bans", "application/json", strings.NewReader(`{"addr":"203.0.113.7","seconds":3600,"reason":"scanner"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /bans: %v %v", err, resp)
	}
	resp.Body.Close()
	eventually(t, 15*time.Second, "the crashed worker replaced", func() bool {
		_, body := httpGet(t, admin+"/metrics")
		return metricValue(body, `corral_workers{state="ready"}`)+metricValue(body, `corral_workers{state="busy"}`) == 2
	})
	load, stopLoad := context.WithCancel(context.Background())
	busy := keepBusy(load, s)
	defer func() { stopLoad(); busy.Wait() }()

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc() // stops Chromium and waits for it
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/")); err != nil {
		t.Fatalf("load the status page: %v", err)
	}
	// The pids the master reports; the page must show the same ones.
	var want []string
	for _, w := range adminStatus(t, admin).Workers {
		want = append(want, strconv.Itoa(w.Pid))
	}
	type view struct {
		Pids     []string `json:"pids"`
		Rate     string   `json:"rate"`
		Routes   string   `json:"routes"`
		Current  string   `json:"current"`
		Restarts string   `json:"restarts"`
		Bans     string   `json:"bans"`
	}
	const read = `({
		pids: Array.from(document.querySelectorAll("#workers td.pid")).map(e => e.textContent),
		rate: document.getElementById("rate").textContent,
		routes: document.getElementById("routes").textContent,
		current: Array.from(document.querySelectorAll("#workers td.path")).map(e => e.textContent).join(" "),
		restarts: document.getElementById("restarts").textContent,
		bans: document.getElementById("bans").textContent,
	})`
	var v view
	deadline := time.Now().Add(60 * time.Second)
	for {
		if v, err = chromedp.Run(ctx, chromedp.Evaluate[view](read)); err != nil {
			t.Fatalf("read the page: %v", err)
		}
		r, _ := strconv.ParseFloat(strings.TrimSpace(v.Rate), 64)
		if r > 0 && sameSet(v.Pids, want) && strings.Contains(v.Routes, "/item/<int:item_id>") &&
			strings.Contains(v.Current, "/slow/") && strings.Contains(v.Restarts, "crash") &&
			strings.Contains(v.Bans, "203.0.113.7") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page shows %+v; want pids %v, a non-zero rate, /item/<int:item_id>, a running /slow/ request, a crash and a ban", v, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Let the charts fill a little before the pictures.
	time.Sleep(3 * time.Second)
	dir := t.ArtifactDir()
	for _, shot := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"status-page.png", 1200, 1000, false}, {"status-page-phone.png", 390, 844, true}} {
		err := chromedp.Do(ctx,
			chromedp.EmulateViewport(shot.width, shot.height, chromedp.EmulateScale(1),
				func(p *emulation.SetDeviceMetricsOverrideParams, _ *emulation.SetTouchEmulationEnabledParams) {
					p.Mobile = shot.mobile
				}),
			chromedp.Sleep(1200*time.Millisecond),
		)
		if err != nil {
			t.Fatalf("resize: %v", err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(dir, shot.name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	// On a phone the page must not scroll sideways as a whole.
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil {
		t.Fatal(err)
	}
	if overflow {
		t.Error("at 390 px the page is wider than the screen")
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x] == 0 {
			return false
		}
		seen[x]--
	}
	return true
}

type adminDoc struct {
	Workers []struct {
		Pid int `json:"pid"`
	} `json:"workers"`
}

// adminStatus fetches /status from the admin API at admin (a URL).
func adminStatus(t *testing.T, admin string) adminDoc {
	t.Helper()
	code, body := httpGet(t, admin+"/status")
	var doc adminDoc
	if code != 200 || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("admin /status = %d %s", code, body)
	}
	return doc
}
