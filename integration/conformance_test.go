package integration

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"corral/internal/conformance"
)

// Reasons shared by several corpus files.
const (
	whyHost = "HTTP/1.1 without Host: 400 (RFC 9112 §3.2 MUST; nginx and Apache refuse too). " +
		"gunicorn's fixtures simply omit Host"
	whyTE         = "Transfer-Encoding other than a lone chunked: 501 (RFC 9112 §6.1 SHOULD; nginx does the same)"
	whyUnderscore = "underscore in a header name: 400. valid/040 and invalid/040 are the same bytes " +
		"(gunicorn's header_map drop vs refuse); X_Foo and X-Foo are the same WSGI environ key"
)

// deviations lists the corpus files whose expectation corral deliberately
// does not meet, because it contradicts RFC 9112 or another file of the
// corpus, with what corral does instead: "app" (the request reaches the
// app) or the status of the answer (nothing reaches the app).
// docs/http.md lists them for users.
var deviations = map[string]struct{ want, why string }{
	"valid/004.http":        {"400", whyHost},
	"valid/005.http":        {"400", whyHost},
	"valid/006.http":        {"400", whyHost},
	"valid/007.http":        {"400", whyHost},
	"valid/010.http":        {"400", whyHost},
	"valid/011.http":        {"400", whyHost},
	"valid/012.http":        {"400", whyHost},
	"valid/013.http":        {"400", whyHost},
	"valid/014.http":        {"400", whyHost},
	"valid/018.http":        {"400", whyHost},
	"valid/021.http":        {"400", whyHost},
	"valid/023.http":        {"400", whyHost},
	"valid/031.http":        {"400", whyHost},
	"valid/031compat.http":  {"400", whyHost},
	"valid/031compat2.http": {"400", whyHost},
	"valid/100.http":        {"400", whyHost},
	"valid/009.http":        {"501", whyTE + "; it also lacks Host"},
	"valid/025.http":        {"501", whyTE},
	"valid/025_line.http":   {"501", whyTE},
	"valid/029.http":        {"501", whyTE},
	"valid/030.http":        {"501", whyTE},
	"valid/rfc9112_smuggle_gzip_chunked_01.http":        {"501", whyTE},
	"valid/rfc9112_smuggle_te_identity_chunked_01.http": {"501", whyTE},
	"valid/040.http":        {"400", whyUnderscore},
	"valid/040_compat.http": {"400", whyUnderscore},
	"valid/028.http": {"400", "whitespace between field name and colon: 400 (RFC 9112 §5.1 MUST); " +
		"the same bytes as invalid/020, and no Host"},
	"valid/compat_obs_fold_huge.http": {"400", "the first field line is folded (RFC 9112 §2.2: " +
		"whitespace before the first field must be refused or ignored) and there is no Host"},
	"valid/rfc9112_target_asterisk_options_01.http": {"200", "OPTIONS * is answered by net/http " +
		"itself (200, no body): a server-wide request, not one for the app"},
	"valid/024.http": {"414", "an 8189-byte request line: over the default --limit-request-line " +
		"4094 (gunicorn's default too; its fixture raises the limit)"},
	"valid/026.http": {"431", "an 8204-byte field: over the default --limit-request-field_size " +
		"8190 (gunicorn's default too; its fixture raises the limit)"},
	"invalid/008.http": {"app", "an 8189-byte field: within the default --limit-request-field_size " +
		"8190 (gunicorn's fixture lowers the limit)"},
	"invalid/limit_header_default_01.http": {"app", "an 8190-byte field line: the limit counts " +
		"name, colon, space and value, so 8190 bytes are allowed; gunicorn counts differently"},
	"invalid/011.http": {"app", "the same bytes as valid/002 (gunicorn refuses it only with a non-default setting)"},
	"invalid/012.http": {"app", "the same bytes as valid/002 (gunicorn refuses it only with a non-default setting)"},
	"invalid/obs_fold_01.http": {"app", "the same bytes as valid/compat_obs_fold (gunicorn's " +
		"permit_obsolete_folding); RFC 9112 §5.2 lets a server replace obs-fold with spaces, as net/http does"},
	"invalid/rfc9110_trailer_forbidden_cl_01.http": {"app", "trailer fields are discarded, never " +
		"merged into the environ: RFC 9110 §6.5.1 forbids merging, not receiving"},
	"invalid/rfc9110_trailer_forbidden_host_01.http": {"app", "trailer fields are discarded, never " +
		"merged into the environ: RFC 9110 §6.5.1 forbids merging, not receiving"},
	"invalid/rfc9110_trailer_forbidden_te_01.http": {"app", "trailer fields are discarded, never " +
		"merged into the environ: RFC 9110 §6.5.1 forbids merging, not receiving"},
}

// gaps lists invalid requests corral does not refuse yet. The test
// asserts today's behaviour, so a fix fails here until its entry goes.
var gaps = map[string]struct{ want, why string }{}

// incomplete lists fixtures that end before their request does: the
// server waits for the rest (header or body timeout). A valid one counts
// as accepted if it is neither answered nor closed within the quiet
// time; an invalid one must be refused once the client half-closes.
var incomplete = map[string]string{
	"valid/099.http":   "the multipart body stops short of its Content-Length",
	"invalid/001.http": "the head stops in a field line without a colon",
	"invalid/rfc9112_chunked_missing_final_crlf_01.http": "the CRLF that ends the trailer section " +
		"is missing; on EOF the body read fails",
}

var statusLineRE = regexp.MustCompile(`(?m)^HTTP/1\.[01] (\d{3})`)

// TestConformanceCorpus replays gunicorn's request corpus, one file per
// connection. Accepted means the request reached the app (CALLS_FILE
// grew); refused means a 4xx or 5xx answer or a closed connection, with
// nothing reaching the app. Every file under valid/ must be accepted and
// every file under invalid/ refused, except the files listed above.
func TestConformanceCorpus(t *testing.T) {
	t.Parallel() // long and mostly waiting: overlaps the other parallel tests (harness_test.go)
	calls := filepath.Join(t.TempDir(), "calls")
	s := startApp(t, []string{"CALLS_FILE=" + calls}, "-w", "2")
	dir := testdata("conformance/gunicorn-requests")
	corpus := map[string][]byte{}
	for _, kind := range []string{"valid", "invalid"} {
		files, err := filepath.Glob(filepath.Join(dir, kind, "*.http"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no corpus files under %s/%s: %v", dir, kind, err)
		}
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			corpus[kind+"/"+filepath.Base(f)] = conformance.Decode(src)
		}
	}
	checkTables(t, corpus)

	// The app records each call, but its PEP 3333 validator may raise
	// before that: corral logs those as application errors.
	appCalls := func() int {
		b, _ := os.ReadFile(calls)
		return bytes.Count(b, []byte("\n")) + strings.Count(s.log.String(), "application error")
	}
	const quiet = time.Second
	counts := map[string]int{}
	for _, name := range sortedKeys(corpus) {
		t.Run(name, func(t *testing.T) {
			if strings.HasPrefix(filepath.Base(name), "pp_") {
				t.Skip("PROXY protocol header: TestConformanceProxyProtocol replays it with --proxy-protocol")
			}
			before := appCalls()
			c := exchange(t, s.addr, corpus[name], quiet)
			got := c.outcome(appCalls() - before)
			want, why := "app", ""
			if strings.HasPrefix(name, "invalid/") {
				want = "refused"
			}
			if d, ok := deviations[name]; ok {
				want, why = d.want, d.why
			}
			if g, ok := gaps[name]; ok {
				want, why = g.want, "gap: "+g.why
			}
			if r, ok := incomplete[name]; ok {
				why = "incomplete fixture: " + r
				if got != "silent" {
					t.Fatalf("got %s (first answer %q), want no answer and an open connection (%s)", got, c.first, why)
				}
				if name[0] == 'v' {
					counts["accepted"]++
					return
				}
				c.halfClose(t, quiet)
				got = c.outcome(appCalls() - before)
			}
			refused := got == "closed" || got[0] == '4' || got[0] == '5'
			switch {
			case want == "refused" && refused:
				counts["refused"]++
			case want == got:
				counts[kindOf(name, why)]++
			default:
				t.Errorf("got %s (first answer %q), want %s %s", got, c.first, want, why)
			}
		})
	}
	t.Logf("corpus: %v", counts)
}

// kindOf names the class of a file's expected outcome for the summary.
func kindOf(name, why string) string {
	switch {
	case strings.HasPrefix(why, "gap: "):
		return "gap"
	case why != "":
		return "deviation"
	case strings.HasPrefix(name, "valid/"):
		return "accepted"
	}
	return "refused"
}

// checkTables keeps the tables honest: every entry names a corpus file,
// and any valid and invalid files with the same bytes are both listed.
func checkTables(t *testing.T, corpus map[string][]byte) {
	t.Helper()
	for _, table := range []map[string]struct{ want, why string }{deviations, gaps} {
		for name := range table {
			if _, ok := corpus[name]; !ok {
				t.Errorf("table entry %s: no such corpus file", name)
			}
		}
	}
	for name := range incomplete {
		if _, ok := corpus[name]; !ok {
			t.Errorf("incomplete entry %s: no such corpus file", name)
		}
	}
	for v, vb := range corpus {
		if !strings.HasPrefix(v, "valid/") {
			continue
		}
		for i, ib := range corpus {
			if strings.HasPrefix(i, "invalid/") && bytes.Equal(vb, ib) {
				_, vok := deviations[v]
				_, iok := deviations[i]
				if !vok && !iok {
					t.Errorf("%s and %s are the same bytes: one of them must be in deviations", v, i)
				}
			}
		}
	}
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// answer is what the server sent on one connection.
type answer struct {
	conn   net.Conn
	out    []byte
	status int    // of the first answer, 0 if none
	first  string // its status line
	closed bool   // the server closed the connection
}

// exchange writes req on a new connection and reads until the server
// closes it or stays quiet for quiet.
func exchange(t *testing.T, addr string, req []byte, quiet time.Duration) *answer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	a := &answer{conn: c}
	a.read(quiet)
	return a
}

func (a *answer) read(quiet time.Duration) {
	buf := make([]byte, 64<<10)
	for {
		_ = a.conn.SetReadDeadline(time.Now().Add(quiet))
		n, err := a.conn.Read(buf)
		a.out = append(a.out, buf[:n]...)
		if err != nil {
			var ne net.Error
			a.closed = !(errors.As(err, &ne) && ne.Timeout())
			break
		}
	}
	if m := statusLineRE.FindSubmatchIndex(a.out); m != nil {
		a.status, _ = strconv.Atoi(string(a.out[m[2]:m[3]]))
		line, _, _ := strings.Cut(string(a.out[m[0]:]), "\r\n")
		a.first = line
	}
}

// halfClose ends the client's side of the connection and reads the rest.
func (a *answer) halfClose(t *testing.T, quiet time.Duration) {
	t.Helper()
	if err := a.conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	a.read(quiet)
}

// outcome names what happened: "app" if reached app calls were made,
// else the status of the first answer, "closed" or "silent".
func (a *answer) outcome(reached int) string {
	switch {
	case reached > 0:
		return "app"
	case a.status != 0:
		return strconv.Itoa(a.status)
	case a.closed:
		return "closed"
	}
	return "silent"
}
