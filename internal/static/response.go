package static

import (
	"io"
	"net/http"
	"time"
)

// sendChunk is how much of a file goes out between two extensions of the
// write deadline: small enough that a slow but moving client is not cut
// off, large enough to keep sendfile(2) efficient.
const sendChunk = 256 << 10

// response notes the status and size for the access log, adds the
// Content-Encoding of a precompressed file to successful answers, and
// keeps a slow client from holding a connection forever.
type response struct {
	http.ResponseWriter
	coding      string // Content-Encoding for 200 and 206, "" for none
	sendTimeout time.Duration
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *response) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
		if w.coding != "" && (code == http.StatusOK || code == http.StatusPartialContent) {
			w.Header().Set("Content-Encoding", w.coding)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *response) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.extend()
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom sends src in chunks, each through the underlying writer's
// ReadFrom (sendfile for a file on a plain TCP connection), extending the
// write deadline before each.
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	// ServeContent hands over an *io.LimitedReader around the *os.File;
	// chunks must wrap the file itself for net/http to use sendfile.
	lr, limited := src.(*io.LimitedReader)
	var total int64
	for {
		var part *io.LimitedReader
		if limited {
			if lr.N <= 0 {
				return total, nil
			}
			part = &io.LimitedReader{R: lr.R, N: min(lr.N, sendChunk)}
		} else {
			part = &io.LimitedReader{R: src, N: sendChunk}
		}
		want := part.N
		w.extend()
		n, err := io.Copy(w.ResponseWriter, part)
		total += n
		w.bytes += n
		if limited {
			lr.N -= n
		}
		if err != nil || n < want {
			return total, err
		}
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *response) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *response) extend() {
	if w.sendTimeout > 0 {
		_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.sendTimeout))
	}
}
