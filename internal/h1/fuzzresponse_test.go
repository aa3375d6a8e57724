package h1

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzResponse runs a handler programmed by the fuzz input under
// net/http and under the fast path and compares the bytes on the wire
// (Date masked) and what the handler's calls returned. The first byte
// picks the request; each later pair of bytes is one call.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		"\x00\x03\x01",                         // a small write
		"\x00\x03\x06",                         // 5000 bytes: chunked
		"\x01\x03\x02",                         // HEAD
		"\x02\x03\x01\x04\x00\x03\x01",         // HTTP/1.0, flush between writes
		"\x03\x00\x05\x03\x01",                 // HTTP/1.0 keep-alive, Content-Length
		"\x00\x06\x00\x02\x02\x03\x01\x07\x01", // trailers
		"\x00\x02\x01\x02\x02\x03\x01",         // 103 then 200
		"\x00\x05\x03\x03\x01",                 // Date suppressed
		"\x04\x08\x03",                         // Connection: close, ReadFrom
	} {
		f.Add([]byte(s))
	}
	rec := &recorder{}
	var prog []byte // the program of the current run; runs are sequential
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runProgram(w, prog, rec)
	})
	ref := startNetHTTP(f, h, nil)
	fast := startFast(f, h, nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || len(in) > 41 {
			return
		}
		raw := fuzzRequests[int(in[0])%len(fuzzRequests)]
		prog = in[1:]
		want := maskDate(exchangeTCP(t, ref.addr, raw))
		wantNotes := rec.take()
		got := maskDate(exchangeTCP(t, fast.addr, raw))
		gotNotes := rec.take()
		if got != want {
			t.Errorf("program %q on %q: wire bytes differ\n got: %q\nwant: %q", in, raw, abbreviate(got), abbreviate(want))
		}
		if gotNotes != wantNotes {
			t.Errorf("program %q on %q: handler saw\n got: %s\nwant: %s", in, raw, gotNotes, wantNotes)
		}
	})
}

var fuzzRequests = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
}

var (
	fuzzKeys   = []string{"Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Date", "X-A", "Content-Encoding", "Trailer", "Upgrade", "Etag"}
	fuzzValues = []string{"0", "5", "abc", "100", "chunked", "identity", "close", "keep-alive", "text/html", "gzip", "X-T", " a\nb ", "", "X-T, Content-Length"}
	fuzzCodes  = []int{100, 103, 200, 201, 204, 206, 301, 304, 400, 404, 500, 599, 999, 101}
	fuzzSizes  = []int{0, 1, 5, 100, 511, 512, 2047, 2048, 2049, 5000}
)

// runProgram performs the calls prog encodes on w, noting what they
// return in rec.
func runProgram(w http.ResponseWriter, prog []byte, rec *recorder) {
	pick := func(b byte, n int) int { return int(b) % n }
	body := strings.Repeat("<html>0123456789", 400)
	for i := 0; i+1 < len(prog); i += 2 {
		op, arg := prog[i], prog[i+1]
		switch op % 9 {
		case 0:
			w.Header().Set(fuzzKeys[pick(arg, len(fuzzKeys))], fuzzValues[pick(arg>>4, len(fuzzValues))])
		case 1:
			w.Header().Del(fuzzKeys[pick(arg, len(fuzzKeys))])
		case 2:
			w.WriteHeader(fuzzCodes[pick(arg, len(fuzzCodes))])
		case 3:
			n, err := io.WriteString(w, body[:fuzzSizes[pick(arg, len(fuzzSizes))]])
			rec.note("write %d %v", n, err)
		case 4:
			rec.note("flush %v", http.NewResponseController(w).Flush())
		case 5:
			w.Header()[fuzzKeys[pick(arg, len(fuzzKeys))]] = nil
		case 6:
			w.Header().Add("Trailer", []string{"X-T", "X-U", "Content-Length", "If-Match"}[pick(arg, 4)])
		case 7:
			w.Header().Set([]string{"X-T", "X-U", http.TrailerPrefix + "X-V"}[pick(arg, 3)], fmt.Sprint(arg))
		case 8:
			n, err := io.Copy(w, strings.NewReader(body[:fuzzSizes[pick(arg, len(fuzzSizes))]]))
			rec.note("copy %d %v", n, err)
		}
	}
}
