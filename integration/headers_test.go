package integration

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// teapot is bareapp.py's answer body.
const teapot = "I'm a teapot: short and stout.\n"

// framingHeaders are the fields corral may add to an app's response:
// what HTTP framing needs, nothing about the content.
var framingHeaders = []string{"Date", "Content-Length", "Transfer-Encoding", "Connection"}

// requestIDHeader is the one field corral adds of its own accord
// (--request-id-header, docs/observability.md): every answer has it.
const requestIDHeader = "X-Request-Id"

// bareRoutes are bareapp.py's routes: the headers the app sends (canonical
// names), the status and the body.
var bareRoutes = []struct {
	path   string
	code   int
	app    []string
	body   string
	length bool // the response carries a Content-Length (over HTTP/1.1)
}{
	{"/teapot", 418, nil, teapot, true},
	{"/status/418", 418, []string{"X-More-Info", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Content-Length"}, teapot, true},
	{"/stream", 200, []string{"X-Kind"}, "part one, part two", false},
	{"/empty", 200, []string{"X-Kind"}, "", true},
}

// checkHeaders reports fields of h that the app did not send and framing
// does not need.
func checkHeaders(t *testing.T, what string, h http.Header, app []string) {
	t.Helper()
	for k := range h {
		if !slices.Contains(app, k) && !slices.Contains(framingHeaders, k) && k != requestIDHeader {
			t.Errorf("%s: corral added %s: %q", what, k, h[k])
		}
	}
	if len(h[requestIDHeader]) != 1 {
		t.Errorf("%s: %s %q, want one", what, requestIDHeader, h[requestIDHeader])
	}
	for _, k := range app {
		if _, ok := h[k]; !ok {
			t.Errorf("%s: the app's %s is missing", what, k)
		}
	}
}

// TestNoInventedHeaders: an app that sends no Content-Type gets none
// added (net/http would sniff one), over HTTP/1.0 and HTTP/1.1, for GET
// and HEAD, with inline, streamed and empty bodies.
func TestNoInventedHeaders(t *testing.T) {
	s := start(t, nil, "-w", "1", testdata("bareapp.py")+":application")
	for _, r := range bareRoutes {
		for _, req := range []string{
			"GET " + r.path + " HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET " + r.path + " HTTP/1.0\r\n\r\n",
			"HEAD " + r.path + " HTTP/1.1\r\nHost: x\r\n\r\n",
		} {
			what, _, _ := strings.Cut(req, "\r\n")
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			method, _, _ := strings.Cut(req, " ")
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			b, err := io.ReadAll(resp.Body)
			c.Close()
			if err != nil {
				t.Fatalf("%s: body: %v", what, err)
			}
			want := r.body
			if method == "HEAD" {
				want = ""
			}
			if resp.StatusCode != r.code || string(b) != want {
				t.Errorf("%s: %d %q, want %d %q", what, resp.StatusCode, b, r.code, want)
			}
			checkHeaders(t, what, resp.Header, r.app)
			if method == "GET" && resp.ProtoAtLeast(1, 1) && r.length != (resp.ContentLength >= 0) {
				t.Errorf("%s: Content-Length %d, want one: %v", what, resp.ContentLength, r.length)
			}
		}
	}
}

// TestNoInventedHeadersTLS is TestNoInventedHeaders over HTTP/2 and
// HTTP/1.1 with TLS: net/http's HTTP/2 server sniffs types too.
func TestNoInventedHeadersTLS(t *testing.T) {
	dir := t.TempDir()
	c := newCert(t, "corral-test", false)
	certFile, keyFile := c.write(t, dir)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	launch(t, corralArgs(addr, "--certfile", certFile, "--keyfile", keyFile, testdata("bareapp.py")+":application"), 1, nil)
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.pool()}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
		for _, r := range bareRoutes {
			for _, method := range []string{"GET", "HEAD"} {
				req, _ := http.NewRequest(method, "https://"+addr+r.path, nil)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				what := method + " " + r.path + " over " + resp.Proto
				if (resp.ProtoMajor == 2) != h2 {
					t.Errorf("%s: want HTTP/2 %v", what, h2)
				}
				want := r.body
				if method == "HEAD" {
					want = ""
				}
				if resp.StatusCode != r.code || string(b) != want {
					t.Errorf("%s: %d %q, want %d %q", what, resp.StatusCode, b, r.code, want)
				}
				checkHeaders(t, what, resp.Header, r.app)
			}
		}
		tr.CloseIdleConnections()
	}
}

// corralArgs is a corral command on addr with --python and one worker;
// args end with the app.
func corralArgs(addr string, args ...string) *exec.Cmd {
	full := append([]string{"--python", pythonBin, "-w", "1", "-b", addr}, args...)
	return exec.Command(corralBin, full...)
}
