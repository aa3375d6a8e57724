package integration

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corral/internal/conformance"
)

// TestConformanceProxyProtocol replays the corpus files that start with a
// PROXY protocol header (pp_*) against corral with --proxy-protocol, from
// a trusted peer (127.0.0.1, the default --forwarded-allow-ips): valid ones
// reach the app, invalid ones are refused. It then checks that the app sees
// the client the header names, and that the same headers from an untrusted
// peer are refused with nothing reaching the app.
func TestConformanceProxyProtocol(t *testing.T) {
	calls := filepath.Join(t.TempDir(), "calls")
	s := startApp(t, []string{"CALLS_FILE=" + calls}, "-w", "2", "--proxy-protocol")
	appCalls := func() int {
		b, _ := os.ReadFile(calls)
		return bytes.Count(b, []byte("\n")) + strings.Count(s.log.String(), "application error")
	}
	files, err := filepath.Glob(testdata("conformance/gunicorn-requests/*/pp_*.http"))
	if err != nil || len(files) != 8 {
		t.Fatalf("want the 8 pp_* corpus files, got %d (%v)", len(files), err)
	}
	// valid/pp_02 is an HTTP/1.1 request without Host: refused like the
	// other corpus files without Host (see deviations).
	want := map[string]string{"valid/pp_02.http": "400"}
	corpus := map[string][]byte{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
		corpus[name] = conformance.Decode(src)
	}
	for _, name := range sortedKeys(corpus) {
		t.Run(name, func(t *testing.T) {
			before := appCalls()
			a := exchange(t, s.addr, corpus[name], time.Second)
			got := a.outcome(appCalls() - before)
			w, ok := want[name]
			switch {
			case ok && got != w:
				t.Errorf("got %s (%q), want %s", got, a.first, w)
			case !ok && strings.HasPrefix(name, "valid/") && got != "app":
				t.Errorf("got %s (%q), want it to reach the app", got, a.first)
			case !ok && strings.HasPrefix(name, "invalid/") && !(got == "closed" || got[0] == '4' || got[0] == '5'):
				t.Errorf("got %s (%q), want it refused", got, a.first)
			}
		})
	}

	// The client the header names is the app's REMOTE_ADDR; without a
	// header, the peer is.
	for _, tt := range []struct {
		file, path, addr, port string
	}{
		{"valid/pp_01.http", "/stuff/here", "192.168.0.1", "56324"},
		{"valid/pp_03.http", "/no/proxy/header", "127.0.0.1", ""},
		{"valid/pp_04.http", "/proxy/v2/ipv4", "192.168.1.10", "12345"},
		{"valid/pp_05.http", "/proxy/v2/ipv6", "2001:db8::1", "54321"},
	} {
		req := bytes.Replace(corpus[tt.file], []byte(tt.path), []byte("/env"), 1)
		a := exchange(t, s.addr, req, time.Second)
		if a.status != 200 {
			t.Errorf("%s as /env: %q", tt.file, a.first)
			continue
		}
		env := environOf(t, bodyOf(t, string(a.out)))
		if env["REMOTE_ADDR"] != tt.addr || tt.port != "" && env["REMOTE_PORT"] != tt.port {
			t.Errorf("%s: REMOTE_ADDR %v REMOTE_PORT %v, want %s %s", tt.file, env["REMOTE_ADDR"], env["REMOTE_PORT"], tt.addr, tt.port)
		}
	}

	// From an untrusted peer every header is refused unanswered.
	for _, name := range []string{"valid/pp_01.http", "valid/pp_04.http", "valid/pp_05.http"} {
		before := appCalls()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(corpus[name])
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		out, _ := io.ReadAll(c)
		c.Close()
		if len(out) > 0 || appCalls() != before {
			t.Errorf("%s from untrusted 127.0.0.2: answered %q, %d app calls; want the connection closed", name, out, appCalls()-before)
		}
	}
}
