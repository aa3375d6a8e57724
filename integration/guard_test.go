package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// wordlist is dirb's common.txt, the word list of a real scanner
// (scripts/test installs dirb).
const wordlist = "/usr/share/dirb/wordlists/common.txt"

// guardServer is a corral with the guard configured by extra (TOML lines
// of the [guard] table and below; loopback is not allow-listed, so that
// 127.0.0.x clients can be banned, and banned connections are closed at
// once rather than held in the tarpit, so that the tests see them closed),
// its own state directory and admin socket.
type guardServer struct {
	*server
	calls string // CALLS_FILE of the app
	admin string // admin socket
	state string
	conf  string
}

func startGuard(t *testing.T, extra string, env []string, args ...string) *guardServer {
	t.Helper()
	dir := t.TempDir()
	g := &guardServer{calls: filepath.Join(dir, "calls"), admin: filepath.Join(dir, "admin.sock"),
		state: filepath.Join(dir, "state"), conf: filepath.Join(dir, "corral.toml")}
	writeFile(t, g.conf, "[guard]\nallow = []\ntarpit = 0\n"+extra)
	g.server = g.restart(t, env, args...)
	return g
}

// restart starts (another) corral on the same config and state.
func (g *guardServer) restart(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	full := append([]string{"-c", g.conf, "--state-dir", g.state, "--admin-bind", g.admin}, args...)
	return start(t, append(env, "CALLS_FILE="+g.calls), full...)
}

// callsFrom counts the requests from ip that reached Python.
func (g *guardServer) callsFrom(ip string) int {
	b, _ := os.ReadFile(g.calls)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, ip+" ") {
			n++
		}
	}
	return n
}

// clientFrom is an HTTP client whose connections come from ip (any
// 127.x address is this machine's).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// fetch does one request and returns the status, or 0 when the connection
// was refused or closed without an answer.
func guardFetch(c *http.Client, method, u string, body string, hdr map[string]string) (int, http.Header, string) {
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		return -1, nil, err.Error()
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func readWordlist(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(wordlist)
	if err != nil {
		missingTool(t, "dirb's word list is missing (scripts/test installs dirb): %v", err)
	}
	defer f.Close()
	var words []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" {
			words = append(words, w)
		}
	}
	if len(words) < 1000 {
		t.Fatalf("%s has %d words", wordlist, len(words))
	}
	return words
}

// scanWhileBrowsing runs the word-list scan from 127.0.0.2 while a user
// browses the real routes from 127.0.0.3, and checks that the scan is cut
// off after maxretry probes and the user never is.
func scanWhileBrowsing(t *testing.T, g *guardServer, maxretry int, browse []string) {
	t.Helper()
	words := readWordlist(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var browsed int
	var userErrs []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		user := clientFrom("127.0.0.3")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			path := browse[i%len(browse)]
			if code, _, body := guardFetch(user, "GET", g.url+path, "", nil); code != 200 {
				userErrs = append(userErrs, fmt.Sprintf("%s: %d %s", path, code, body))
			}
			browsed++
		}
	}()
	scanner := clientFrom("127.0.0.2")
	answered, blocked := 0, 0
	for _, w := range words {
		code, _, _ := guardFetch(scanner, "GET", g.url+"/"+url.PathEscape(w), "", nil)
		switch code {
		case 0, http.StatusForbidden:
			blocked++
		default:
			answered++
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("scan: %d words, %d answered by the app, %d blocked; user: %d requests", len(words), answered, blocked, browsed)
	if got := g.callsFrom("127.0.0.2"); got != answered {
		t.Errorf("the app saw %d scanner requests, the scanner got %d answers", got, answered)
	}
	// Every word the app answered before the ban is a probe (404) or one
	// of the few that are real routes (/2000 is a year for Flask).
	if answered > maxretry+20 || blocked < len(words)-maxretry-20 {
		t.Errorf("the scan was not cut off: %d answered, %d blocked (maxretry %d)", answered, blocked, maxretry)
	}
	if len(userErrs) > 0 || browsed == 0 {
		t.Errorf("the legit user (%d requests) got %d failures: %q", browsed, len(userErrs), userErrs[:min(5, len(userErrs))])
	}
	out, code := runCorral(t, "bans", "list", "--admin-bind", g.admin)
	if code != 0 || !strings.Contains(out, "127.0.0.2") || !strings.Contains(out, "probe") || strings.Contains(out, "127.0.0.3") {
		t.Errorf("corral bans list (exit %d):\n%s", code, out)
	}
	if n := strings.Count(g.log.String(), "client banned"); n != 1 {
		t.Errorf("%d ban lines in the log, want 1:\n%s", n, g.log)
	}
}

func TestGuardScanFlask(t *testing.T) {
	g := startGuard(t, "[guard.jails.probe]\nmaxretry = 10\n",
		[]string{"COUNTED_APP=app:app"}, "-w", "2", "--chdir", "examples/flaskapp", "--pythonpath", testdata(""), "counted:app")
	scanWhileBrowsing(t, g, 10, []string{"/", "/2024", "/static/hello.txt"})
}

func TestGuardScanDjango(t *testing.T) {
	g := startGuard(t, "[guard.jails.probe]\nmaxretry = 10\n",
		[]string{"COUNTED_APP=mysite.wsgi:application"}, "-w", "2", "--chdir", "examples/djangoproject", "--pythonpath", testdata(""), "counted:app")
	scanWhileBrowsing(t, g, 10, []string{"/", "/polls/", "/polls/1/", "/polls/best/results/", "/archive/2024/"})
}

func TestGuardBansSurviveRestartAndRemove(t *testing.T) {
	g := startGuard(t, "", nil, "-w", "1", testdata("wsgiapp.py")+":application")
	c := clientFrom("127.0.0.5")
	if code, _, _ := guardFetch(c, "GET", g.url+"/pid", "", nil); code != 200 {
		t.Fatalf("before the ban: %d", code)
	}
	out, code := runCorral(t, "bans", "add", "127.0.0.5", "--for", "1h", "--reason", "integration test", "--admin-bind", g.admin)
	if code != 0 {
		t.Fatalf("corral bans add: exit %d:\n%s", code, out)
	}
	if code, _, _ := guardFetch(c, "GET", g.url+"/pid", "", nil); code != 0 && code != 403 {
		t.Errorf("banned client got %d", code)
	}
	g.stop()
	g.server = g.restart(t, nil, "-w", "1", testdata("wsgiapp.py")+":application")
	if !strings.Contains(g.log.String(), "bans restored") {
		t.Errorf("no restore in the log:\n%s", g.log)
	}
	if code, _, _ := guardFetch(clientFrom("127.0.0.5"), "GET", g.url+"/pid", "", nil); code != 0 && code != 403 {
		t.Errorf("after restart the banned client got %d", code)
	}
	out, code = runCorral(t, "bans", "list", "--admin-bind", g.admin)
	if code != 0 || !strings.Contains(out, "127.0.0.5") || !strings.Contains(out, "integration test") {
		t.Errorf("corral bans list after restart (exit %d):\n%s", code, out)
	}
	out, code = runCorral(t, "bans", "remove", "127.0.0.5", "--admin-bind", g.admin)
	if code != 0 {
		t.Fatalf("corral bans remove: exit %d:\n%s", code, out)
	}
	if code, _, body := guardFetch(clientFrom("127.0.0.5"), "GET", g.url+"/pid", "", nil); code != 200 {
		t.Errorf("after remove: %d %s", code, body)
	}
	if _, code = runCorral(t, "bans", "remove", "127.0.0.5", "--admin-bind", g.admin); code == 0 {
		t.Error("removing a ban that is gone succeeded")
	}
	if !strings.Contains(g.log.String(), `client unbanned client=127.0.0.5`) {
		t.Errorf("no unban line:\n%s", g.log)
	}
}

// proxyV2 is a PROXY protocol v2 header for a TCP4 connection from src.
func proxyV2(src string) []byte {
	h := []byte("\r\n\r\n\x00\r\nQUIT\n")
	h = append(h, 0x21, 0x11, 0, 12)
	h = append(h, net.ParseIP(src).To4()...)
	h = append(h, 127, 0, 0, 1)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(h, 40000), 8000)
}

func TestGuardForwardedIdentity(t *testing.T) {
	g := startGuard(t, "[guard.jails.probe]\nmaxretry = 5\n", nil,
		"-w", "1", "--proxy-protocol", testdata("wsgiapp.py")+":application")
	probe := func(c *http.Client, hdr map[string]string) {
		for i := range 8 {
			guardFetch(c, "GET", fmt.Sprintf("%s/probe-%d", g.url, i), "", hdr)
		}
	}
	// An untrusted peer cannot frame 198.51.100.7: it bans itself.
	probe(clientFrom("127.0.0.2"), map[string]string{"X-Forwarded-For": "198.51.100.7", "Forwarded": "for=198.51.100.7"})
	// Through the trusted proxy (127.0.0.1) the forwarded client is banned.
	proxy := clientFrom("127.0.0.1")
	probe(proxy, map[string]string{"X-Forwarded-For": "203.0.113.1, 198.51.100.8"})
	if code, _, _ := guardFetch(proxy, "GET", g.url+"/pid", "", map[string]string{"X-Forwarded-For": "198.51.100.8"}); code != 403 {
		t.Errorf("banned forwarded client: %d", code)
	}
	if code, _, _ := guardFetch(proxy, "GET", g.url+"/pid", "", map[string]string{"X-Forwarded-For": "198.51.100.9"}); code != 200 {
		t.Errorf("another client through the same proxy: %d", code)
	}
	// PROXY protocol v2 from the trusted proxy names the client.
	for i := range 8 {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		req := fmt.Sprintf("GET /pp-probe-%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", i)
		c.Write(append(proxyV2("198.51.100.10"), req...))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadAll(c)
		c.Close()
	}
	out, _ := runCorral(t, "bans", "list", "--admin-bind", g.admin)
	for _, want := range []string{"127.0.0.2", "198.51.100.8", "198.51.100.10"} {
		if !strings.Contains(out, want) {
			t.Errorf("%s is not banned:\n%s", want, out)
		}
	}
	for _, innocent := range []string{"198.51.100.7", "203.0.113.1", "198.51.100.9", "127.0.0.1 "} {
		if strings.Contains(out, innocent) {
			t.Errorf("%s was banned:\n%s", innocent, out)
		}
	}
}

func TestGuardLoginBruteForce(t *testing.T) {
	g := startGuard(t, "[guard.jails.auth]\nmaxretry = 5\n", []string{"COUNTED_APP=app:app"},
		"-w", "1", "--chdir", "examples/flaskapp", "--pythonpath", testdata(""), "counted:app")
	c := clientFrom("127.0.0.4")
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	var codes []int
	for range 8 {
		code, _, _ := guardFetch(c, "POST", g.url+"/login", "user=admin&password=guess", form)
		codes = append(codes, code)
	}
	want := []int{401, 401, 401, 401, 401}
	if fmt.Sprint(codes[:5]) != fmt.Sprint(want) || codes[5] == 401 || codes[7] == 401 {
		t.Errorf("statuses %v, want five 401 and then none", codes)
	}
	if n := g.callsFrom("127.0.0.4"); n != 5 {
		t.Errorf("%d login attempts reached Python, want 5", n)
	}
	if code, _, _ := guardFetch(clientFrom("127.0.0.8"), "POST", g.url+"/login", "user=admin&password=secret", form); code != 200 {
		t.Errorf("another client's good login: %d", code)
	}
	if !strings.Contains(g.log.String(), "jail=auth") {
		t.Errorf("no auth ban in the log:\n%s", g.log)
	}
}

func TestGuardRateLimit(t *testing.T) {
	g := startGuard(t, "rate = 5\nburst = 5\n[[guard.routes]]\npath = \"/slow\"\nrate = 0.1\nburst = 1\n", nil,
		"-w", "1", testdata("wsgiapp.py")+":application")
	c := clientFrom("127.0.0.6")
	var ok, limited int
	var retry string
	for range 20 {
		code, hdr, _ := guardFetch(c, "GET", g.url+"/pid", "", nil)
		switch code {
		case 200:
			ok++
		case 429:
			limited++
			retry = hdr.Get("Retry-After")
		}
	}
	if ok < 5 || ok > 7 || limited < 13 || retry == "" {
		t.Errorf("%d answered, %d limited (Retry-After %q); want the burst of 5 through, the rest 429", ok, limited, retry)
	}
	// A per-route limit: one /slow per 10 s.
	c2 := clientFrom("127.0.0.9")
	guardFetch(c2, "GET", g.url+"/slow?0", "", nil)
	code, hdr, _ := guardFetch(c2, "GET", g.url+"/slow?0", "", nil)
	if code != 429 || hdr.Get("Retry-After") == "" {
		t.Errorf("second /slow: %d, Retry-After %q", code, hdr.Get("Retry-After"))
	}
	if code, _, _ := guardFetch(c2, "GET", g.url+"/pid", "", nil); code != 200 {
		t.Errorf("another route of the same client: %d", code)
	}
}

func TestGuardPriorityClass(t *testing.T) {
	g := startGuard(t, `
[[guard.classes]]
name = "ops"
header = "X-Ops-Token"
secret = "let-me-in"
reserve = 0.5
`, nil, "-w", "2", "--max-queue", "4", testdata("wsgiapp.py")+":application")
	// The default class floods the two workers with slow requests.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	shed := 0
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clientFrom(fmt.Sprintf("127.0.1.%d", i+1))
			for ctx.Err() == nil {
				code, _, _ := guardFetch(c, "GET", g.url+"/slow?0.3", "", nil)
				if code == 503 {
					mu.Lock()
					shed++
					mu.Unlock()
					time.Sleep(20 * time.Millisecond) // a client that backs off a little
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	ops := clientFrom("127.0.0.10")
	var slowest time.Duration
	for range 10 {
		t0 := time.Now()
		code, _, body := guardFetch(ops, "GET", g.url+"/env", "", map[string]string{"X-Ops-Token": "let-me-in"})
		if code != 200 {
			t.Errorf("priority request: %d %s", code, body)
		} else if strings.Contains(body, "HTTP_X_OPS_TOKEN") {
			t.Error("the class header reached the app")
		}
		slowest = max(slowest, time.Since(t0))
	}
	cancel()
	wg.Wait()
	t.Logf("slowest priority request %v; default-class requests shed: %d", slowest, shed)
	if slowest > 150*time.Millisecond {
		t.Errorf("a priority request took %v: it waited behind the default class", slowest)
	}
	if shed == 0 {
		t.Error("the default class was never shed: the test did not saturate the pool")
	}
}

// TestGuardAppBans: corral.ban() from the app and the X-Corral-Ban
// response header ban the client, in spawned workers and in workers forked
// by the zygote (--preload) alike.
func TestGuardAppBans(t *testing.T) {
	for _, preload := range []bool{false, true} {
		t.Run(fmt.Sprintf("preload=%v", preload), func(t *testing.T) {
			args := []string{"-w", "1"}
			if preload {
				args = append(args, "--preload")
			}
			args = append(args, testdata("wsgiapp.py")+":application")
			testAppBans(t, startGuard(t, "", nil, args...))
		})
	}
}

func testAppBans(t *testing.T, g *guardServer) {
	c := clientFrom("127.0.0.11")
	if code, _, body := guardFetch(c, "GET", g.url+"/ban-me", "", nil); code != 200 || body != "True" {
		t.Fatalf("/ban-me: %d %q", code, body)
	}
	eventually(t, 5*time.Second, "the corral.ban() ban", func() bool {
		code, _, _ := guardFetch(clientFrom("127.0.0.11"), "GET", g.url+"/pid", "", nil)
		return code == 0 || code == 403
	})
	c2 := clientFrom("127.0.0.12")
	code, hdr, body := guardFetch(c2, "GET", g.url+"/ban-header", "", nil)
	if code != 200 || body != "banned by header" || hdr.Get("X-Corral-Ban") != "" {
		t.Errorf("/ban-header: %d %q, X-Corral-Ban %q visible to the client", code, body, hdr.Get("X-Corral-Ban"))
	}
	if code, _, _ := guardFetch(clientFrom("127.0.0.12"), "GET", g.url+"/pid", "", nil); code != 0 && code != 403 {
		t.Errorf("after X-Corral-Ban: %d", code)
	}
	out, _ := runCorral(t, "bans", "list", "--admin-bind", g.admin, "--json")
	var doc struct {
		Bans []struct{ Addr, Jail, Reason string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	got := map[string]string{}
	for _, b := range doc.Bans {
		got[b.Addr] = b.Jail + ": " + b.Reason
	}
	if got["127.0.0.11"] != "app: the test app bans" || got["127.0.0.12"] != "app: X-Corral-Ban response header" {
		t.Errorf("bans = %v", got)
	}
	if !bytes.Contains([]byte(g.log.String()), []byte("client banned client=127.0.0.11 jail=app")) {
		t.Errorf("no ban line:\n%s", g.log)
	}
}
