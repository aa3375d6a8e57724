package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"corral/internal/conformance"
)

// corpusDir holds gunicorn's request corpus, kept with corral's
// integration tests (its README explains the format).
const corpusDir = "../../integration/testdata/conformance/gunicorn-requests"

// corpus returns the decoded corpus files by name ("valid/001.http").
func corpus(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, kind := range []string{"valid", "invalid"} {
		files, err := filepath.Glob(filepath.Join(corpusDir, kind, "*.http"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no corpus files under %s/%s: %v", corpusDir, kind, err)
		}
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[kind+"/"+filepath.Base(f)] = conformance.Decode(src)
		}
	}
	return out
}

// readRequestView is what http.ReadRequest makes of the start of buf,
// and how many bytes it consumed.
func readRequestView(buf []byte) (*http.Request, int, error) {
	rd := bytes.NewReader(buf)
	br := bufio.NewReader(rd)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, 0, err
	}
	return req, len(buf) - rd.Len() - br.Buffered(), nil
}

// oracle is a real net/http server reached over net.Pipe: what its
// handler receives for a head is the reference the fast path must equal.
type oracle struct {
	ln  *chanListener
	srv *http.Server
	got chan *http.Request
}

// newOracle starts a net/http server; it stops when t ends.
func newOracle(t testing.TB) *oracle {
	o := &oracle{ln: newChanListener(), got: make(chan *http.Request, 1)}
	o.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			o.got <- r
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.srv.Serve(o.ln)
	}()
	t.Cleanup(func() {
		o.srv.Close()
		<-done
	})
	return o
}

// view sends head on a new connection and returns the request net/http's
// handler got, or nil and net/http's answer if it refused the head (or
// waited for more).
func (o *oracle) view(head []byte) (*http.Request, string) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	o.ln.ch <- c2
	c1.SetDeadline(time.Now().Add(time.Second))
	go c1.Write(head) // net.Pipe is synchronous: net/http may answer before reading all
	resp, _ := io.ReadAll(io.LimitReader(&untilHead{r: c1}, 1<<16))
	select {
	case r := <-o.got:
		return r, string(resp)
	default:
		if len(resp) == 0 {
			resp = []byte("(no answer)")
		}
		return nil, string(resp)
	}
}

// untilHead reads until a response head is complete, EOF or an error.
type untilHead struct {
	r    io.Reader
	seen []byte
	done bool
}

func (u *untilHead) Read(p []byte) (int, error) {
	if u.done {
		return 0, io.EOF
	}
	n, err := u.r.Read(p)
	u.seen = append(u.seen, p[:n]...)
	if bytes.Contains(u.seen, []byte("\r\n\r\n")) {
		u.done = true
	}
	return n, err
}

// chanListener hands out the connections sent on ch.
type chanListener struct {
	ch        chan net.Conn
	closeOnce sync.Once
	closed    chan struct{}
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// diffRequest lists the fields in which got differs from want, the
// request net/http's handler got. ctx, RemoteAddr and TLS are the
// caller's.
func diffRequest(got, want *http.Request) error {
	var d []string
	check := func(field string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			d = append(d, fmt.Sprintf("%s: got %#v, want %#v", field, g, w))
		}
	}
	check("Method", got.Method, want.Method)
	check("URL", *got.URL, *want.URL)
	check("Proto", got.Proto, want.Proto)
	check("ProtoMajor", got.ProtoMajor, want.ProtoMajor)
	check("ProtoMinor", got.ProtoMinor, want.ProtoMinor)
	check("Header", got.Header, want.Header)
	check("Host", got.Host, want.Host)
	check("RequestURI", got.RequestURI, want.RequestURI)
	check("ContentLength", got.ContentLength, want.ContentLength)
	check("Body is NoBody", got.Body == http.NoBody, want.Body == http.NoBody)
	check("Close", got.Close, want.Close)
	check("TransferEncoding", got.TransferEncoding, want.TransferEncoding)
	check("Trailer", got.Trailer, want.Trailer)
	check("Form", got.Form, want.Form)
	check("PostForm", got.PostForm, want.PostForm)
	check("MultipartForm", got.MultipartForm, want.MultipartForm)
	check("GetBody is nil", got.GetBody == nil, want.GetBody == nil)
	check("Pattern", got.Pattern, want.Pattern)
	if len(d) > 0 {
		return errors.New(strings.Join(d, "\n"))
	}
	return nil
}

// checkIncremental feeds buf to parseHeadFrom a byte at a time, as the
// connection loop does when a head arrives in pieces, and wants for
// every prefix the status parseHead gives that prefix whole: the scan
// offset saves work and changes no decision.
func checkIncremental(t testing.TB, buf []byte) {
	t.Helper()
	if len(buf) > 32<<10 {
		buf = buf[:32<<10] // a byte at a time, with a whole parse per line: keep it quick
	}
	scanned := 0
	for i := 1; i <= len(buf); i++ {
		_, n, got := parseHeadFrom(context.Background(), buf[:i], 0, &scanned)
		if got == needMore && buf[i-1] != '\n' && i < len(buf) {
			continue // decisions change only when a line completes
		}
		_, wantN, want := parseHead(context.Background(), buf[:i], 0)
		if got != want || n != wantN {
			t.Fatalf("parseHeadFrom(%q) a byte at a time: %v (%d bytes) at %d bytes; parseHead of that prefix: %v (%d)", buf, got, n, i, want, wantN)
		}
		if got != needMore {
			return
		}
		if scanned > i {
			t.Fatalf("parseHeadFrom(%q): scanned %d of %d bytes", buf, scanned, i)
		}
	}
}

// checkParsed holds parseHead to its contract for buf: if it parses, both
// http.ReadRequest (head length, fields) and a real net/http server's
// handler (fields) must agree with it. The oracle may be nil: ReadRequest
// only.
func checkParsed(t testing.TB, o *oracle, buf []byte) (parseStatus, string) {
	t.Helper()
	req, n, st := parseHead(context.Background(), buf, 0)
	if st != parsed {
		if req != nil || n != 0 {
			t.Fatalf("parseHead(%q) = %v with a request or length %d", buf, st, n)
		}
		if st == needMore {
			// Waiting is right only if net/http waits too: its reading of
			// the complete lines so far must end wanting more, not with
			// an answer. (At the end of a partial line ReadRequest would
			// take the part for a line, so only complete lines are given.)
			if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
				if _, _, err := readRequestView(buf[:i+1]); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("parseHead(%q) waits for more; net/http answers at once: %v", buf, err)
				}
			}
		}
		return st, ""
	}
	// A head is parsed once complete, and waited for before.
	for i := range n {
		if _, _, pst := parseHead(context.Background(), buf[:i], 0); pst != needMore {
			t.Fatalf("parseHead(%q) parses it, but its first %d bytes are %v, want needMore", buf, i, pst)
		}
	}
	rr, rn, err := readRequestView(buf)
	if err != nil {
		t.Fatalf("parseHead(%q) parsed it; http.ReadRequest: %v", buf, err)
	}
	if n != rn {
		t.Fatalf("parseHead(%q): head length %d, http.ReadRequest consumed %d", buf, n, rn)
	}
	if o == nil {
		return st, ""
	}
	sr, answer := o.view(buf[:n])
	if sr == nil {
		t.Fatalf("parseHead(%q) parsed it; net/http's server answered %q", buf, answer)
	}
	if err := diffRequest(req, sr); err != nil {
		t.Fatalf("parseHead(%q) differs from net/http's server:\n%v", buf, err)
	}
	// ReadRequest alone lacks the server's own steps (Host deleted);
	// compare what they share as a check on the oracle itself.
	rr.Header.Del("Host")
	if err := diffRequest(req, rr); err != nil {
		t.Fatalf("parseHead(%q) differs from http.ReadRequest:\n%v", buf, err)
	}
	return st, answer
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
