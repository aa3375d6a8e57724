package listen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// result is what a tracker made of a whole stream.
type result struct {
	refused    bool
	start, end int // offsets of the refused head's first byte and final LF
	passed     bool
	done       int // complete messages
	off        int // offset of the piece that completed the refused head
}

// track feeds stream to a new tracker in pieces cut at the given offsets
// (ascending) and stops at a refusal, as framingConn does. The start of a
// refused head is only known within the piece that completes it.
func track(stream []byte, cuts ...int) result {
	var t tracker
	off := 0
	for _, end := range append(cuts, len(stream)) {
		if start, e, refuse := t.feed(stream[off:end]); refuse {
			return result{refused: true, start: off + start, end: off + e, done: t.done, off: off}
		}
		off = end
	}
	return result{passed: t.state == stPass, done: t.done}
}

// same reports whether got, from a cut stream, matches want, from the
// whole stream.
func same(got, want result) bool {
	want.start = max(want.start, got.off)
	want.off = got.off
	return got == want
}

// trackBytewise feeds stream one byte at a time.
func trackBytewise(stream []byte) result {
	cuts := make([]int, 0, len(stream))
	for i := 1; i < len(stream); i++ {
		cuts = append(cuts, i)
	}
	return track(stream, cuts...)
}

// framingValid lists well-formed streams net/http accepts, with the number of
// requests in each. Bodies and chunks hold text that looks like a
// smuggling head, which the tracker must skip.
var framingValid = []struct {
	name    string
	stream  string
	n       int
	methods string // of the requests, where a HEAD changes how answers are read
}{
	{"get", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, ""},
	{"keep-alive", "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", 2, ""},
	{"bare LF lines", "GET / HTTP/1.1\nHost: x\nContent-Length: 2\n\nabGET / HTTP/1.1\nHost: x\n\n", 2, ""},
	{"cl body with a head in it", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(smuggle)) + "\r\n\r\n" +
		smuggle + "GET /next HTTP/1.1\r\nHost: x\r\n\r\n", 2, ""},
	{"chunked body with a head in it", "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strconv.FormatInt(int64(len(smuggle)), 16) + "\r\n" + smuggle + "\r\n" +
		"3;ext=1;q=\"a b\"\r\nabc\r\n" + "0\r\n\r\n" +
		"GET /next HTTP/1.1\r\nHost: x\r\n\r\n", 2, ""},
	{"chunked with trailers", "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
		"5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Long: a\r\n b\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"GET /next HTTP/1.1\r\nHost: x\r\n\r\n", 2, ""},
	{"chunk size forms", "PUT /p HTTP/1.1\r\nHost: x\r\ntransfer-encoding:  CHUNKED \t\r\n\r\n" +
		"0005\r\nhello\r\nA\r\n0123456789\r\n1 \t\r\nx\r\n1;a\r\ny\r\n000\r\n\r\n" +
		"GET /next HTTP/1.1\r\nHost: x\r\n\r\n", 2, ""},
	{"expect 100-continue", "POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /q HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 2, ""},
	{"crlf after post", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na\r\n\r\n" +
		"POST /q HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\n" +
		"GET /r HTTP/1.1\r\nHost: x\r\n\r\n", 3, ""},
	{"folded framing fields", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 3\r\nX-A: 1\r\n\t2\r\n\r\nabc" +
		"POST /q HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n  chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n", 2, ""},
	{"repeated content-length", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 003\r\ncontent-length:003 \r\n\r\nabc" +
		"GET /q HTTP/1.1\r\nHost: x\r\n\r\n", 2, ""},
	{"get and head with bodies", "GET /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody" +
		"HEAD /q HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" + "GET /r HTTP/1.1\r\nHost: x\r\n\r\n", 3, "GET HEAD GET"},
	{"http/1.0 keep-alive", "POST /p HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /q HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 2, ""},
	{"similar names", "GET / HTTP/1.1\r\nHost: x\r\nContent-Type: a\r\nConnection: b\r\nContent-Lengthy: 5\r\n" +
		"Transfer-Encodings: chunked\r\nTE: trailers\r\nTransfer: x\r\nCookie: c\r\n\r\n", 1, ""},
	{"upgrade and connect", "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" +
		"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n" + "GET /after HTTP/1.1\r\nHost: x\r\n\r\n", 3, ""},
	{"trailer ended by a bare LF", "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX: 1\n\n" +
		"GET /q HTTP/1.1\r\nHost: x\r\n\r\n", 2, ""},
	{"http/1.9", "GET / HTTP/1.9\r\nHost: x\r\nContent-Length: 1\r\n\r\nz", 1, ""},
}

// framingRefused lists heads that must be refused, each behind a stream of
// well-formed requests.
var framingRefused = []struct {
	name   string
	stream string
	head   string // the refused head, found in stream
}{
	{"cl then te", "", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"te then cl", "", "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"},
	{"case", "", "POST /p HTTP/1.1\r\nhost: x\r\ncontent-LENGTH: 3\r\nTRANSFER-encoding: Chunked\r\n\r\n"},
	{"repeated", "", "POST /p HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"list", "", "POST /p HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"},
	{"folded te", "", "POST /p HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"},
	{"odd te value", "", "POST /p HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: \tchunked\r\n\r\n"},
	{"bad cl", "", "POST /p HTTP/1.1\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"bare LF", "", "POST /p HTTP/1.1\nContent-Length: 3\nTransfer-Encoding: chunked\n\n"},
	{"http/1.0 te", "", "POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"http/1.0 te identity", "", "POST /p HTTP/1.0\r\nTransfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n"},
	{"after requests", "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"3\r\nabc\r\n0\r\n\r\n\r\n", "POST /p HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"after an upgrade request", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
		"POST /p HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"},
}

// framingPassed lists streams the tracker stops following; each is followed by a
// head it would otherwise refuse.
var framingPassed = []struct {
	name   string
	stream string
}{
	{"h2c preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
	{"http/2.0", "GET / HTTP/2.0\r\n\r\n"},
	{"http/0.9", "GET /\r\n"},
	{"long version", "GET / HTTP/1.10\r\n\r\n"},
	{"te identity", "POST /p HTTP/1.1\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc"},
	{"te list", "POST /p HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
	{"te twice", "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{"te folded empty", "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n \r\n\r\n0\r\n\r\n"},
	{"cl list", "POST /p HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello"},
	{"cl differ", "POST /p HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\nhello"},
	{"cl sign", "POST /p HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello"},
	{"cl empty", "POST /p HTTP/1.1\r\nContent-Length: \r\n\r\n"},
	{"cl overflow", "POST /p HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n"},
	{"no colon", "GET / HTTP/1.1\r\nContent-Length\n\r\n"},
	{"chunk size sign", "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n"},
	{"chunk size space", "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 ;x\r\nhello\r\n0\r\n\r\n"},
	{"chunk bare LF", "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"},
	{"chunk ext bare LF", "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n"},
	{"chunk too long", "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n"},
	{"chunk no crlf", "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n"},
	{"no size", "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n"},
	{"crlf after get", "GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n"},
}

const smuggle = "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"

func TestTrackerValid(t *testing.T) {
	for _, c := range framingValid {
		s := []byte(c.stream)
		want := result{done: c.n}
		if got := track(s); got != want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, want)
		}
		if got := trackBytewise(s); got != want {
			t.Errorf("%s, byte by byte: got %+v, want %+v", c.name, got, want)
		}
		for i := 1; i < len(s); i++ {
			if got := track(s, i); got != want {
				t.Fatalf("%s, cut at %d: got %+v, want %+v", c.name, i, got, want)
			}
		}
	}
}

// TestTrackerValidCuts cuts every valid stream at every pair of offsets.
func TestTrackerValidCuts(t *testing.T) {
	if testing.Short() {
		t.Skip("exhaustive")
	}
	for _, c := range framingValid {
		s := []byte(c.stream)
		want := result{done: c.n}
		for i := 1; i < len(s); i++ {
			for j := i + 1; j < len(s); j++ {
				if got := track(s, i, j); got != want {
					t.Fatalf("%s, cut at %d and %d: got %+v, want %+v", c.name, i, j, got, want)
				}
			}
		}
	}
}

func TestTrackerRefused(t *testing.T) {
	for _, c := range framingRefused {
		s := []byte(c.stream + c.head + "0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
		want := result{refused: true, start: len(c.stream), end: len(c.stream) + len(c.head) - 1, done: track([]byte(c.stream)).done}
		if got := track(s); got != want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, want)
		}
		if got := trackBytewise(s); !same(got, want) {
			t.Errorf("%s, byte by byte: got %+v, want %+v", c.name, got, want)
		}
		for i := 1; i < len(s); i++ {
			if got := track(s, i); !same(got, want) {
				t.Fatalf("%s, cut at %d: got %+v, want %+v", c.name, i, got, want)
			}
		}
	}
}

func TestTrackerPassed(t *testing.T) {
	for _, c := range framingPassed {
		s := []byte(c.stream + smuggle)
		if got := track(s); !got.passed {
			t.Errorf("%s: got %+v, want pass-through", c.name, got)
		}
		for i := 1; i < len(s); i++ {
			if got := track(s, i); !got.passed {
				t.Fatalf("%s, cut at %d: got %+v, want pass-through", c.name, i, got)
			}
		}
	}
}

// FuzzTrackerCuts checks that where reads end never changes what the
// tracker decides, for any bytes.
func FuzzTrackerCuts(f *testing.F) {
	for _, c := range framingValid {
		f.Add([]byte(c.stream), uint16(7), uint16(40))
	}
	for _, c := range framingRefused {
		f.Add([]byte(c.stream+c.head), uint16(3), uint16(100))
	}
	for _, c := range framingPassed {
		f.Add([]byte(c.stream+smuggle), uint16(1), uint16(2))
	}
	f.Fuzz(func(t *testing.T, s []byte, a, b uint16) {
		want := track(s)
		i, j := min(int(a), int(b), len(s)), min(max(int(a), int(b)), len(s))
		if got := track(s, i, j); !same(got, want) {
			t.Errorf("cut at %d and %d: got %+v, want %+v", i, j, got, want)
		}
		if got := trackBytewise(s); !same(got, want) {
			t.Errorf("byte by byte: got %+v, want %+v", got, want)
		}
	})
}

// FuzzTrackerBodies builds well-formed requests around arbitrary body
// bytes and chunk sizes: the tracker must follow them all and refuse
// nothing, however the stream is cut.
func FuzzTrackerBodies(f *testing.F) {
	f.Add([]byte("hello"), []byte{3}, uint16(10))
	f.Add([]byte(smuggle+smuggle), []byte{1, 200, 7}, uint16(64))
	f.Add([]byte("\r\n\r\n0\r\n\r\n"), []byte{0, 4}, uint16(1))
	f.Fuzz(func(t *testing.T, body, sizes []byte, cut uint16) {
		var s bytes.Buffer
		fmt.Fprintf(&s, "POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		s.WriteString("POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
		rest := body
		for k := 0; len(rest) > 0; k++ {
			n := len(rest)
			if k < len(sizes) && sizes[k] > 0 {
				n = min(n, int(sizes[k]))
			}
			fmt.Fprintf(&s, "%x", n)
			if k%2 == 1 {
				s.WriteString(";x=\"y\"")
			}
			fmt.Fprintf(&s, "\r\n%s\r\n", rest[:n])
			rest = rest[n:]
		}
		s.WriteString("0\r\nX-T: 1\r\n\r\n\r\nGET /last HTTP/1.1\r\nHost: x\r\n\r\n")
		stream := s.Bytes()
		want := result{done: 3}
		i := min(int(cut), len(stream))
		if got := track(stream, i); got != want {
			t.Fatalf("cut at %d: got %+v, want %+v", i, got, want)
		}
		if got := trackBytewise(stream); got != want {
			t.Fatalf("byte by byte: got %+v, want %+v", got, want)
		}
	})
}

// scriptConn hands out its reads as scripted, then EOF.
type scriptConn struct {
	net.Conn
	reads [][]byte
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if len(c.reads) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.reads[0])
	if c.reads[0] = c.reads[0][n:]; len(c.reads[0]) == 0 {
		c.reads = c.reads[1:]
	}
	return n, nil
}

// TestFramingConnReads checks what Read returns around a refusal: earlier
// requests alone, then the refused head without its final LF, then errors.
func TestFramingConnReads(t *testing.T) {
	first := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	head := "POST /p HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
	type step struct {
		size int
		want string
		err  error
	}
	cases := []struct {
		name  string
		reads []string
		steps []step
	}{
		{"alone", []string{head + "0\r\n\r\n"}, []step{
			{4096, head[:len(head)-1], nil}, {4096, "", errAmbiguousFraming}, {4096, "", errAmbiguousFraming}}},
		{"behind a request", []string{first + head + "0\r\n\r\n"}, []step{
			{4096, first, nil}, {1, head[:1], nil}, {4096, head[1 : len(head)-1], nil}, {4096, "", errAmbiguousFraming}}},
		{"last byte alone", []string{first + head[:len(head)-1], "\n0\r\n\r\n"}, []step{
			{4096, first + head[:len(head)-1], nil}, {1, "", nil}, {4096, "", errAmbiguousFraming}}},
	}
	for _, c := range cases {
		sc := &scriptConn{}
		for _, r := range c.reads {
			sc.reads = append(sc.reads, []byte(r))
		}
		conn := &framingConn{Conn: sc}
		for i, s := range c.steps {
			p := make([]byte, s.size)
			n, err := conn.Read(p)
			if string(p[:n]) != s.want || !errors.Is(err, s.err) {
				t.Errorf("%s, read %d: got %q, %v; want %q, %v", c.name, i, p[:n], err, s.want, s.err)
			}
		}
	}
}

// server runs an http.Server on a FramingListener over loopback TCP with a
// handler that reads the body and answers 400 with Connection: close when
// that fails, as corral's handler does.
type server struct {
	addr     string
	calls    atomic.Int32
	canceled atomic.Int32 // requests whose context ended before the answer
}

func startServer(t *testing.T, h http.Handler) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: ln.Addr().String()}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.calls.Add(1)
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				w.Header().Set("Connection", "close")
				http.Error(w, "malformed request body", http.StatusBadRequest)
				return
			}
			time.Sleep(5 * time.Millisecond) // time for a read that would cancel the context
			if r.Context().Err() != nil {
				s.canceled.Add(1)
			}
			fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, n)
		})
	}
	srv := &http.Server{Handler: h, ErrorLog: nil}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = srv.Serve(FramingListener(ln, nil))
	}()
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return s
}

type reply struct {
	status int
	close  bool
	body   string
}

// exchange writes req at once and reads the final responses until it has
// n of them (n < 0: any number) or the server closes the connection or
// goes quiet.
func (s *server) exchange(t *testing.T, req string, n int, method ...string) []reply {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(c)
	var out []reply
	for len(out) != n {
		r := &http.Request{Method: http.MethodGet}
		if len(out) < len(method) {
			r.Method = method[len(out)]
		}
		resp, err := http.ReadResponse(br, r)
		if err != nil {
			return out
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 200 {
			out = append(out, reply{resp.StatusCode, resp.Close, string(b)})
		}
	}
	return out
}

func statuses(rs []reply) string {
	var s []string
	for _, r := range rs {
		s = append(s, strconv.Itoa(r.status))
	}
	return strings.Join(s, " ")
}

func TestFramingServerRefuses(t *testing.T) {
	s := startServer(t, nil)
	for _, c := range framingRefused {
		s.calls.Store(0)
		before := track([]byte(c.stream)).done
		got := s.exchange(t, c.stream+c.head+"0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", -1)
		if len(got) != before+1 || got[before].status != 400 || !got[before].close {
			t.Errorf("%s: got %+v, want %d answers then 400 with Connection: close", c.name, got, before)
		}
		if n := int(s.calls.Load()); n != before {
			t.Errorf("%s: handler ran %d times, want %d", c.name, n, before)
		}
	}
	if n := s.canceled.Load(); n != 0 {
		t.Errorf("%d requests before a refused one were canceled", n)
	}
}

// TestFramingServerValid checks that the listener changes nothing for
// well-formed traffic: every request reaches the handler and gets 200.
func TestFramingServerValid(t *testing.T) {
	s := startServer(t, nil)
	for _, c := range framingValid {
		s.calls.Store(0)
		methods := strings.Fields(c.methods)
		got := s.exchange(t, c.stream, c.n, methods...)
		ok := len(got) == c.n
		for _, r := range got {
			ok = ok && r.status == 200
		}
		if !ok || int(s.calls.Load()) != c.n {
			t.Errorf("%s: got %s after %d calls, want %d × 200", c.name, statuses(got), s.calls.Load(), c.n)
		}
	}
}

func TestFramingServerPassThrough(t *testing.T) {
	s := startServer(t, nil)
	// net/http answers these itself and closes: the listener stays out of
	// the way, so the smuggling head behind them is never read.
	for _, c := range []struct {
		stream string
		want   string
	}{
		{"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc", "501"},
		{"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"},
		{"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", "400"},
		{"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505"},
		{"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", "400"},
	} {
		if got := statuses(s.exchange(t, c.stream+smuggle, -1)); got != c.want {
			t.Errorf("%q: got %q, want %q", c.stream, got, c.want)
		}
	}
}

func TestFramingServerExpectContinue(t *testing.T) {
	s := startServer(t, nil)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("got %q, %v; want 100 Continue", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "5\r\nhello\r\n0\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "POST /p 5" {
		t.Errorf("got %d %q, want 200 \"POST /p 5\"", resp.StatusCode, b)
	}
}

// TestFramingServerFile checks that file bodies still go out through the
// connection's ReadFrom (sendfile).
func TestFramingServerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<14)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var usedReadFrom atomic.Bool
	s := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.(io.ReaderFrom).ReadFrom(f)
		usedReadFrom.Store(true)
	}))
	got := s.exchange(t, "GET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1)
	if len(got) != 1 || got[0].body != string(data) || !usedReadFrom.Load() {
		t.Errorf("file body: %d answers, want the file", len(got))
	}
	var _ io.ReaderFrom = (*framingConn)(nil)
}

// BenchmarkTracker follows a typical browser request head (about 300
// bytes); ns/op is the cost per request.
func BenchmarkTracker(b *testing.B) {
	head := []byte("GET /articles/2024/how-to-deploy?ref=home HTTP/1.1\r\n" +
		"Host: www.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n" +
		"Accept-Language: en-US,en;q=0.5\r\n" +
		"Accept-Encoding: gzip, deflate, br\r\n" +
		"Cookie: session=4f9a1c2e7b\r\n" +
		"Connection: keep-alive\r\n\r\n")
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	var t tracker
	for b.Loop() {
		if _, _, refuse := t.feed(head); refuse || t.state != stStart {
			b.Fatal("lost track")
		}
	}
}

// BenchmarkTrackerPost follows a POST with a 1 KiB Content-Length body and
// a chunked one.
func BenchmarkTrackerPost(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	s := []byte(fmt.Sprintf("POST /form HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1024\r\n\r\n%s"+
		"POST /up HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n%s\r\n0\r\n\r\n", body, body))
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	var t tracker
	for b.Loop() {
		if _, _, refuse := t.feed(s); refuse || t.state != stStart {
			b.Fatal("lost track")
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// netHTTPEnds is the oracle: the offsets at which net/http's server
// finishes each request of stream, up to the first it refuses, and where
// each of those requests began. It runs the parser the server runs
// (http.ReadRequest, the body to EOF) plus what the server adds around it.
func netHTTPEnds(stream []byte) (starts, ends []int) {
	cr := &countingReader{r: bytes.NewReader(stream)}
	br := bufio.NewReader(cr)
	pos := func() int { return cr.n - br.Buffered() }
	post := false
	for {
		if post { // the server's tolerance for a CRLF after a POST body
			peek, _ := br.Peek(4)
			k := 0
			for k < len(peek) && (peek[k] == '\r' || peek[k] == '\n') {
				k++
			}
			_, _ = br.Discard(k)
		}
		start := pos()
		req, err := http.ReadRequest(br)
		if err != nil || req.ProtoMajor != 1 {
			return starts, ends
		}
		if e := req.Header.Get("Expect"); e != "" && !strings.EqualFold(e, "100-continue") {
			return starts, ends // 417, then the server closes
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return starts, ends
		}
		starts, ends = append(starts, start), append(ends, pos())
		post = req.Method == http.MethodPost
	}
}

// checkAgainstNetHTTP checks the tracker against the oracle on stream:
// the tracker must end messages where net/http does, may stop following
// only at a request net/http refuses, and may refuse only a request whose
// head net/http parsed with both Content-Length and Transfer-Encoding (or
// Transfer-Encoding in HTTP/1.0).
func checkAgainstNetHTTP(t *testing.T, stream []byte) {
	t.Helper()
	starts, ends := netHTTPEnds(stream)
	var tr tracker
	var got []int
	for i := range stream {
		_, _, refuse := tr.feed(stream[i : i+1])
		if tr.done > len(got) {
			got = append(got, i+1)
		}
		k := len(got) // the request the tracker is in
		if k < len(ends) && len(got) > 0 && got[k-1] != ends[k-1] {
			t.Fatalf("%q: request %d ends at %d, net/http ends it at %d", stream, k, got[k-1], ends[k-1])
		}
		if tr.state == stPass && !refuse && k < len(ends) {
			t.Fatalf("%q: stopped following in request %d, which net/http accepts", stream, k+1)
		}
		if refuse {
			if k >= len(ends) {
				return // net/http refuses it too
			}
			head := stream[starts[k] : i+1]
			if !ambiguous(head) {
				t.Fatalf("%q: refused request %d, head %q", stream, k+1, head)
			}
			return
		}
		if tr.state == stPass {
			return
		}
	}
	if len(got) < len(ends) {
		t.Fatalf("%q: tracker saw %d requests end, net/http %d", stream, len(got), len(ends))
	}
}

// ambiguous parses a request head with textproto, independently of the
// tracker, and reports whether it has both Content-Length and
// Transfer-Encoding, or Transfer-Encoding in HTTP/1.0.
func ambiguous(head []byte) bool {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(head)))
	line, err := tp.ReadLine()
	if err != nil {
		return false
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return false
	}
	_, te := h["Transfer-Encoding"]
	_, cl := h["Content-Length"]
	return te && (cl || strings.HasSuffix(line, " HTTP/1.0"))
}

func TestTrackerMatchesNetHTTP(t *testing.T) {
	for _, c := range framingValid {
		checkAgainstNetHTTP(t, []byte(c.stream))
		if _, ends := netHTTPEnds([]byte(c.stream)); len(ends) != c.n {
			t.Errorf("%s: net/http reads %d requests, the table says %d", c.name, len(ends), c.n)
		}
	}
	for _, c := range framingRefused {
		checkAgainstNetHTTP(t, []byte(c.stream+c.head+"0\r\n\r\n"))
	}
	for _, c := range framingPassed {
		checkAgainstNetHTTP(t, []byte(c.stream+smuggle))
	}
}

// FuzzTrackerMatchesNetHTTP runs the oracle check on arbitrary streams.
func FuzzTrackerMatchesNetHTTP(f *testing.F) {
	for _, c := range framingValid {
		f.Add([]byte(c.stream))
	}
	for _, c := range framingRefused {
		f.Add([]byte(c.stream + c.head + "0\r\n\r\n"))
	}
	for _, c := range framingPassed {
		f.Add([]byte(c.stream + smuggle))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		checkAgainstNetHTTP(t, stream)
	})
}

// TestFramingUpgradePassesThrough: once a 101 went out, the connection is
// another protocol's (a WebSocket): bytes that would look like a
// smuggling head are passed through, not refused.
func TestFramingUpgradePassesThrough(t *testing.T) {
	s := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "echo")
		w.Header().Set("Connection", "Upgrade")
		w.WriteHeader(http.StatusSwitchingProtocols)
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, brw)
	}))
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	after := "POST /p HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	if _, err := io.WriteString(c, after); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(after))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != after {
		t.Fatalf("echo after the upgrade: %q, %v; want %q", got, err, after)
	}
}
