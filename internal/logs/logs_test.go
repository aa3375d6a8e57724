package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var when = time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))

// line formats one record at a fixed time through the text handler,
// after prepare (WithAttrs/WithGroup) has been applied.
func line(t *testing.T, prepare func(slog.Handler) slog.Handler, level slog.Level, msg string, attrs ...slog.Attr) string {
	t.Helper()
	var b bytes.Buffer
	h := prepare(New(&b, slog.LevelDebug, "text").Handler())
	r := slog.NewRecord(when, level, msg, 0)
	r.AddAttrs(attrs...)
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func same(h slog.Handler) slog.Handler { return h }

func TestTextFormat(t *testing.T) {
	const ts = "2026-11-22T09:00:00.123Z " // UTC, milliseconds
	tb := "Traceback (most recent call last):\n  File \"app.py\", line 3, in app\n    1/0\nZeroDivisionError: division by zero\n"
	cases := []struct {
		name    string
		prepare func(slog.Handler) slog.Handler
		level   slog.Level
		msg     string
		attrs   []slog.Attr
		want    string
	}{
		{
			name:    "component from WithAttrs",
			prepare: func(h slog.Handler) slog.Handler { return h.WithAttrs([]slog.Attr{slog.String("component", "pool")}) },
			level:   slog.LevelInfo, msg: "worker ready",
			attrs: []slog.Attr{slog.Int("worker", 1), slog.Int("pid", 4242)},
			want:  ts + "INFO  pool: worker ready worker=1 pid=4242\n",
		},
		{
			name:    "component on the record",
			prepare: same, level: slog.LevelWarn, msg: "slow",
			attrs: []slog.Attr{slog.String("component", "front"), slog.Duration("took", 1500*time.Millisecond)},
			want:  ts + "WARN  front: slow took=1.5s\n",
		},
		{
			name:    "no component; level padding",
			prepare: same, level: slog.LevelError, msg: "boom",
			want: ts + "ERROR boom\n",
		},
		{
			name:    "quoting",
			prepare: same, level: slog.LevelDebug, msg: "q",
			attrs: []slog.Attr{
				slog.String("plain", "a/b:c"), slog.String("space", "a b"), slog.String("empty", ""),
				slog.String("eq", "a=b"), slog.String("quote", `say "hi"`), slog.String("tab", "a\tb"),
				slog.String("ctl", "a\x01b"), slog.String("del", "a\x7fb"), slog.String("utf8", "héllo"),
			},
			want: ts + `DEBUG q plain=a/b:c space="a b" empty="" eq="a=b" quote="say \"hi\"" tab="a\tb" ctl="a\x01b" del="a\x7fb" utf8=héllo` + "\n",
		},
		{
			name:    "traceback printed verbatim below the line",
			prepare: func(h slog.Handler) slog.Handler { return h.WithAttrs([]slog.Attr{slog.String("component", "pool")}) },
			level:   slog.LevelError, msg: "application error",
			attrs: []slog.Attr{slog.String("path", "/x"), slog.String("traceback", tb), slog.Int("worker", 2)},
			want: ts + "ERROR pool: application error path=/x worker=2\n" +
				"    Traceback (most recent call last):\n" +
				"      File \"app.py\", line 3, in app\n" +
				"        1/0\n" +
				"    ZeroDivisionError: division by zero\n",
		},
		{
			name: "multi-line attrs from WithAttrs come first, record's after",
			prepare: func(h slog.Handler) slog.Handler {
				return h.WithAttrs([]slog.Attr{slog.String("a", "one\ntwo"), slog.Int("n", 1)})
			},
			level: slog.LevelInfo, msg: "m",
			attrs: []slog.Attr{slog.String("b", "three\nfour\n\n"), slog.Int("k", 2)},
			want:  ts + "INFO  m n=1 k=2\n    one\n    two\n    three\n    four\n",
		},
		{
			name: "WithAttrs keeps earlier attrs and adds in order",
			prepare: func(h slog.Handler) slog.Handler {
				return h.WithAttrs([]slog.Attr{slog.Int("a", 1)}).WithAttrs([]slog.Attr{slog.Int("b", 2)})
			},
			level: slog.LevelInfo, msg: "m",
			attrs: []slog.Attr{slog.Int("c", 3)},
			want:  ts + "INFO  m a=1 b=2 c=3\n",
		},
		{
			name: "groups prefix keys",
			prepare: func(h slog.Handler) slog.Handler {
				return h.WithGroup("req").WithAttrs([]slog.Attr{slog.Int("a", 1)}).WithGroup("sub")
			},
			level: slog.LevelInfo, msg: "m",
			attrs: []slog.Attr{slog.Int("b", 2)},
			want:  ts + "INFO  m req.a=1 req.sub.b=2\n",
		},
		{
			name:    "group attr",
			prepare: same, level: slog.LevelInfo, msg: "m",
			attrs: []slog.Attr{slog.Group("g", slog.Int("x", 1), slog.Group("h", slog.String("y", "z")))},
			want:  ts + "INFO  m g.x=1 g.h.y=z\n",
		},
		{
			name:    "group attr inside a group",
			prepare: func(h slog.Handler) slog.Handler { return h.WithGroup("req") },
			level:   slog.LevelInfo, msg: "m",
			attrs: []slog.Attr{slog.Group("g", slog.Int("x", 1)), slog.Int("y", 2)},
			want:  ts + "INFO  m req.g.x=1 req.y=2\n",
		},
		{
			name:    "group attr with an empty key is inlined",
			prepare: func(h slog.Handler) slog.Handler { return h.WithGroup("req") },
			level:   slog.LevelInfo, msg: "m",
			attrs: []slog.Attr{slog.Group("", slog.Int("x", 1))},
			want:  ts + "INFO  m req.x=1\n",
		},
		{
			name: "component inside a group is an ordinary attr",
			prepare: func(h slog.Handler) slog.Handler {
				return h.WithAttrs([]slog.Attr{slog.String("component", "pool")}).WithGroup("req")
			},
			level: slog.LevelInfo, msg: "m",
			attrs: []slog.Attr{slog.String("component", "x")},
			want:  ts + "INFO  pool: m req.component=x\n",
		},
		{
			name:    "empty attrs are dropped, LogValuers resolved",
			prepare: same, level: slog.LevelInfo, msg: "m",
			attrs: []slog.Attr{{}, slog.Any("v", valuer{}), slog.Any("err", errors.New("no such file"))},
			want:  ts + `INFO  m v=resolved err="no such file"` + "\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := line(t, c.prepare, c.level, c.msg, c.attrs...); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.StringValue("resolved") }

// WithAttrs and WithGroup return new handlers; the original is unchanged.
func TestTextHandlerImmutable(t *testing.T) {
	var b bytes.Buffer
	base := New(&b, slog.LevelInfo, "text")
	withA := base.With("component", "pool", "a", 1)
	_ = withA.WithGroup("g").With("b", 2)
	base.Info("base")
	withA.Info("withA")
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{"INFO  base", "INFO  pool: withA a=1"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines %q, want %d", len(lines), lines, len(want))
	}
	for i, l := range lines {
		if _, rest, _ := strings.Cut(l, " "); rest != want[i] {
			t.Errorf("line %d = %q, want %q after the time", i, rest, want[i])
		}
	}
}

func TestTextLevel(t *testing.T) {
	var b bytes.Buffer
	l := New(&b, slog.LevelWarn, "text")
	l.Info("hidden")
	l.Debug("hidden")
	l.Warn("shown")
	l.Error("shown too")
	if got, want := strings.Count(b.String(), "\n"), 2; got != want {
		t.Errorf("%d lines written, want %d:\n%s", got, want, b.String())
	}
	if strings.Contains(b.String(), "hidden") {
		t.Errorf("a record below the level was written:\n%s", b.String())
	}
	if !l.Enabled(context.Background(), slog.LevelError) || l.Enabled(context.Background(), slog.LevelInfo) {
		t.Error("Enabled disagrees with the level")
	}
}

func TestTextTimeIsUTC(t *testing.T) {
	var b bytes.Buffer
	New(&b, slog.LevelInfo, "text").Info("now")
	ts, _, _ := strings.Cut(b.String(), " ")
	got, err := time.Parse("2006-01-02T15:04:05.000Z", ts)
	if err != nil {
		t.Fatalf("time %q: %v", ts, err)
	}
	if d := time.Since(got); d < -time.Minute || d > time.Minute {
		t.Errorf("time %q is %v away from now", ts, d)
	}
}

func TestJSONFormat(t *testing.T) {
	var b bytes.Buffer
	l := New(&b, slog.LevelInfo, "json").With("component", "pool")
	l.Debug("hidden")
	l.Error("application error", "worker", 2, "traceback", "Traceback\n  line\n")
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, b.String())
	}
	want := map[string]any{"level": "ERROR", "msg": "application error", "component": "pool",
		"worker": float64(2), "traceback": "Traceback\n  line\n"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if _, ok := got["time"]; !ok {
		t.Error("no time key")
	}
}

// Concurrent writers never interleave within a line.
func TestTextConcurrent(t *testing.T) {
	var b bytes.Buffer
	l := New(&b, slog.LevelInfo, "text")
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			w := l.With("component", "c", "g", i)
			for range 100 {
				w.Info("message", "traceback", "a\nb")
			}
		}()
	}
	for range 8 {
		<-done
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if got, want := len(lines), 8*100*3; got != want {
		t.Fatalf("%d lines, want %d", got, want)
	}
	for i := 0; i < len(lines); i += 3 {
		if !strings.Contains(lines[i], "c: message g=") || lines[i+1] != "    a" || lines[i+2] != "    b" {
			t.Fatalf("lines %d..%d interleaved: %q", i, i+2, lines[i:i+3])
		}
	}
}

func TestOpen(t *testing.T) {
	var std bytes.Buffer
	for _, path := range []string{"", "-"} {
		w, closeLog, err := Open(path, &std)
		if err != nil || w != &std {
			t.Errorf("Open(%q) = %v, %v; want the standard stream", path, w, err)
			continue
		}
		closeLog()
	}
	path := filepath.Join(t.TempDir(), "corral.log")
	if err := os.WriteFile(path, []byte("before\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, closeLog, err := Open(path, &std)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "after\n")
	closeLog()
	if b, _ := os.ReadFile(path); string(b) != "before\nafter\n" {
		t.Errorf("log file holds %q, want the line appended", b)
	}
	if _, _, err := Open(filepath.Join(t.TempDir(), "missing", "x.log"), &std); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open in a missing directory: %v", err)
	}
}
