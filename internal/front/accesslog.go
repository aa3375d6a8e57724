package front

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// AccessLog writes one line per request, in the Apache/nginx "combined"
// format or as JSON. Lines are buffered and flushed at least every second,
// so logging costs no write(2) per request under load.
type AccessLog struct {
	json  bool
	parts []logPart // a gunicorn format; nil = combined or json
	pid   int       // corral's, for %(p)s when no worker ran the request

	mu    sync.Mutex
	w     *bufio.Writer
	dst   io.Writer
	stop  chan struct{}
	done  chan struct{}
	line  []byte
	dirty bool
}

// NewAccessLog starts an access log writing to dst; format is "combined"
// or "json". Close flushes it.
func NewAccessLog(dst io.Writer, format string) *AccessLog {
	l := &AccessLog{
		json: format == "json", w: bufio.NewWriterSize(dst, 64<<10), dst: dst,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go l.flusher()
	return l
}

func (l *AccessLog) flusher() {
	defer close(l.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.mu.Lock()
			if l.dirty {
				_ = l.w.Flush()
				l.dirty = false
			}
			l.mu.Unlock()
		case <-l.stop:
			return
		}
	}
}

// Close flushes buffered lines and stops the flusher.
func (l *AccessLog) Close() error {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Flush()
}

// Entry is what the access log knows of one answered request.
type Entry struct {
	Req      *http.Request
	Status   int
	Sent     int64         // response body bytes
	Duration time.Duration // from the request's head to the answer's end
	// Header is the response's header as sent; nil if unknown.
	Header http.Header
	// Worker is the pid of the worker that ran the request; 0 = none.
	Worker int
	// RequestID is the request's ID; "" = none.
	RequestID string
}

// Log records one request (static files: no worker, no response header).
func (l *AccessLog) Log(r *http.Request, status int, size int64, d time.Duration) {
	l.LogEntry(&Entry{Req: r, Status: status, Sent: size, Duration: d})
}

// LogEntry records one request.
func (l *AccessLog) LogEntry(e *Entry) {
	r := e.Req
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if host == "" {
		host = "-"
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.line[:0]
	switch {
	case l.parts != nil:
		b = l.appendGunicorn(b, e, host, now)
	case l.json:
		b = l.appendJSON(b, e, host, now)
	default:
		b = appendCombined(b, r, host, e.Status, e.Sent, now)
	}
	l.line = b
	_, _ = l.w.Write(b)
	l.dirty = true
}

// appendCombined writes: host - - [time] "request" status size "referer" "agent".
func appendCombined(b []byte, r *http.Request, host string, status int, size int64, now time.Time) []byte {
	b = append(b, host...)
	b = append(b, " - - ["...)
	b = now.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = appendQuoted(b, r.Method+" "+r.RequestURI+" "+r.Proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if size > 0 {
		b = strconv.AppendInt(b, size, 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, " \""...)
	b = appendQuoted(b, orDash(r.Referer()))
	b = append(b, "\" \""...)
	b = appendQuoted(b, orDash(r.UserAgent()))
	return append(b, "\"\n"...)
}

// appendQuoted escapes quotes, backslashes and control bytes so a client
// cannot forge log lines.
func appendQuoted(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type jsonLine struct {
	Time     string  `json:"time"`
	Remote   string  `json:"remote_addr"`
	Method   string  `json:"method"`
	URI      string  `json:"uri"`
	Proto    string  `json:"proto"`
	Status   int     `json:"status"`
	Bytes    int64   `json:"bytes"`
	Duration float64 `json:"duration_ms"`
	Referer  string  `json:"referer,omitempty"`
	Agent    string  `json:"user_agent,omitempty"`
	Host     string  `json:"host,omitempty"`
	ID       string  `json:"request_id,omitempty"`
}

func (l *AccessLog) appendJSON(b []byte, e *Entry, host string, now time.Time) []byte {
	r := e.Req
	js, _ := json.Marshal(jsonLine{
		Time: now.UTC().Format(time.RFC3339Nano), Remote: host, Method: r.Method, URI: r.RequestURI,
		Proto: r.Proto, Status: e.Status, Bytes: e.Sent, Duration: float64(e.Duration.Microseconds()) / 1000,
		Referer: r.Referer(), Agent: r.UserAgent(), Host: r.Host, ID: e.RequestID,
	})
	b = append(b, js...)
	return append(b, '\n')
}
