// Package logs builds corral's error log: a slog handler that writes either
// human-readable lines or JSON. In the human format, a multi-line value
// (a Python traceback) is printed verbatim below its line, indented, so it
// reads like the traceback it is.
package logs

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Open opens a log destination: path "-" or "" is std (standard output
// or error), anything else a file opened for appending, created with mode
// 0640 if missing. The returned function closes the file; it does nothing
// for std.
func Open(path string, std io.Writer) (io.Writer, func(), error) {
	if path == "" || path == "-" {
		return std, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, nil, err // an *fs.PathError: it names the operation and the file
	}
	return f, func() { f.Close() }, nil
}

// New returns a logger writing to w at level; format is "text" or "json".
func New(w io.Writer, level slog.Level, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(&Handler{w: w, level: level, mu: &sync.Mutex{}})
}

// Handler is the human-readable format:
//
//	2026-11-22T10:00:00.123Z INFO  pool: worker ready worker=1 pid=4242
type Handler struct {
	w         io.Writer
	level     slog.Leveler
	mu        *sync.Mutex
	component string
	attrs     []byte // preformatted " key=value" pairs from WithAttrs
	multi     []slog.Attr
	group     string
}

func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = append([]byte(nil), h.attrs...)
	h2.multi = append([]slog.Attr(nil), h.multi...)
	for _, a := range as {
		if a.Key == "component" && h.group == "" {
			h2.component = a.Value.String()
			continue
		}
		h2.attrs, h2.multi = h2.appendAttr(h2.attrs, h2.multi, a)
	}
	return &h2
}

func (h *Handler) WithGroup(name string) slog.Handler {
	h2 := *h
	if h2.group != "" {
		name = h2.group + "." + name
	}
	h2.group = name
	return &h2
}

func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	b := make([]byte, 0, 256)
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, ' ')
	lv := r.Level.String()
	b = append(b, lv...)
	for i := len(lv); i < 5; i++ {
		b = append(b, ' ')
	}
	b = append(b, ' ')
	component := h.component
	var multi []slog.Attr
	multi = append(multi, h.multi...)
	rest := h.attrs
	var extra []byte
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "component" && h.group == "" {
			component = a.Value.String()
			return true
		}
		extra, multi = h.appendAttr(extra, multi, a)
		return true
	})
	if component != "" {
		b = append(b, component...)
		b = append(b, ": "...)
	}
	b = append(b, r.Message...)
	b = append(b, rest...)
	b = append(b, extra...)
	b = append(b, '\n')
	for _, a := range multi {
		for _, line := range strings.Split(strings.TrimRight(a.Value.String(), "\n"), "\n") {
			b = append(b, "    "...)
			b = append(b, line...)
			b = append(b, '\n')
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(b)
	return err
}

// appendAttr formats a as " key=value"; multi-line strings are set aside
// to be printed below the line.
func (h *Handler) appendAttr(b []byte, multi []slog.Attr, a slog.Attr) ([]byte, []slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return b, multi
	}
	key := a.Key
	if h.group != "" {
		key = h.group + "." + key
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			if a.Key != "" { // the recursive call adds h.group itself
				g.Key = a.Key + "." + g.Key
			}
			b, multi = h.appendAttr(b, multi, g)
		}
		return b, multi
	}
	s := a.Value.String()
	if strings.Contains(s, "\n") {
		return b, append(multi, a)
	}
	b = append(b, ' ')
	b = append(b, key...)
	b = append(b, '=')
	if s == "" || strings.ContainsAny(s, " \"=\t") || !printable(s) {
		b = strconv.AppendQuote(b, s)
	} else {
		b = append(b, s...)
	}
	return b, multi
}

// printable reports whether s can be written unquoted.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}
