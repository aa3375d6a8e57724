package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	b := make([]byte, HeaderSize)
	want := Header{Type: Start, Flags: FlagEnd, ID: 7, Length: 99}
	PutHeader(b, want)
	got, err := ParseHeader(b)
	if err != nil || got != want {
		t.Fatalf("ParseHeader = %+v, %v; want %+v", got, err, want)
	}
}

func TestParseHeaderRejects(t *testing.T) {
	cases := []struct {
		name string
		h    Header
		want error
	}{
		{"master frame from worker", Header{Type: Request, ID: 1}, ErrUnknownType},
		{"unknown type", Header{Type: 0x7f, ID: 1}, ErrUnknownType},
		{"too large", Header{Type: Body, ID: 1, Length: MaxPayload + 1}, ErrTooLarge},
		{"request frame without id", Header{Type: Body, Length: 1}, ErrMalformed},
		{"bad flags", Header{Type: Body, ID: 1, Flags: 1, Length: 1}, ErrMalformed},
		{"short START", Header{Type: Start, ID: 1, Length: 3}, ErrMalformed},
		{"FILE size", Header{Type: File, ID: 1, Length: 15}, ErrMalformed},
		{"END payload", Header{Type: End, ID: 1, Length: 1}, ErrMalformed},
		{"RETURNED size", Header{Type: Returned, Length: 6}, ErrMalformed},
	}
	for _, c := range cases {
		b := make([]byte, HeaderSize)
		PutHeader(b, c.h)
		if _, err := ParseHeader(b); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	b := make([]byte, HeaderSize)
	PutHeader(b, Header{Type: Body, ID: 1, Length: 1})
	b[3] = 1
	if _, err := ParseHeader(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("reserved bytes: err = %v, want ErrMalformed", err)
	}
}

func TestParseMasterHeader(t *testing.T) {
	cases := []struct {
		name string
		h    Header
		want error
	}{
		{"request", Header{Type: Request, ID: 1, Length: 10}, nil},
		{"steal", Header{Type: Steal}, nil},
		{"fork", Header{Type: Fork, ID: 2, Length: 20}, nil},
		{"worker frame from master", Header{Type: Start, ID: 1, Length: 4}, ErrUnknownType},
		{"unknown type", Header{Type: 0x7f}, ErrUnknownType},
		{"too large", Header{Type: Data, ID: 1, Length: MaxPayload + 1}, ErrTooLarge},
	}
	for _, c := range cases {
		b := make([]byte, HeaderSize)
		PutHeader(b, c.h)
		got, err := ParseMasterHeader(b)
		if !errors.Is(err, c.want) || (err == nil && got != c.h) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", c.name, got, err, c.h, c.want)
		}
	}
	var buf []byte
	buf = AppendFrame(buf, Request, FlagBodyPull, 7, []byte("env"))
	f, err := NewMasterReader(bytes.NewReader(buf)).Next()
	if err != nil || f.Type != Request || f.ID != 7 || string(f.Payload) != "env" {
		t.Errorf("NewMasterReader: %+v, %v", f, err)
	}
	if _, err := NewReader(bytes.NewReader(buf)).Next(); !errors.Is(err, ErrUnknownType) {
		t.Errorf("NewReader on a master frame: err = %v, want ErrUnknownType", err)
	}
}

func TestReaderNext(t *testing.T) {
	var buf []byte
	buf = AppendFrame(buf, Start, FlagEnd, 3, []byte{0, 0, 0, 6}, []byte("200 OK"), []byte("hi"))
	buf = AppendFrame(buf, End, 0, 4)
	r := NewReader(bytes.NewReader(buf))
	f, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	head, body, err := SplitStart(f.Payload)
	if err != nil || string(head) != "200 OK" || string(body) != "hi" || f.ID != 3 || f.Flags != FlagEnd {
		t.Fatalf("frame %+v: head %q body %q err %v", f.Header, head, body, err)
	}
	f, err = r.Next()
	if err != nil || f.Type != End || f.ID != 4 || f.Payload != nil {
		t.Fatalf("second frame %+v, %v", f, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("at end: err = %v, want io.EOF", err)
	}
	r = NewReader(bytes.NewReader(buf[:HeaderSize+3]))
	if _, err := r.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated payload: err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestRequestBuilder(t *testing.T) {
	b := BeginRequest(nil)
	b = AddEnv(b, "REQUEST_METHOD", "GET")
	b = AddEnv(b, "PATH_INFO", "/caf\xe9")
	b, err := FinishRequest(b, 9, FlagBodyPull, []byte("body"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ParseHeaderAny(b)
	if h.Type != Request || h.ID != 9 || h.Flags != FlagBodyPull || int(h.Length) != len(b)-HeaderSize {
		t.Fatalf("header %+v for %d bytes", h, len(b))
	}
	n := binary.BigEndian.Uint32(b[HeaderSize:])
	env := string(b[HeaderSize+4 : HeaderSize+4+int(n)])
	if want := "REQUEST_METHOD\x00GET\x00PATH_INFO\x00/caf\xe9"; env != want {
		t.Fatalf("environ %q, want %q", env, want)
	}
	if got := string(b[HeaderSize+4+int(n):]); got != "body" {
		t.Fatalf("body %q", got)
	}
	if _, err := FinishRequest(BeginRequest(nil), 1, 0, make([]byte, MaxPayload)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized request: err = %v", err)
	}
}

func TestParseHead(t *testing.T) {
	status, hdrs, err := ParseHead([]byte("404 Not Found\x00Content-Type\x00text/plain\x00Set-Cookie\x00a=1"))
	if err != nil || status != "404 Not Found" || len(hdrs) != 4 || hdrs[3] != "a=1" {
		t.Fatalf("ParseHead = %q %q %v", status, hdrs, err)
	}
	if _, _, err := ParseHead([]byte("200 OK\x00X-Lonely")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("odd head: err = %v", err)
	}
	if _, _, err := SplitStart([]byte{0, 0, 1, 0, 'x'}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("head longer than payload: err = %v", err)
	}
}

func TestSmallPayloads(t *testing.T) {
	p := make([]byte, 16)
	binary.BigEndian.PutUint64(p, 5)
	binary.BigEndian.PutUint64(p[8:], ^uint64(0))
	off, n, err := ParseFile(p)
	if err != nil || off != 5 || n != -1 {
		t.Fatalf("ParseFile = %d %d %v", off, n, err)
	}
	binary.BigEndian.PutUint64(p[8:], ^uint64(1))
	if _, _, err := ParseFile(p); err == nil {
		t.Fatal("ParseFile accepted count -2")
	}
	if _, err := ParseRead([]byte{0, 0, 0, 0}); err == nil {
		t.Fatal("ParseRead accepted 0")
	}
	if n, err := ParseRead([]byte{0, 1, 0, 0}); err != nil || n != 65536 {
		t.Fatalf("ParseRead = %d %v", n, err)
	}
	if ids := ParseReturned([]byte{0, 0, 0, 1, 0, 0, 1, 0}); len(ids) != 2 || ids[1] != 256 {
		t.Fatalf("ParseReturned = %v", ids)
	}
}

// FuzzReader feeds arbitrary bytes to the decoder: it must never panic, never
// return a payload longer than the limit, and every frame it accepts must
// re-encode to the same bytes.
func FuzzReader(f *testing.F) {
	f.Add(AppendFrame(nil, Start, FlagEnd, 1, []byte{0, 0, 0, 2}, []byte("ok")))
	f.Add(AppendFrame(nil, Hello, 0, 0, []byte(`{"protocol":1}`)))
	f.Add(AppendFrame(nil, Returned, 0, 0, []byte{0, 0, 0, 1}))
	f.Add([]byte{0x13, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		var out []byte
		consumed := 0
		for {
			fr, err := r.Next()
			if err != nil {
				break
			}
			if len(fr.Payload) > MaxPayload {
				t.Fatalf("payload of %d bytes", len(fr.Payload))
			}
			out = AppendFrame(out, fr.Type, fr.Flags, fr.ID, fr.Payload)
			consumed = len(out)
			switch fr.Type {
			case Start:
				if head, _, err := SplitStart(fr.Payload); err == nil {
					_, _, _ = ParseHead(head)
				}
			case File:
				_, _, _ = ParseFile(fr.Payload)
			case Read:
				_, _ = ParseRead(fr.Payload)
			case Returned:
				_ = ParseReturned(fr.Payload)
			}
		}
		if !bytes.Equal(out, data[:consumed]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func TestBan(t *testing.T) {
	b := make([]byte, HeaderSize)
	PutHeader(b, Header{Type: Ban, Length: 10})
	if _, err := ParseHeader(b); err != nil {
		t.Errorf("BAN with id 0: %v", err)
	}
	PutHeader(b, Header{Type: Ban, ID: 5, Flags: 1, Length: 10})
	if _, err := ParseHeader(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("BAN with flags: %v", err)
	}
	got, err := ParseBan([]byte(`{"addr": "192.0.2.1", "seconds": 90.5, "reason": "signup spam"}`))
	if err != nil || got != (BanRequest{Addr: "192.0.2.1", Seconds: 90.5, Reason: "signup spam"}) {
		t.Errorf("ParseBan = %+v, %v", got, err)
	}
	for _, bad := range []string{`{"addr": "x"}`, `{"seconds": 3}`, `{"addr": "x", "seconds": -1}`, `[`, `{"addr": 1, "seconds": 1}`} {
		if _, err := ParseBan([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseBan(%s) = %v, want ErrMalformed", bad, err)
		}
	}
}
