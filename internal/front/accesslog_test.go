package front

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"corral/internal/addrset"
	"corral/internal/logformat"
	"corral/internal/trust"
)

func logLine(t *testing.T, format string, e *Entry) string {
	t.Helper()
	parts, err := logformat.Parse(format)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	l := NewGunicornAccessLog(&buf, parts)
	l.LogEntry(e)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestGunicornFormat(t *testing.T) {
	r := httptest.NewRequest("GET", "/a%20b?x=1", nil)
	r.RemoteAddr = "192.0.2.7:4567"
	r.Header.Set("User-Agent", `evil "agent"`)
	r.Header.Set("Referer", "http://example.com/")
	r.Header.Set("X-Request-Id", "rid-1")
	r.SetBasicAuth("ann", "secret")
	e := &Entry{Req: r, Status: 201, Sent: 1234, Duration: 2*time.Second + 345678*time.Microsecond,
		Header: http.Header{"Content-Type": {"text/html"}}, Worker: 4242}

	got := logLine(t, logformat.Default, e)
	// [07/Dec/2026:05:11:58 +0000] in the local zone; check around it.
	i, j := strings.IndexByte(got, '['), strings.IndexByte(got, ']')
	if i < 0 || j < i {
		t.Fatalf("no [time] in %q", got)
	}
	if _, err := time.Parse("02/Jan/2006:15:04:05 -0700", got[i+1:j]); err != nil {
		t.Errorf("time %q: %v", got[i+1:j], err)
	}
	want := `192.0.2.7 - ann ` + got[i:j+1] + ` "GET /a%20b?x=1 HTTP/1.1" 201 1234 "http://example.com/" "evil \"agent\""`
	if got != want {
		t.Errorf("default format:\n got %s\nwant %s", got, want)
	}

	for _, c := range []struct{ format, want string }{
		{`%(m)s %(U)s %(q)s %(H)s`, "GET /a b x=1 HTTP/1.1"},
		{`%(T)s %(D)s %(M)s %(L)s`, "2 2345678 2345 2.345678"},
		{`%(p)s %(B)s %(b)s`, "<4242> 1234 1234"},
		{`%({x-request-id}i)s %({X-REQUEST-ID}i)s %({content-type}o)s %({missing}i)s %({missing}o)s`, "rid-1 rid-1 text/html - -"},
		{`%({HTTP_X_REQUEST_ID}e)s %({REMOTE_ADDR}e)s %({remote_port}e)s %({wsgi.url_scheme}e)s %({nope}e)s`, "rid-1 192.0.2.7 4567 http -"},
		{`%(zz)s %(l)s 100%%`, "- - 100%"},
	} {
		if got := logLine(t, c.format, e); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.format, got, c.want)
		}
	}

	// No worker (a static file): corral's pid, as gunicorn's is its own.
	e.Worker = 0
	if got, want := logLine(t, `%(p)s`, e), "<"+strconv.Itoa(os.Getpid())+">"; got != want {
		t.Errorf("%%(p)s without a worker = %s, want %s", got, want)
	}
	// A client cannot break the line.
	r.Header.Set("User-Agent", "a\nb")
	if got := logLine(t, `%(a)s`, e); got != `a\x0ab` {
		t.Errorf("control byte: %q", got)
	}
}

func TestRequestIDs(t *testing.T) {
	g := NewRequestIDs("x-request-id", trustLoopback(t))
	if g.Header() != "X-Request-Id" {
		t.Errorf("Header = %q", g.Header())
	}
	a, b := g.New(), g.New()
	if a == b || len(a) != 33 || !ValidRequestID(a) {
		t.Errorf("New gave %q then %q", a, b)
	}
	for _, c := range []struct {
		remote, sent, want string // want "" = a new one
	}{
		{"127.0.0.1:5000", "abc-123", "abc-123"},
		{"192.0.2.1:5000", "abc-123", ""}, // untrusted peer
		{"127.0.0.1:5000", `bad "id"`, ""},
		{"127.0.0.1:5000", strings.Repeat("a", MaxRequestIDLen+1), ""},
		{"127.0.0.1:5000", "", ""},
		{"@", "from-unix", "from-unix"}, // a Unix-socket peer is trusted
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.sent != "" {
			r.Header.Set("X-Request-Id", c.sent)
			r.Header.Add("X-Request-Id", "second")
		}
		w := httptest.NewRecorder()
		var seen []string
		g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header["X-Request-Id"] })).ServeHTTP(w, r)
		got := w.Header()["X-Request-Id"]
		if len(seen) != 1 || len(got) != 1 || seen[0] != got[0] {
			t.Errorf("%s sent %q: the app saw %q, the client got %q", c.remote, c.sent, seen, got)
			continue
		}
		if c.want != "" && got[0] != c.want || c.want == "" && (got[0] == c.sent || !strings.HasPrefix(got[0], g.prefix)) {
			t.Errorf("%s sent %q: ID %q, want %q", c.remote, c.sent, got[0], c.want)
		}
	}
}

func trustLoopback(t *testing.T) trust.Proxies {
	t.Helper()
	return trust.New(addrset.MustParse("127.0.0.1", "::1"))
}

// The ID corral adds does not count against the client's header limits.
func TestRequestIDNotCounted(t *testing.T) {
	g := NewRequestIDs("X-Request-ID", trustLoopback(t))
	h := New(Config{RequestIDs: g, LimitRequestFields: 2})
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	r.Header.Set("A", "1")
	r.Header.Set("B", "2")
	g.Assign(httptest.NewRecorder(), r)
	if code, msg := h.check(r); code != 0 {
		t.Errorf("two fields and the request ID: %d %s, want accepted", code, msg)
	}
	r.Header.Set("C", "3")
	if code, _ := h.check(r); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("three fields: %d, want 431", code)
	}
}
