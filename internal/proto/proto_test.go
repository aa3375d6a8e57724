package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
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
		{"WS_MESSAGE from master", Header{Type: WSSend, ID: 1}, ErrUnknownType},
		{"WS_CLOSE from master", Header{Type: WSClose, ID: 1, Length: 2}, ErrUnknownType},
		{"past the last type", Header{Type: WSAck + 1, ID: 1}, ErrUnknownType},
		{"TRAILERS without id", Header{Type: Trailers, Length: 3}, ErrMalformed},
		{"WS_ACCEPT without id", Header{Type: WSAccept}, ErrMalformed},
		{"WS_MESSAGE bad flags", Header{Type: WSMessage, ID: 1, Flags: 4, Length: 1}, ErrMalformed},
		{"WS_CLOSE short", Header{Type: WSClosed, ID: 1, Length: 1}, ErrMalformed},
		{"WS_ACK size", Header{Type: WSAck, ID: 1, Length: 8}, ErrMalformed},
		{"START unknown flag", Header{Type: Start, ID: 1, Flags: 4, Length: 4}, ErrMalformed},
		{"EARLY_HINT flags", Header{Type: EarlyHint, ID: 1, Flags: 1}, ErrMalformed},
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

func TestVersion2Headers(t *testing.T) {
	ok := []Header{
		{Type: Start, ID: 1, Flags: FlagEnd | FlagTrailers, Length: 4},
		{Type: Trailers, ID: 1, Length: 10},
		{Type: Trailers, ID: 1},
		{Type: EarlyHint, ID: 2, Length: 20},
		{Type: WSAccept, ID: 3},
		{Type: WSMessage, ID: 3, Flags: FlagText | FlagMore, Length: MaxPayload},
		{Type: WSMessage, ID: 3},
		{Type: WSClosed, ID: 3, Length: 2},
		{Type: WSClosed, ID: 3, Length: 500}, // a long reason is cut by the master, not refused
		{Type: WSAck, ID: 3, Length: 4},
	}
	for _, h := range ok {
		b := make([]byte, HeaderSize)
		PutHeader(b, h)
		if got, err := ParseHeader(b); err != nil || got != h {
			t.Errorf("ParseHeader(%+v) = %+v, %v", h, got, err)
		}
	}
	for _, tt := range []struct {
		t    Type
		want string
	}{{WSSend, "WS_MESSAGE"}, {WSClose, "WS_CLOSE"}, {Trailers, "TRAILERS"}, {EarlyHint, "EARLY_HINT"},
		{WSAccept, "WS_ACCEPT"}, {WSMessage, "WS_MESSAGE"}, {WSClosed, "WS_CLOSE"}, {WSAck, "WS_ACK"}} {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("%#x.String() = %q, want %q", uint8(tt.t), got, tt.want)
		}
	}
}

func TestParseHeaders(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"link\x00</a.css>; rel=preload", []string{"link", "</a.css>; rel=preload"}, false},
		{"a\x00\x00b\x00c", []string{"a", "", "b", "c"}, false},
		{"lonely", nil, true},
		{"a\x00b\x00c", nil, true},
	}
	for _, c := range cases {
		got, err := ParseHeaders([]byte(c.in))
		if (err != nil) != c.err || !equal(got, c.want) {
			t.Errorf("ParseHeaders(%q) = %q, %v", c.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseHeaders(%q): err = %v, want ErrMalformed", c.in, err)
		}
	}
}

func TestParseAccept(t *testing.T) {
	cases := []struct {
		in   string
		sub  string
		hdrs []string
		err  bool
	}{
		{"", "", nil, false},
		{"chat", "chat", []string{}, false},
		{"\x00x-a\x001", "", []string{"x-a", "1"}, false},
		{"v2\x00set-cookie\x00a=1\x00set-cookie\x00b=2", "v2", []string{"set-cookie", "a=1", "set-cookie", "b=2"}, false},
		{"chat\x00x-lonely", "", nil, true},
	}
	for _, c := range cases {
		sub, hdrs, err := ParseAccept([]byte(c.in))
		if (err != nil) != c.err || sub != c.sub || !equal(hdrs, c.hdrs) {
			t.Errorf("ParseAccept(%q) = %q %q %v", c.in, sub, hdrs, err)
		}
	}
}

func TestWSCloseAndAck(t *testing.T) {
	f := AppendWSClose(nil, 7, 4001, "bye \u00e9")
	h, _ := ParseHeaderAny(f)
	if h.Type != WSClose || h.ID != 7 || int(h.Length) != len(f)-HeaderSize {
		t.Fatalf("AppendWSClose header %+v", h)
	}
	code, reason, err := ParseWSClose(f[HeaderSize:])
	if err != nil || code != 4001 || reason != "bye \u00e9" {
		t.Fatalf("ParseWSClose = %d %q %v", code, reason, err)
	}
	if _, _, err := ParseWSClose([]byte{3}); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseWSClose(1 byte): err = %v", err)
	}
	if n, err := ParseWSAck([]byte{0, 4, 0, 0}); err != nil || n != 1<<18 {
		t.Errorf("ParseWSAck = %d %v", n, err)
	}
	if _, err := ParseWSAck([]byte{0, 4, 0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseWSAck(3 bytes): err = %v", err)
	}
	for code, want := range map[int]bool{999: false, 1000: true, 1003: true, 1004: false, 1005: false, 1006: false,
		1007: true, 1011: true, 1014: true, 1015: false, 2999: false, 3000: true, 4999: true, 5000: false} {
		if got := ValidCloseCode(code); got != want {
			t.Errorf("ValidCloseCode(%d) = %v", code, got)
		}
	}
}

func TestScopeBlock(t *testing.T) {
	b := BeginRequest(nil)
	for _, f := range []string{"GET", "https", "1.1", "/caf\xc3\xa9", "/caf%C3%A9", "a=1", "", "203.0.113.7", "51234", "127.0.0.1", "8000",
		"host", "example.com", "cookie", "a=1", "cookie", "b=2"} {
		b = AddField(b, f)
	}
	b, err := FinishRequest(b, 5, FlagWebSocket, []byte("body"))
	if err != nil {
		t.Fatal(err)
	}
	block, body, err := SplitRequest(b[HeaderSize:])
	if err != nil || string(body) != "body" {
		t.Fatalf("SplitRequest: body %q, %v", body, err)
	}
	fixed, hdrs, err := ParseScope(block)
	if err != nil {
		t.Fatal(err)
	}
	if fixed[0] != "GET" || fixed[3] != "/caf\xc3\xa9" || fixed[6] != "" || fixed[10] != "8000" {
		t.Errorf("fixed fields %q", fixed)
	}
	if want := []string{"host", "example.com", "cookie", "a=1", "cookie", "b=2"}; !equal(hdrs, want) {
		t.Errorf("headers %q, want %q", hdrs, want)
	}
	if _, _, err := ParseScope([]byte("GET\x00http")); !errors.Is(err, ErrMalformed) {
		t.Errorf("short scope: err = %v", err)
	}
	if _, _, err := SplitRequest([]byte{0, 0, 0, 9, 'x'}); !errors.Is(err, ErrMalformed) {
		t.Errorf("block longer than payload: err = %v", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
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
	f.Add(AppendFrame(nil, Trailers, 0, 2, []byte("x-checksum\x00abc")))
	f.Add(AppendFrame(nil, EarlyHint, 0, 2, []byte("link\x00</s.css>; rel=preload")))
	f.Add(AppendFrame(nil, WSAccept, 0, 3, []byte("chat\x00x-a\x00b")))
	f.Add(AppendFrame(nil, WSMessage, FlagText|FlagMore, 3, []byte("hello")))
	f.Add(AppendFrame(nil, WSClosed, 0, 3, []byte{0x03, 0xe8}, []byte("bye")))
	f.Add(AppendFrame(nil, WSAck, 0, 3, []byte{0, 0, 1, 0}))
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
			case Trailers, EarlyHint:
				if hs, err := ParseHeaders(fr.Payload); err == nil && len(hs)%2 != 0 {
					t.Fatalf("ParseHeaders gave %d fields", len(hs))
				}
			case WSAccept:
				if _, hs, err := ParseAccept(fr.Payload); err == nil && len(hs)%2 != 0 {
					t.Fatalf("ParseAccept gave %d header fields", len(hs))
				}
			case WSClosed:
				if _, _, err := ParseWSClose(fr.Payload); err != nil {
					t.Fatalf("ParseWSClose refused a frame ParseHeader accepted: %v", err)
				}
			case WSAck:
				if _, err := ParseWSAck(fr.Payload); err != nil {
					t.Fatalf("ParseWSAck refused a frame ParseHeader accepted: %v", err)
				}
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

// FuzzParseHeaders checks the header-list decoders of TRAILERS,
// EARLY_HINT and WS_ACCEPT: no panic, pairs only, and the fields join back
// into the payload.
func FuzzParseHeaders(f *testing.F) {
	f.Add([]byte("link\x00</a.css>; rel=preload\x00link\x00</b.js>"))
	f.Add([]byte("chat\x00x-a\x00b"))
	f.Add([]byte{0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		if hs, err := ParseHeaders(p); err == nil {
			if len(hs)%2 != 0 {
				t.Fatalf("%d fields", len(hs))
			}
			if len(p) > 0 && strings.Join(hs, "\x00") != string(p) {
				t.Fatalf("fields %q do not join to %q", hs, p)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("err = %v", err)
		}
		if sub, hs, err := ParseAccept(p); err == nil {
			if len(hs)%2 != 0 {
				t.Fatalf("%d header fields", len(hs))
			}
			if len(p) > 0 && strings.Join(append([]string{sub}, hs...), "\x00") != string(p) {
				t.Fatalf("accept fields do not join to %q", p)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("err = %v", err)
		}
	})
}

// FuzzWSClose checks the WS_CLOSE and WS_ACK decoders against their
// encoders.
func FuzzWSClose(f *testing.F) {
	f.Add([]byte{0x03, 0xe8, 'o', 'k'})
	f.Add([]byte{0x0f})
	f.Add([]byte{0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		code, reason, err := ParseWSClose(p)
		if err != nil {
			if len(p) >= 2 || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseWSClose(%x) = %v", p, err)
			}
		} else {
			fr := AppendWSClose(nil, 1, code, reason)
			if !bytes.Equal(fr[HeaderSize:], p) {
				t.Fatalf("re-encoding of %x gives %x", p, fr[HeaderSize:])
			}
		}
		if n, err := ParseWSAck(p); err == nil && (len(p) != 4 || n < 0 || n > 1<<32-1) {
			t.Fatalf("ParseWSAck(%x) = %d", p, n)
		}
	})
}

// FuzzParseScope checks the scope-block decoder: no panic, and a block it
// accepts re-encodes with AddField to the same bytes.
func FuzzParseScope(f *testing.F) {
	f.Add([]byte("GET\x00http\x001.1\x00/\x00/\x00\x00\x00127.0.0.1\x001\x00127.0.0.1\x008000\x00host\x00x"))
	f.Add([]byte{0, 0, 0, 1, 'x'})
	f.Fuzz(func(t *testing.T, p []byte) {
		if block, _, err := SplitRequest(p); err == nil && len(block) > len(p) {
			t.Fatal("block longer than payload")
		}
		fixed, hdrs, err := ParseScope(p)
		if err != nil {
			return
		}
		if len(fixed) != ScopeFields || len(hdrs)%2 != 0 {
			t.Fatalf("%d fixed fields, %d header fields", len(fixed), len(hdrs))
		}
		if fixed[0] == "" {
			return // AddField needs a non-empty first field
		}
		b := BeginRequest(nil)
		for _, v := range append(fixed, hdrs...) {
			b = AddField(b, v)
		}
		if !bytes.Equal(b[requestPrefix:], p) {
			t.Fatalf("re-encoding differs")
		}
	})
}
