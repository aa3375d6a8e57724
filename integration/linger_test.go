package integration

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sendAll runs testdata/sendall.py: Python's http.client sends the whole
// request, body included, before it reads the answer, as requests and
// browsers do. It returns the status (0 on a failure such as a reset) and
// the failure or the body.
func sendAll(t *testing.T, env []string, url, method string, size int, opts ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(pythonBin, append([]string{testdata("sendall.py"), url, method, strconv.Itoa(size)}, opts...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sendall.py %s %s: %v\n%s", method, url, err, out)
	}
	var res struct {
		Status int
		Body   string
		Error  string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("sendall.py output %q: %v", out, err)
	}
	if res.Error != "" {
		return 0, res.Error
	}
	return res.Status, res.Body
}

// TestEarlyAnswersReachSenders: answers corral gives before it has read
// the request (413 for a declared or a chunked body over the limit, 414
// and 431 from the handler's checks, net/http's 431 for a head too large)
// reach a client that sends the whole request before it reads: corral
// half-closes and reads the rest (lingering close) instead of resetting
// the connection under the client's feet.
func TestEarlyAnswersReachSenders(t *testing.T) {
	calls := filepath.Join(t.TempDir(), "calls")
	s := startApp(t, []string{"CALLS_FILE=" + calls}, "-w", "1", "--max-body-size", "20M",
		"--limit-request-line", "200", "--limit-request-field_size", "100")
	const mb = 1000 * 1000
	cases := []struct {
		name string
		path string
		size int
		opts []string
		want int
	}{
		{"declared body over the limit", "/echo", 25 * mb, nil, 413},
		{"chunked body over the limit", "/echo", 25 * mb, []string{"chunked"}, 413},
		{"long request line", "/echo?" + strings.Repeat("a", 300), 5 * mb, nil, 414},
		{"long field", "/echo", 5 * mb, []string{"X-Long:" + strings.Repeat("b", 200)}, 431},
		{"long field, small body", "/echo", 100 << 10, []string{"X-Long:" + strings.Repeat("b", 200)}, 431},
		{"head too large", "/echo", 5 * mb, []string{"X-Huge=" + strconv.Itoa(256<<10)}, 431},
	}
	for _, c := range cases {
		code, body := sendAll(t, nil, s.url+c.path, "POST", c.size, c.opts...)
		if code != c.want {
			t.Errorf("%s: %d %q, want %d", c.name, code, body, c.want)
		}
	}
	if b, _ := os.ReadFile(calls); len(b) != 0 {
		t.Errorf("refused requests reached the app:\n%s", b)
	}
	checkHalfClose(t, s.addr)
	// A body within the limit still goes through on the same server.
	if code, body := sendAll(t, nil, s.url+"/digest", "POST", 15*mb); code != 200 || !strings.Contains(body, `"length": 15000000`) {
		t.Errorf("a body within the limit: %d %q", code, body)
	}
}

// TestEarlyAnswersReachSendersTLS is the 413 of TestEarlyAnswersReachSenders
// over HTTP/1.1 with TLS, where the lingering close reads the decrypted
// stream after sending close_notify.
func TestEarlyAnswersReachSendersTLS(t *testing.T) {
	dir := t.TempDir()
	c := newCert(t, "corral-test", false)
	certFile, keyFile := c.write(t, dir)
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, string(c.certPEM))
	_, addr := startTLS(t, certFile, keyFile, "--max-body-size", "20M")
	env := []string{"CAFILE=" + caFile}
	for _, chunked := range []bool{false, true} {
		var opts []string
		if chunked {
			opts = append(opts, "chunked")
		}
		if code, body := sendAll(t, env, "https://"+addr+"/echo", "POST", 25*1000*1000, opts...); code != 413 {
			t.Errorf("over TLS, chunked %v: %d %q, want 413", chunked, code, body)
		}
	}
	if code, body := sendAll(t, env, "https://"+addr+"/digest", "POST", 1000); code != 200 {
		t.Errorf("a small body over TLS: %d %q", code, body)
	}

	// HTTP/2 needs no lingering: the server ends the stream with
	// RST_STREAM NO_ERROR after the answer and the connection lives on.
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: c.pool()}, ForceAttemptHTTP2: true}}
	for range 2 {
		resp, err := client.Post("https://"+addr+"/echo", "application/octet-stream", bytes.NewReader(make([]byte, 25*1000*1000)))
		if err != nil {
			t.Fatalf("over HTTP/2: %v", err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 413 {
			t.Errorf("over HTTP/2: %s %d, want HTTP/2 413", resp.Proto, resp.StatusCode)
		}
	}
	reused := false
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/pid", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
	}))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !reused {
		t.Errorf("GET after the 413s over HTTP/2: %d, connection reused %v; want 200 on the same connection", resp.StatusCode, reused)
	}
}

// TestGuardAnswerReachesSender: the guard's 403 for a deny-listed client
// (here behind a trusted proxy, so the answer comes from the handler, not
// at accept) reaches a client still sending a large body.
func TestGuardAnswerReachesSender(t *testing.T) {
	g := startGuard(t, "deny = [\"203.0.113.9\"]\n", nil, "-w", "1", testdata("wsgiapp.py")+":application")
	start := time.Now()
	code, body := sendAll(t, nil, g.url+"/echo", "POST", 25*1000*1000, "X-Forwarded-For:203.0.113.9")
	if code != 403 {
		t.Errorf("deny-listed client behind a proxy: %d %q, want 403", code, body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the 403 took %v", d)
	}
}

// TestEarlyAnswerThroughWrappers: the half-close and the drain work
// through every layer a connection may have: the guard's per-client
// count, the connection limit and the PROXY protocol reader.
func TestEarlyAnswerThroughWrappers(t *testing.T) {
	g := startGuard(t, "max-conns-per-client = 8\n", nil, "-w", "1", "--max-body-size", "20M",
		"--proxy-protocol", "--forwarded-allow-ips", "10.9.9.9", "--max-connections", "100",
		testdata("wsgiapp.py")+":application")
	if code, body := sendAll(t, nil, g.url+"/echo", "POST", 25*1000*1000); code != 413 {
		t.Errorf("body over the limit: %d %q, want 413", code, body)
	}
	checkHalfClose(t, g.addr)
	body, _ := curlUnix(t, g.admin, "/status")
	var st struct {
		Linger struct{ Lingered, Skipped int } `json:"lingering_close"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Linger.Lingered < 2 || st.Linger.Skipped != 0 {
		t.Errorf("status lingering_close %+v (%v), want 2 lingered, none skipped:\n%s", st.Linger, err, body)
	}
}

// checkHalfClose: a client that declared a body over the limit of 20 MB,
// sent a part of it and went quiet reads the 413 and then, at once, the
// end of the stream: corral half-closed the connection rather than wait
// for the lingering timeout.
func checkHalfClose(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(10 * time.Second))
	fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 25000000\r\n\r\n%s", strings.Repeat("x", 1<<20))
	out, err := io.ReadAll(c)
	if statusOf(string(out)) != 413 || err != nil {
		t.Fatalf("answer %.100q, %v; want 413 and the end of the stream", out, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the end of the stream came after %v; want it right after the answer", d)
	}
}
