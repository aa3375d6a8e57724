package front

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sink is the writer under a Recorder: it logs every call in order, with
// the header as it was when each code went out.
type sink struct {
	h        http.Header
	events   []string
	body     bytes.Buffer
	deadline time.Time
	flushed  int
}

func newSink() *sink { return &sink{h: http.Header{}} }

func (s *sink) Header() http.Header { return s.h }

func (s *sink) WriteHeader(code int) {
	e := "header " + strconv.Itoa(code)
	if v := s.h.Get("X-Hooked"); v != "" {
		e += " X-Hooked=" + v
	}
	s.events = append(s.events, e)
}

func (s *sink) Write(b []byte) (int, error) {
	s.events = append(s.events, "write "+strconv.Itoa(len(b)))
	return s.body.Write(b)
}

func (s *sink) SetWriteDeadline(t time.Time) error { s.deadline = t; return nil }

func (s *sink) FlushError() error { s.flushed++; return nil }

// readerFromSink also has ReadFrom, like net/http's HTTP/1 writer.
type readerFromSink struct {
	*sink
	src io.Reader // what ReadFrom was handed
}

func (s *readerFromSink) ReadFrom(src io.Reader) (int64, error) {
	s.src = src
	s.events = append(s.events, "readfrom")
	return s.body.ReadFrom(src)
}

// hook counts its calls and marks the header it was given.
type hook struct {
	calls int
	codes []int
}

func (k *hook) BeforeHeader(h http.Header, code int) {
	k.calls++
	k.codes = append(k.codes, code)
	h.Set("X-Hooked", strconv.Itoa(k.calls))
}

func TestRecorderStatus(t *testing.T) {
	for _, tt := range []struct {
		codes []int
		want  int
	}{
		{[]int{200}, 200},
		{[]int{404}, 404},
		{[]int{204, 500}, 204}, // the second is superfluous: net/http says so and sends nothing
		{[]int{103, 200}, 200},
		{[]int{100, 103, 103, 404}, 404},
		{[]int{103}, 0},
		{[]int{101}, 101},
		{[]int{103, 101}, 101},
	} {
		s := newSink()
		r := &Recorder{ResponseWriter: s}
		var want []string
		for _, c := range tt.codes {
			r.WriteHeader(c)
			want = append(want, "header "+strconv.Itoa(c))
		}
		if got := r.Status(); got != tt.want {
			t.Errorf("codes %v: Status() = %d, want %d", tt.codes, got, tt.want)
		}
		if !slices.Equal(s.events, want) {
			t.Errorf("codes %v: passed on %q, want %q", tt.codes, s.events, want)
		}
	}
}

// TestRecorderImplicit: the first Write or ReadFrom without a final status
// writes 200 first, also after an interim 103.
func TestRecorderImplicit(t *testing.T) {
	for _, tt := range []struct {
		name   string
		do     func(*Recorder)
		want   []string
		status int
		bytes  int64
	}{
		{"write", func(r *Recorder) { _, _ = r.Write([]byte("hello")) }, []string{"header 200", "write 5"}, 200, 5},
		{"readfrom", func(r *Recorder) { _, _ = r.ReadFrom(strings.NewReader("hello")) }, []string{"header 200", "readfrom"}, 200, 5},
		{"103 then write", func(r *Recorder) {
			r.WriteHeader(http.StatusEarlyHints)
			_, _ = r.Write([]byte("hi"))
		}, []string{"header 103", "header 200", "write 2"}, 200, 2},
		{"explicit then writes", func(r *Recorder) {
			r.WriteHeader(http.StatusNotFound)
			_, _ = r.Write([]byte("not "))
			_, _ = r.ReadFrom(strings.NewReader("found"))
			_, _ = r.Write(nil)
		}, []string{"header 404", "write 4", "readfrom", "write 0"}, 404, 9},
	} {
		s := &readerFromSink{sink: newSink()}
		r := &Recorder{ResponseWriter: s}
		tt.do(r)
		if !slices.Equal(s.events, tt.want) {
			t.Errorf("%s: passed on %q, want %q", tt.name, s.events, tt.want)
		}
		if got := r.Status(); got != tt.status {
			t.Errorf("%s: Status() = %d, want %d", tt.name, got, tt.status)
		}
		if got := r.Bytes(); got != tt.bytes || int64(s.body.Len()) != tt.bytes {
			t.Errorf("%s: Bytes() = %d, body %d bytes; want %d", tt.name, got, s.body.Len(), tt.bytes)
		}
	}
}

// TestRecorderHook: the hook runs exactly once, with the final code,
// before the header goes out (the sink sees its edit), whichever call
// writes the header.
func TestRecorderHook(t *testing.T) {
	for _, tt := range []struct {
		name string
		do   func(*Recorder)
		want []string
		code int
	}{
		{"explicit", func(r *Recorder) {
			r.WriteHeader(http.StatusPartialContent)
			_, _ = r.Write([]byte("ab"))
			r.WriteHeader(http.StatusOK)
		}, []string{"header 206 X-Hooked=1", "write 2", "header 200 X-Hooked=1"}, 206},
		{"implicit write", func(r *Recorder) {
			_, _ = r.Write([]byte("ab"))
			_, _ = r.Write([]byte("cd"))
		}, []string{"header 200 X-Hooked=1", "write 2", "write 2"}, 200},
		{"implicit readfrom", func(r *Recorder) {
			_, _ = r.ReadFrom(strings.NewReader("ab"))
			_, _ = r.ReadFrom(strings.NewReader("cd"))
		}, []string{"header 200 X-Hooked=1", "readfrom", "readfrom"}, 200},
		{"103 then 200", func(r *Recorder) {
			r.WriteHeader(http.StatusEarlyHints)
			r.WriteHeader(http.StatusOK)
			_, _ = r.Write([]byte("ab"))
		}, []string{"header 103", "header 200 X-Hooked=1", "write 2"}, 200},
		{"101", func(r *Recorder) { r.WriteHeader(http.StatusSwitchingProtocols) }, []string{"header 101 X-Hooked=1"}, 101},
	} {
		s := &readerFromSink{sink: newSink()}
		k := &hook{}
		r := &Recorder{ResponseWriter: s, Hook: k}
		tt.do(r)
		if !slices.Equal(s.events, tt.want) {
			t.Errorf("%s: passed on %q, want %q", tt.name, s.events, tt.want)
		}
		if !slices.Equal(k.codes, []int{tt.code}) {
			t.Errorf("%s: hook called with %v, want once with %d", tt.name, k.codes, tt.code)
		}
	}
	// No final header, no hook.
	k := &hook{}
	r := &Recorder{ResponseWriter: newSink(), Hook: k}
	r.WriteHeader(http.StatusEarlyHints)
	if k.calls != 0 {
		t.Errorf("hook called %d times for a 103 alone, want 0", k.calls)
	}
}

// TestRecorderReadFrom: ReadFrom hands the reader itself to the wrapped
// writer's ReadFrom (net/http unwraps an *io.LimitedReader of an *os.File
// for sendfile), and copies through Write for a writer without one.
func TestRecorderReadFrom(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src := &io.LimitedReader{R: f, N: 4}
	s := &readerFromSink{sink: newSink()}
	r := &Recorder{ResponseWriter: s}
	n, err := r.ReadFrom(src)
	if n != 4 || err != nil || s.body.String() != "0123" {
		t.Errorf("ReadFrom = %d, %v, body %q; want 4, nil, %q", n, err, s.body.String(), "0123")
	}
	if s.src != io.Reader(src) {
		t.Errorf("the wrapped ReadFrom got %T, want the caller's *io.LimitedReader", s.src)
	}

	plain := newSink() // like HTTP/2's writer: no ReadFrom
	r = &Recorder{ResponseWriter: plain}
	n, err = r.ReadFrom(strings.NewReader("hello"))
	if n != 5 || err != nil || plain.body.String() != "hello" || r.Bytes() != 5 {
		t.Errorf("ReadFrom without a ReaderFrom = %d, %v, body %q, Bytes %d; want 5, nil, %q, 5",
			n, err, plain.body.String(), r.Bytes(), "hello")
	}
	if want := []string{"header 200", "write 5"}; !slices.Equal(plain.events, want) {
		t.Errorf("passed on %q, want %q", plain.events, want)
	}
}

// TestRecorderUnwrap: http.ResponseController reaches the wrapped writer,
// through a Recorder embedded in another type too.
func TestRecorderUnwrap(t *testing.T) {
	s := newSink()
	outer := &struct{ Recorder }{Recorder{ResponseWriter: &Recorder{ResponseWriter: s}}}
	rc := http.NewResponseController(outer)
	d := time.Now().Add(time.Minute)
	if err := rc.SetWriteDeadline(d); err != nil || !s.deadline.Equal(d) {
		t.Errorf("SetWriteDeadline: %v, deadline %v; want nil, %v", err, s.deadline, d)
	}
	if err := rc.Flush(); err != nil || s.flushed != 1 {
		t.Errorf("Flush: %v, %d flushes; want nil, 1", err, s.flushed)
	}
}

// TestRecorderServer runs a Recorder under net/http: a 103 goes out as an
// interim answer with its own header, the hook edits only the final one,
// and a file sent with ReadFrom arrives whole.
func TestRecorderServer(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	content := bytes.Repeat([]byte("corral "), 10000)
	if err := os.WriteFile(name, content, 0o644); err != nil {
		t.Fatal(err)
	}
	type result struct {
		status int
		bytes  int64
		hooked []int
	}
	results := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		k := &hook{}
		r := &Recorder{ResponseWriter: w, Hook: k}
		r.Header().Set("Link", "</a.css>; rel=preload")
		r.WriteHeader(http.StatusEarlyHints)
		f, err := os.Open(name)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(r, f)
		results <- result{r.Status(), r.Bytes(), k.codes}
	}))
	defer srv.Close()

	var interim []int
	var interimHooked []string
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			interim = append(interim, code)
			interimHooked = append(interimHooked, h.Get("X-Hooked"))
			return nil
		},
	}))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, content) {
		t.Fatalf("answer %d, %d bytes, %v; want 200, %d bytes", resp.StatusCode, len(body), err, len(content))
	}
	if !slices.Equal(interim, []int{103}) || interimHooked[0] != "" {
		t.Errorf("interim answers %v with X-Hooked %q, want one 103 without", interim, interimHooked)
	}
	if got := resp.Header.Get("X-Hooked"); got != "1" {
		t.Errorf("final X-Hooked %q, want %q", got, "1")
	}
	got := <-results
	if want := (result{200, int64(len(content)), []int{200}}); got.status != want.status || got.bytes != want.bytes ||
		!slices.Equal(got.hooked, want.hooked) {
		t.Errorf("recorded %+v, want %+v", got, want)
	}
}
