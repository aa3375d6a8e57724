package h1

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
)

func TestParseHead(t *testing.T) {
	o := newOracle(t)
	const host = "Host: example.com\r\n"
	for _, c := range []struct {
		name, in string
		want     parseStatus
	}{
		{"simple", "GET / HTTP/1.1\r\n" + host + "\r\n", parsed},
		{"query", "GET /a/b?c=d&e HTTP/1.1\r\n" + host + "\r\n", parsed},
		{"escaped path", "GET /a%2Fb%20c HTTP/1.1\r\n" + host + "\r\n", parsed},
		{"http/1.0 no host", "GET / HTTP/1.0\r\n\r\n", parsed},
		{"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", parsed},
		{"connection close", "GET / HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n", parsed},
		{"connection list", "GET / HTTP/1.1\r\n" + host + "Connection: foo, CLOSE \r\nConnection: x\r\n\r\n", parsed},
		{"close in second connection field", "GET / HTTP/1.1\r\n" + host + "Connection: x\r\nConnection: close\r\n\r\n", parsed},
		{"canonical keys and repeats", "GET / HTTP/1.1\r\n" + host + "x-foo: 1\r\nX-FOO:2\r\naccept-encoding:\tgzip \t\r\n\r\n", parsed},
		{"empty value", "GET / HTTP/1.1\r\n" + host + "X-Empty:\r\nX-Blank:   \r\n\r\n", parsed},
		{"empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", parsed},
		{"host with port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", parsed},
		{"obs-text value", "GET / HTTP/1.1\r\n" + host + "X-Name: caf\xc3\xa9\r\n\r\n", parsed},
		{"pragma no-cache", "GET / HTTP/1.1\r\n" + host + "Pragma: no-cache\r\n\r\n", parsed},
		{"pragma with cache-control", "GET / HTTP/1.1\r\n" + host + "Pragma: no-cache\r\nCache-Control: max-age=1\r\n\r\n", parsed},
		{"content-length 0", "POST /form HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n", parsed},
		{"extension method", "PURGE /x HTTP/1.1\r\n" + host + "\r\n", parsed},
		{"underscore name", "GET / HTTP/1.1\r\n" + host + "X_Foo: 1\r\n\r\n", parsed},
		{"double slash target", "GET //x/y HTTP/1.1\r\n" + host + "\r\n", parsed},
		{"trailer field kept", "GET / HTTP/1.1\r\n" + host + "Trailer: X\r\n\r\n", parsed},
		{"pipelined rest ignored", "GET / HTTP/1.1\r\n" + host + "\r\nGET /next HTTP/1.1\r\n", parsed},

		{"incomplete line", "GET / HTTP/1.1", needMore},
		{"incomplete head", "GET / HTTP/1.1\r\n" + host, needMore},
		{"half blank line", "GET / HTTP/1.1\r\n" + host + "\r", needMore},
		{"empty", "", needMore},

		{"missing host", "GET / HTTP/1.1\r\n\r\n", declined},
		{"two hosts", "GET / HTTP/1.1\r\n" + host + host + "\r\n", declined},
		{"two hosts http/1.0", "GET / HTTP/1.0\r\n" + host + host + "\r\n", declined},
		{"bad host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", declined},
		{"host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", declined},
		{"leading CRLF", "\r\nGET / HTTP/1.1\r\n" + host + "\r\n", declined},
		{"bare LF request line", "GET / HTTP/1.1\n" + host + "\r\n", declined},
		{"bare LF field", "GET / HTTP/1.1\r\n" + "Host: a\n\r\n\r\n", declined},
		{"bare LF end", "GET / HTTP/1.1\r\n" + host + "\n", declined},
		{"bare CR", "GET / HTTP/1.1\r\n" + "Host: a\rb\r\n\r\n", declined},
		{"obs-fold", "GET / HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n", declined},
		{"space before first field", "GET / HTTP/1.1\r\n " + host + "\r\n", declined},
		{"space before colon", "GET / HTTP/1.1\r\n" + host + "X : a\r\n\r\n", declined},
		{"no colon", "GET / HTTP/1.1\r\n" + host + "X\r\n\r\n", declined},
		{"empty name", "GET / HTTP/1.1\r\n" + host + ": a\r\n\r\n", declined},
		{"bad name byte", "GET / HTTP/1.1\r\n" + host + "X(y): a\r\n\r\n", declined},
		{"control in value", "GET / HTTP/1.1\r\n" + host + "X: a\x01b\r\n\r\n", declined},
		{"NUL in value", "GET / HTTP/1.1\r\n" + host + "X: a\x00b\r\n\r\n", declined},
		{"DEL in value", "GET / HTTP/1.1\r\n" + host + "X: a\x7fb\r\n\r\n", declined},
		{"http/1.2", "GET / HTTP/1.2\r\n" + host + "\r\n", declined},
		{"http/2.0", "GET / HTTP/2.0\r\n" + host + "\r\n", declined},
		{"lower-case version", "GET / http/1.1\r\n" + host + "\r\n", declined},
		{"h2c preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", declined},
		{"connect", "CONNECT example.com:443 HTTP/1.1\r\n" + host + "\r\n", declined},
		{"connect path", "CONNECT /x HTTP/1.1\r\n" + host + "\r\n", declined},
		{"options star", "OPTIONS * HTTP/1.1\r\n" + host + "\r\n", declined},
		{"absolute form", "GET http://example.com/ HTTP/1.1\r\n" + host + "\r\n", declined},
		{"relative target", "GET x HTTP/1.1\r\n" + host + "\r\n", declined},
		{"empty target", "GET  HTTP/1.1\r\n" + host + "\r\n", declined},
		{"non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" + host + "\r\n", declined},
		{"extra space", "GET / HTTP/1.1 \r\n" + host + "\r\n", declined},
		{"no version", "GET /\r\n" + host + "\r\n", declined},
		{"bad method", "G(T / HTTP/1.1\r\n" + host + "\r\n", declined},
		{"empty method", " / HTTP/1.1\r\n" + host + "\r\n", declined},
		{"transfer-encoding", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n", declined},
		{"transfer-encoding http/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", declined},
		{"cl and te", "POST / HTTP/1.1\r\n" + host + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", declined},
		{"content-length body", "POST / HTTP/1.1\r\n" + host + "Content-Length: 3\r\n\r\nabc", declined},
		{"content-length 00", "POST / HTTP/1.1\r\n" + host + "Content-Length: 00\r\n\r\n", declined},
		{"content-length twice", "POST / HTTP/1.1\r\n" + host + "Content-Length: 0\r\nContent-Length: 0\r\n\r\n", declined},
		{"content-length list", "POST / HTTP/1.1\r\n" + host + "Content-Length: 0, 0\r\n\r\n", declined},
		{"content-length bad", "POST / HTTP/1.1\r\n" + host + "Content-Length: -0\r\n\r\n", declined},
		{"expect", "POST / HTTP/1.1\r\n" + host + "Expect: 100-continue\r\n\r\n", declined},
		{"upgrade", "GET / HTTP/1.1\r\n" + host + "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n", declined},
		{"upgrade token only", "GET / HTTP/1.1\r\n" + host + "Connection: keep-alive, upgrade\r\n\r\n", declined},
		{"too long", "GET / HTTP/1.1\r\n" + host + "X: " + strings.Repeat("a", http.DefaultMaxHeaderBytes) + "\r\n\r\n", declined},
		{"too long incomplete", "GET / HTTP/1.1\r\n" + host + "X: " + strings.Repeat("a", http.DefaultMaxHeaderBytes), declined},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, answer := checkParsed(t, o, []byte(c.in))
			if got != c.want {
				t.Fatalf("parseHead(%q) = %v, want %v", c.in, got, c.want)
			}
			if got == declined {
				// Not needed for correctness, but says why a decline is
				// not a loss: mostly net/http refuses these too.
				if r, answer := o.view([]byte(c.in)); r == nil {
					t.Logf("net/http refuses it too: %q", firstLine(answer))
				} else {
					t.Logf("net/http serves it; the fast path hands it over")
				}
			}
			_ = answer
		})
	}
}

// TestParseHeadFromScansOnce: a head trickled in a byte at a time is
// checked line by line once: the scan offset stops at the end of the
// last complete line, and parseHeadFrom decides as parseHead does.
func TestParseHeadFromScansOnce(t *testing.T) {
	head := "GET /a?b=c HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n"
	checkIncremental(t, []byte(head))
	scanned := 0
	part := "GET /a?b=c HTTP/1.1\r\nHost: x\r\nUser-Ag"
	if _, _, st := parseHeadFrom(context.Background(), []byte(part), 0, &scanned); st != needMore {
		t.Fatalf("%q: %v, want needMore", part, st)
	}
	if want := len("GET /a?b=c HTTP/1.1\r\nHost: x\r\n"); scanned != want {
		t.Errorf("scanned %d bytes, want %d (the complete lines)", scanned, want)
	}
	// A bad line that completes later is still refused at once.
	bad := part + "ent: t\r\nBad Name: v\r\n"
	if _, _, st := parseHeadFrom(context.Background(), []byte(bad), 0, &scanned); st != declined {
		t.Errorf("%q after %d scanned bytes: %v, want declined", bad, scanned, st)
	}
}

func TestParseHeadLimit(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	if _, n, st := parseHead(context.Background(), []byte(head), len(head)); st != parsed || n != len(head) {
		t.Errorf("at the limit: got %v, %d; want parsed, %d", st, n, len(head))
	}
	if _, _, st := parseHead(context.Background(), []byte(head), len(head)-1); st != declined {
		t.Errorf("over the limit: got %v, want declined", st)
	}
	if _, _, st := parseHead(context.Background(), []byte(head[:len(head)-1]), len(head)-1); st != declined {
		t.Errorf("incomplete at the limit: got %v, want declined", st)
	}
}

// TestParseHeadCorpus runs gunicorn's corpus through parseHead: every
// parsed head must be what net/http's server makes of it, and every
// invalid one must be declined unless net/http accepts it the same way.
func TestParseHeadCorpus(t *testing.T) {
	o := newOracle(t)
	files := corpus(t)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	counts := map[string]int{}
	for _, name := range names {
		buf := files[name]
		st, _ := checkParsed(t, o, buf)
		checkIncremental(t, buf)
		counts[strings.Split(name, "/")[0]+" "+st.String()]++
		if st == parsed && strings.HasPrefix(name, "invalid/") {
			t.Logf("%s: parsed, as net/http's server does (checked above)", name)
		}
		// Every prefix must be needMore or the same decision: the fast
		// path must not decide on bytes it has not seen yet.
		for i := range len(buf) {
			pst, _ := checkParsed(t, nil, buf[:i])
			if pst == parsed && st != parsed {
				t.Errorf("%s: a prefix of %d bytes parsed, the whole file %v", name, i, st)
				break
			}
		}
	}
	t.Logf("corpus: %v", counts)
}

// FuzzParseHead holds parseHead to net/http's server: whatever it
// parses, net/http must parse the same way (see checkParsed).
func FuzzParseHead(f *testing.F) {
	for _, buf := range corpus(f) {
		f.Add(buf)
	}
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /x?y HTTP/1.0\r\nConnection: keep-alive\r\nX: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	o := newOracle(f)
	f.Fuzz(func(t *testing.T, buf []byte) {
		checkParsed(t, o, buf)
		checkIncremental(t, buf)
	})
}

func firstLine(s string) string {
	if i := strings.Index(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

func TestHasToken(t *testing.T) {
	for _, c := range []struct {
		v, token string
		want     bool
	}{
		{"close", "close", true},
		{"Close", "close", true},
		{"keep-alive, close", "close", true},
		{"x,close,y", "close", true},
		{"closed", "close", false},
		{"enclose", "close", false},
		{"", "close", false},
		{"\tCLOSE\t", "close", true},
	} {
		if got := hasToken(c.v, c.token); got != c.want {
			t.Errorf("hasToken(%q, %q) = %v, want %v", c.v, c.token, got, c.want)
		}
	}
}

func TestSkipAfterPost(t *testing.T) {
	for _, c := range []struct {
		in     string
		n      int
		enough bool
	}{
		{"GET ", 0, true},
		{"\r\nGE", 2, true},
		{"\r\n\r\nGET", 4, true},
		{"\r\n\r\n\r\nGET", 4, true},
		{"\r\n", 2, false},
		{"", 0, false},
	} {
		n, ok := skipAfterPost([]byte(c.in))
		if n != c.n || ok != c.enough {
			t.Errorf("skipAfterPost(%q) = %d, %v; want %d, %v", c.in, n, ok, c.n, c.enough)
		}
	}
}
