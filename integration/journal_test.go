package integration

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// idApp answers the request ID its environ got; /own answers its own ID.
const idApp = `
def app(environ, start_response):
    hdrs = [("Content-Type", "text/plain")]
    if environ["PATH_INFO"] == "/own":
        hdrs.append(("X-Request-ID", "app-own"))
    start_response("200 OK", hdrs)
    return [environ.get("HTTP_X_REQUEST_ID", "none").encode()]
`

// getID GETs path with an optional X-Request-ID and returns the body and
// the response's X-Request-Id values.
func getID(t *testing.T, url, path, id string) (string, []string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+path, nil)
	if id != "" {
		req.Header.Set("X-Request-ID", id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.Header.Values("X-Request-Id")
}

// Request IDs: made by corral, or kept from a trusted proxy; passed to the
// app and back; in a gunicorn-format access log.
func TestRequestIDAndAccessLogFormat(t *testing.T) {
	dir := t.TempDir()
	appFile := filepath.Join(dir, "idapp.py")
	writeFile(t, appFile, idApp)
	logFile := filepath.Join(dir, "access.log")
	s := start(t, nil, "-w", "1", appFile+":app", "--access-logfile", logFile,
		"--access-logformat", `%(h)s "%(r)s" %(s)s %(b)s %(p)s %({x-request-id}i)s %({X-Request-ID}o)s %(zz)s %({HTTP_X_REQUEST_ID}e)s`)

	body, ids := getID(t, s.url, "/a", "")
	if len(ids) != 1 || ids[0] != body || len(body) != 33 {
		t.Errorf("made ID: the app saw %q, the client got %q; want one 33-character ID, the same", body, ids)
	}
	made := body
	// 127.0.0.1 is a trusted proxy by default (--forwarded-allow-ips).
	if body, ids := getID(t, s.url, "/b", "trace-42"); body != "trace-42" || len(ids) != 1 || ids[0] != "trace-42" {
		t.Errorf("proxy's ID: the app saw %q, the client got %q; want trace-42", body, ids)
	}
	if body, ids := getID(t, s.url, "/c", `no spaces "or quotes"`); len(body) != 33 || len(ids) != 1 || ids[0] != body {
		t.Errorf("invalid ID: the app saw %q, the client got %q; want a new one", body, ids)
	}
	if _, ids := getID(t, s.url, "/own", ""); len(ids) != 1 || ids[0] != "app-own" {
		t.Errorf("the app's own X-Request-ID: client got %q, want only app-own", ids)
	}

	s.signal(syscall.SIGTERM)
	s.wait(30 * time.Second)
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	pids := s.workerPids()
	if len(lines) != 4 || len(pids) == 0 {
		t.Fatalf("access log has %d lines, want 4 (worker pids %v):\n%s", len(lines), pids, data)
	}
	want := fmt.Sprintf(`127.0.0.1 "GET /a HTTP/1.1" 200 33 <%d> %s %s - %s`, pids[0], made, made, made)
	if lines[0] != want {
		t.Errorf("access log line:\n got %s\nwant %s", lines[0], want)
	}
	if !strings.HasSuffix(lines[1], " trace-42 trace-42 - trace-42") {
		t.Errorf("access log line of the proxy's ID: %s", lines[1])
	}

	// An untrusted peer's ID is replaced; off turns request IDs off.
	s2 := start(t, nil, "-w", "1", appFile+":app", "--forwarded-allow-ips", "192.0.2.1")
	if body, ids := getID(t, s2.url, "/", "trace-42"); body == "trace-42" || len(ids) != 1 || ids[0] != body {
		t.Errorf("untrusted peer's ID: the app saw %q, the client got %q; want a new one", body, ids)
	}
	s3 := start(t, nil, "-w", "1", appFile+":app", "--request-id-header", "off")
	if body, ids := getID(t, s3.url, "/", ""); body != "none" || len(ids) != 0 {
		t.Errorf("--request-id-header off: the app saw %q, the client got %q; want none and no header", body, ids)
	}
}

// An ASGI app finds the ID among its scope's headers.
func TestRequestIDASGI(t *testing.T) {
	s := start(t, nil, "-w", "1", "--chdir", testdata(""), "asgi_raw:app")
	body, ids := getID(t, s.url, "/scope", "")
	if len(ids) != 1 || !strings.Contains(body, `"x-request-id"`) || !strings.Contains(body, ids[0]) {
		t.Errorf("ASGI scope %s lacks x-request-id %q", body, ids)
	}
}

func openJournal(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The journal of a Flask app: one row per request with its route, worker,
// client, sizes and ID; corral journal reads it.
func TestJournalFlask(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal", "requests.db")
	s := start(t, nil, "-w", "2", "--chdir", "examples/flaskapp", "app:app", "--journal", path)
	ids := map[string]string{} // request ID → path
	get := func(p string) {
		resp, err := http.Get(s.url + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ids[resp.Header.Get("X-Request-Id")] = p
	}
	for range 3 {
		get("/user/ann")
	}
	get("/2024")
	get("/nope/nope")
	resp, err := http.Post(s.url+"/login", "application/x-www-form-urlencoded", strings.NewReader("user=admin&password=secret"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ids[resp.Header.Get("X-Request-Id")] = "/login"
	s.signal(syscall.SIGTERM) // the rows still queued are written on the way out
	s.wait(30 * time.Second)

	db := openJournal(t, path)
	rows, err := db.Query(`SELECT method, path, coalesce(route, ''), status, bytes_in, bytes_out, client, worker, request_id FROM requests`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	pids := s.workerPids()
	n := 0
	for rows.Next() {
		var method, p, route, client, id string
		var status, worker int
		var in, out int64
		if err := rows.Scan(&method, &p, &route, &status, &in, &out, &client, &worker, &id); err != nil {
			t.Fatal(err)
		}
		n++
		wantRoute, wantStatus := map[string]string{"/user/ann": "/user/<username>", "/2024": "/<int:year>", "/login": "/login"}[p],
			map[string]int{"/user/ann": 500, "/2024": 200, "/nope/nope": 404, "/login": 200}[p]
		if ids[id] != p || route != wantRoute || status != wantStatus || client != "127.0.0.1" || !slices.Contains(pids, worker) || out == 0 {
			t.Errorf("row %s %s route %q status %d in %d out %d client %s worker %d id %s; want route %q status %d, a worker of %v, the ID answered",
				method, p, route, status, in, out, client, worker, id, wantRoute, wantStatus, pids)
		}
		if p == "/login" && in != int64(len("user=admin&password=secret")) {
			t.Errorf("bytes_in of the POST = %d", in)
		}
	}
	if n != 6 {
		t.Errorf("%d rows, want 6", n)
	}

	out, code := runCorral(t, "journal", "top", "--journal", path, "--since", "1h")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 5 || !strings.HasPrefix(lines[1], "3 ") || !strings.HasSuffix(lines[1], "/user/<username>") {
		t.Errorf("corral journal top (exit %d):\n%s", code, out)
	}
	out, code = runCorral(t, "journal", "errors", "--journal", path)
	if code != 0 || !strings.Contains(out, "500") || !strings.Contains(out, "404") || strings.Contains(out, "/2024") {
		t.Errorf("corral journal errors (exit %d):\n%s", code, out)
	}
	if out, code = runCorral(t, "journal", "slow", "--journal", filepath.Join(t.TempDir(), "none.db")); code != 2 {
		t.Errorf("corral journal of no journal: exit %d, want 2:\n%s", code, out)
	}
}

// The requests the guard answers itself (here --strict-routes' 404 for a
// path the app has no route for) are journaled and logged too, with no
// worker.
func TestJournalGuardAnswers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "requests.db")
	s := start(t, nil, "-w", "1", "--chdir", "examples/flaskapp", "app:app", "--journal", path,
		"--strict-routes", "--access-logfile", "-")
	if code, _ := s.get("/wp-login.php"); code != 404 {
		t.Fatalf("GET /wp-login.php: %d, want the guard's 404", code)
	}
	if code, _ := s.get("/2024"); code != 200 {
		t.Fatalf("GET /2024: %d", code)
	}
	s.signal(syscall.SIGTERM)
	s.wait(30 * time.Second)
	db := openJournal(t, path)
	var status int
	var worker sql.NullInt64
	var id string
	err := db.QueryRow(`SELECT status, worker, request_id FROM requests WHERE path = '/wp-login.php'`).Scan(&status, &worker, &id)
	if err != nil || status != 404 || (worker.Valid && worker.Int64 != 0) || id == "" {
		t.Errorf("journal row of the guard's 404: status %d worker %v id %q err %v", status, worker, id, err)
	}
	if !strings.Contains(s.log.String(), `"GET /wp-login.php HTTP/1.1" 404`) {
		t.Errorf("no access log line for the guard's 404:\n%s", s.log.String())
	}
}

// litestreamBin is the pinned Litestream scripts/test builds.
func litestreamBin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(repoRoot, ".cache", "bin", "litestream")
	if _, err := os.Stat(bin); err != nil {
		missingTool(t, "litestream not built at %s (scripts/test builds it)", bin)
	}
	return bin
}

// The journal replicated by a real Litestream while load runs: after
// SIGKILL, a restored copy holds every request answered before the last
// flush window.
func TestJournalLitestream(t *testing.T) {
	ls := litestreamBin(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "journal.db")
	replica := filepath.Join(dir, "replica")
	const flush = 300 * time.Millisecond
	cfg := filepath.Join(dir, "litestream.yml")
	writeFile(t, cfg, fmt.Sprintf(`dbs:
  - path: %s
    monitor-interval: 100ms
    replica:
      type: file
      path: %s
      sync-interval: 100ms
`, dbPath, replica))

	s := start(t, nil, "-w", "2", "--chdir", testdata(""), "wsgiapp:app", "--journal", dbPath,
		"--journal-flush-interval", flush.String())
	lsLog := &syncBuffer{}
	lsCmd := exec.Command(ls, "replicate", "-config", cfg)
	lsCmd.Stdout, lsCmd.Stderr = lsLog, lsLog
	if err := lsCmd.Start(); err != nil {
		t.Fatal(err)
	}
	lsDone := make(chan struct{})
	go func() { lsCmd.Wait(); close(lsDone) }()
	t.Cleanup(func() {
		lsCmd.Process.Kill()
		<-lsDone
	})

	// Load from four clients; each answer's ID and when it arrived.
	type answer struct {
		id string
		at time.Time
	}
	var mu sync.Mutex
	var answers []answer
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(s.url + "/")
				if err != nil {
					return // corral was killed
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				at := time.Now()
				mu.Lock()
				answers = append(answers, answer{resp.Header.Get("X-Request-Id"), at})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(3 * time.Second)
	killed := time.Now()
	if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	s.wait(10 * time.Second)

	// Litestream ships what reached the WAL; give it a few sync intervals,
	// then stop it (it syncs once more on the way out).
	time.Sleep(time.Second)
	lsCmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-lsDone:
	case <-time.After(30 * time.Second):
		t.Fatalf("litestream did not stop:\n%s", lsLog)
	}

	restored := filepath.Join(dir, "restored.db")
	out, err := exec.Command(ls, "restore", "-o", restored, "file://"+replica).CombinedOutput()
	if err != nil {
		t.Fatalf("litestream restore: %v\n%s\nreplicate log:\n%s", err, out, lsLog)
	}
	db := openJournal(t, restored)
	got := map[string]bool{}
	rows, err := db.Query(`SELECT request_id FROM requests`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got[id] = true
	}
	rows.Close()

	// A row is committed within one flush window of its answer; a second
	// window covers the commit itself on a loaded machine.
	cut := killed.Add(-2 * flush)
	checked, missing := 0, 0
	for _, a := range answers {
		if a.at.Before(cut) {
			checked++
			if !got[a.id] {
				missing++
			}
		}
	}
	t.Logf("%d answers, %d before the last flush window, %d rows restored", len(answers), checked, len(got))
	if checked < 50 {
		t.Fatalf("only %d requests answered before the cut: too little load to tell", checked)
	}
	if missing > 0 {
		t.Errorf("%d of the %d requests answered before the last flush window are not in the restored journal", missing, checked)
	}
}
