package h1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveFastOne is a minimal connection loop for the response tests (the
// real one is Server): it serves c's requests with h on the fast path
// until a request is declined, a response must close, or EOF.
func serveFastOne(c net.Conn, h http.Handler) {
	defer c.Close()
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		req, n, st := parseHead(context.Background(), buf, 0)
		switch st {
		case declined:
			return
		case needMore:
			m, err := c.Read(tmp)
			buf = append(buf, tmp[:m]...)
			if err != nil && m == 0 {
				return
			}
			continue
		}
		buf = buf[n:]
		w := newResponse(&wire{conn: c}, req)
		h.ServeHTTP(w, req)
		w.finish()
		if !w.shouldReuseConnection() {
			return
		}
	}
}

// exchangeTCP sends raw on a new loopback connection to addr, half-closes
// and returns everything read until the server closes.
func exchangeTCP(t testing.TB, addr, raw string) string {
	t.Helper()
	return exchange(t, "tcp", addr, raw)
}

// exchange is exchangeTCP on any network whose connections half-close.
func exchange(t testing.TB, network, addr, raw string) string {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil {
		return string(got) + "(read error: " + err.Error() + ")"
	}
	return string(got)
}

var dateRE = regexp.MustCompile(`(?m)^Date: [^\r\n]*\r\n`)

func maskDate(s string) string { return dateRE.ReplaceAllString(s, "Date: <masked>\r\n") }

// recorder notes what a handler observed (return values of its calls),
// so that these are compared too.
type recorder struct {
	mu   sync.Mutex
	logs []string
}

func (r *recorder) note(format string, args ...any) {
	r.mu.Lock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.logs, "; ")
	r.logs = nil
	return s
}

// TestResponseMatchesNetHTTP runs each handler under a real net/http
// server and under the fast path, and compares the bytes on the wire
// (the Date value masked) and what the handler's calls returned.
func TestResponseMatchesNetHTTP(t *testing.T) {
	dir := t.TempDir()
	bigFile := filepath.Join(dir, "big.bin")
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10>>4) // 64 KiB
	if err := os.WriteFile(bigFile, big, 0o644); err != nil {
		t.Fatal(err)
	}
	smallFile := filepath.Join(dir, "small.html")
	if err := os.WriteFile(smallFile, []byte("<!DOCTYPE html><p>small"), 0o644); err != nil {
		t.Fatal(err)
	}
	const get11 = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	const get10 = "GET / HTTP/1.0\r\n\r\n"
	const get10ka = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
	const head11 = "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
	kb10 := strings.Repeat("x", 10<<10)
	rec := &recorder{}
	// copyFile is a handler that answers with the file at path through
	// io.Copy (ReadFrom), declaring its length first if withLength.
	copyFile := func(path string, withLength bool) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			f, err := os.Open(path)
			if err != nil {
				panic(err)
			}
			defer f.Close()
			if withLength {
				fi, err := f.Stat()
				if err != nil {
					panic(err)
				}
				w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
			}
			n, err := io.Copy(w, f)
			rec.note("copy %d %v", n, err)
		}
	}

	for _, c := range []struct {
		name string
		req  string
		h    func(w http.ResponseWriter, r *http.Request)
	}{
		{"empty handler", get11, func(w http.ResponseWriter, r *http.Request) {}},
		{"small body", get11, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello world") }},
		{"explicit content-length", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5")
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello")
		}},
		{"10 KB body chunked", get11, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, kb10) }},
		{"2048 bytes", get11, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, kb10[:2048]) }},
		{"2049 bytes", get11, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, kb10[:2049]) }},
		{"2048 then 1", get11, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, kb10[:2048])
			io.WriteString(w, "y")
		}},
		{"many small writes", get11, func(w http.ResponseWriter, r *http.Request) {
			for range 300 {
				io.WriteString(w, "0123456789")
			}
		}},
		{"flush midway", get11, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
			io.WriteString(w, "second")
		}},
		{"flush before any write", get11, func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
		}},
		{"response controller", get11, func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			rec.note("deadline %v", rc.SetWriteDeadline(time.Now().Add(time.Minute)))
			rec.note("read deadline %v", rc.SetReadDeadline(time.Time{}))
			io.WriteString(w, "a")
			rec.note("flush %v", rc.Flush())
			io.WriteString(w, "b")
		}},
		{"103 then 200", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "done")
		}},
		{"100 then 201", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			w.WriteHeader(http.StatusContinue)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "abc")
		}},
		{"103 to http/1.0", get10, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "x")
		}},
		{"204", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusNoContent)
			_, err := io.WriteString(w, "body")
			rec.note("write: %v", err)
		}},
		{"304", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", "10")
			w.Header().Set("Etag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		}},
		{"404 with body", get11, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "not here", http.StatusNotFound) }},
		{"unknown status", get11, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(599)
			io.WriteString(w, "odd")
		}},
		{"status 999", get10ka, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(999) }},
		{"WriteHeader twice", get11, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "x")
		}},
		{"header changed after WriteHeader", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Before", "1")
			w.WriteHeader(http.StatusAccepted)
			w.Header().Set("X-After", "2")
			w.Header().Set("Content-Type", "text/csv")
			io.WriteString(w, "a,b")
		}},
		{"header first touched after WriteHeader", get11, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			w.Header().Set("X-After", "2")
			io.WriteString(w, "x")
		}},
		{"header sanitized", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Multi", "a\nb\r\nc")
			w.Header().Add("X-Multi", "  padded  ")
			w.Header()["bad name"] = []string{"dropped"}
			w.Header()["lower-case"] = []string{"kept as is"}
			io.WriteString(w, "x")
		}},
		{"HEAD", head11, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "body of a GET") }},
		{"HEAD empty", head11, func(w http.ResponseWriter, r *http.Request) {}},
		{"HEAD with content-length", head11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1234")
		}},
		{"HEAD large", head11, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, kb10) }},
		{"http/1.0 small", get10, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }},
		{"http/1.0 large", get10, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, kb10) }},
		{"http/1.0 keep-alive small", get10ka, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }},
		{"http/1.0 keep-alive large", get10ka, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, kb10) }},
		{"http/1.0 keep-alive flush", get10ka, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
		}},
		{"http/1.0 keep-alive explicit", get10ka, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1")
			w.Header().Set("Connection", "keep-alive")
			w.(http.Flusher).Flush()
			io.WriteString(w, "a")
		}},
		{"http/1.0 keep-alive 204", get10ka, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }},
		{"request connection close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "bye")
		}},
		{"handler connection close", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}},
		{"handler connection close chunked", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, kb10)
		}},
		{"transfer-encoding identity", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "identity")
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			io.WriteString(w, "data: 2\n\n")
		}},
		{"transfer-encoding chunked set", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "chunked")
			io.WriteString(w, "abc")
		}},
		{"content-length and transfer-encoding", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "chunked")
			w.Header().Set("Content-Length", "3")
			io.WriteString(w, "abc")
		}},
		{"trailer declared", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum, Content-Length, X-Other")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "data")
			w.Header().Set("X-Sum", "42")
			w.Header().Set("X-Other", "o")
		}},
		{"trailer prefix", get11, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "data")
			w.(http.Flusher).Flush()
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		}},
		{"trailer prefix before write", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(http.TrailerPrefix+"X-Early", "e")
			io.WriteString(w, "data")
		}},
		{"date suppressed", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Date"] = nil
			io.WriteString(w, "x")
		}},
		{"date set", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", "Mon, 01 Jan 2024 00:00:00 GMT")
			io.WriteString(w, "x")
		}},
		{"sniff html", get11, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html><body><h1>hi</h1></body></html>")
		}},
		{"no sniff with content-encoding", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			io.WriteString(w, "\x1f\x8b\x08\x00")
		}},
		{"empty content-type kept", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			io.WriteString(w, "<html>")
		}},
		{"readfrom file", get11, copyFile(bigFile, true)},
		{"readfrom file chunked", get11, copyFile(bigFile, false)},
		{"readfrom small file", get11, copyFile(smallFile, false)},
		{"readfrom HEAD", head11, copyFile(bigFile, false)},
		{"write after content-length", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "2")
			n, err := io.WriteString(w, "ab")
			rec.note("first %d %v", n, err)
			n, err = io.WriteString(w, "c")
			rec.note("second %d %v", n, err)
			rec.note("is ErrContentLength: %v", errors.Is(err, http.ErrContentLength))
		}},
		{"short of content-length", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "ab")
		}},
		{"invalid content-length", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "abc")
			io.WriteString(w, "xyz")
		}},
		{"plus content-length", get11, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "+3")
			io.WriteString(w, "xyz")
		}},
		{"pipelined", get11 + "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n" + head11, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "path "+r.URL.Path+" "+r.Method)
		}},
		{"pipelined chunked", get11 + get11, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, kb10)
		}},
		{"post with empty body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			rec.note("body %q %v", b, err)
			w.WriteHeader(http.StatusCreated)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.HandlerFunc(c.h)

			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: h, ErrorLog: discardLog()}
			served := make(chan struct{})
			go func() {
				defer close(served)
				srv.Serve(ln)
			}()
			want := maskDate(exchangeTCP(t, ln.Addr().String(), c.req))
			wantNotes := rec.take()
			srv.Close()
			<-served

			fl, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer fl.Close()
			fastDone := make(chan struct{})
			go func() {
				defer close(fastDone)
				c, err := fl.Accept()
				if err != nil {
					return
				}
				serveFastOne(c, h)
			}()
			got := maskDate(exchangeTCP(t, fl.Addr().String(), c.req))
			<-fastDone
			gotNotes := rec.take()

			if got != want {
				t.Errorf("response alone: wire bytes differ\n got: %q\nwant: %q", abbreviate(got), abbreviate(want))
			}
			if gotNotes != wantNotes {
				t.Errorf("response alone: handler saw\n got: %s\nwant: %s", gotNotes, wantNotes)
			}

			// The same through the connection loop.
			st := startFast(t, h, nil)
			got = maskDate(exchangeTCP(t, st.addr, c.req))
			gotNotes = rec.take()
			if got != want {
				t.Errorf("Server: wire bytes differ\n got: %q\nwant: %q", abbreviate(got), abbreviate(want))
			}
			if gotNotes != wantNotes {
				t.Errorf("Server: handler saw\n got: %s\nwant: %s", gotNotes, wantNotes)
			}
		})
	}
}

// abbreviate keeps long responses readable in failures.
func abbreviate(s string) string {
	if len(s) <= 600 {
		return s
	}
	return s[:300] + fmt.Sprintf("...(%d bytes)...", len(s)-600) + s[len(s)-300:]
}

// TestResponseControllerHijack: the fast path serves no upgrade, so a
// hijack is not supported; everything else ResponseController offers is.
func TestResponseControllerHijack(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	req, _, st := parseHead(context.Background(), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0)
	if st != parsed {
		t.Fatal(st)
	}
	w := newResponse(&wire{conn: c2}, req)
	rc := http.NewResponseController(w)
	if _, _, err := rc.Hijack(); !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("Hijack: got %v, want ErrNotSupported", err)
	}
	if err := rc.EnableFullDuplex(); err != nil {
		t.Errorf("EnableFullDuplex: got %v, want nil", err)
	}
	// A wrapper that unwraps reaches the same methods.
	rc = http.NewResponseController(unwrapper{w})
	if err := rc.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		t.Errorf("SetWriteDeadline through Unwrap: %v", err)
	}
}

type unwrapper struct{ http.ResponseWriter }

func (u unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// TestResponseWriteAfterFinish: a handler that kept its writer gets an
// error rather than writing into a pooled buffer.
func TestResponseWriteAfterFinish(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	go io.Copy(io.Discard, c1)
	req, _, _ := parseHead(context.Background(), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0)
	w := newResponse(&wire{conn: c2}, req)
	io.WriteString(w, "x")
	w.finish()
	if _, err := io.WriteString(w, "late"); !errors.Is(err, errFinished) {
		t.Errorf("Write after finish: got %v, want errFinished", err)
	}
	if err := w.FlushError(); !errors.Is(err, errFinished) {
		t.Errorf("FlushError after finish: got %v, want errFinished", err)
	}
	c2.Close()
}
