package front

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// errBodyTooLarge and errBodyTimeout end a body read; the handler answers
// 413 and 408.
var (
	errBodyTooLarge = errors.New("request body too large")
	errBodyTimeout  = errors.New("request body read timed out")
)

// body is a request body read completely before dispatch, so a slow
// upload never holds a worker: in memory up to a threshold, then in an
// unlinked temporary file.
type body struct {
	mem  []byte
	file *os.File
	size int64
}

func (b *body) ReadAt(p []byte, off int64) (int, error) {
	if b.file != nil {
		return b.file.ReadAt(p, off)
	}
	return bytes.NewReader(b.mem).ReadAt(p, off)
}

func (b *body) Size() int64 { return b.size }

func (b *body) close() {
	if b.file != nil {
		b.file.Close()
	}
}

// readBody reads r's body, extending the read deadline before every read so
// that BodyTimeout bounds the time between two reads (like nginx's
// client_body_timeout) rather than the whole upload.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (*body, error) {
	b := &body{}
	rc := http.NewResponseController(w)
	limit := h.cfg.MaxBodySize
	var buf []byte
	if n := r.ContentLength; n > 0 && n <= h.cfg.BodyMemory {
		buf = make([]byte, 0, n)
	}
	chunk := make([]byte, 32<<10)
	for {
		if h.cfg.BodyTimeout > 0 {
			_ = rc.SetReadDeadline(time.Now().Add(h.cfg.BodyTimeout))
		}
		n, err := r.Body.Read(chunk)
		if n > 0 {
			b.size += int64(n)
			if limit > 0 && b.size > limit {
				b.close()
				return nil, errBodyTooLarge
			}
			if b.file == nil && int64(len(buf)+n) > h.cfg.BodyMemory {
				if b.file, err = h.spillBody(buf); err != nil {
					return nil, err
				}
				buf = nil
			}
			if b.file != nil {
				if _, werr := b.file.Write(chunk[:n]); werr != nil {
					b.close()
					return nil, werr
				}
			} else {
				buf = append(buf, chunk[:n]...)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			b.close()
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, errBodyTooLarge
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, errBodyTimeout
			}
			return nil, err
		}
	}
	if h.cfg.BodyTimeout > 0 {
		_ = rc.SetReadDeadline(time.Time{})
	}
	b.mem = buf
	return b, nil
}

func (h *Handler) spillBody(head []byte) (*os.File, error) {
	f, err := os.CreateTemp(h.cfg.SpoolDir, "corral-body-")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name()) // the descriptor keeps it; nothing to clean up later
	if _, err := f.Write(head); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// inline reports whether the body travels inside the REQUEST frame: in
// memory and at most limit bytes. A nil body does not.
func (b *body) inline(limit int) bool {
	return b != nil && b.file == nil && b.size <= int64(limit)
}
