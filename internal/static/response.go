package static

import (
	"io"
	"net/http"
	"time"

	"corral/internal/front"
)

// sendChunk is how much of a file goes out between two extensions of the
// write deadline: small enough that a slow but moving client is not cut
// off, large enough to keep sendfile(2) efficient.
const sendChunk = 256 << 10

// response notes the status and size for the access log (its Recorder),
// adds the Content-Encoding of a precompressed file to successful answers,
// and keeps a slow client from holding a connection forever. Its Hook is
// itself.
type response struct {
	front.Recorder
	coding      string // Content-Encoding for 200 and 206, "" for none
	sendTimeout time.Duration
}

// BeforeHeader adds the Content-Encoding to a 200 or 206.
func (w *response) BeforeHeader(h http.Header, code int) {
	if w.coding != "" && (code == http.StatusOK || code == http.StatusPartialContent) {
		h.Set("Content-Encoding", w.coding)
	}
}

func (w *response) Write(b []byte) (int, error) {
	w.extend()
	return w.Recorder.Write(b)
}

// ReadFrom sends src in chunks, each through the Recorder's ReadFrom and
// so the underlying writer's (sendfile for a file on a plain TCP
// connection), extending the write deadline before each.
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	if w.Status() == 0 { // also when src is empty and no chunk goes out
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
		n, err := w.Recorder.ReadFrom(part)
		total += n
		if limited {
			lr.N -= n
		}
		if err != nil || n < want {
			return total, err
		}
	}
}

func (w *response) extend() {
	if w.sendTimeout > 0 {
		_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.sendTimeout))
	}
}
