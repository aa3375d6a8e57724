package integration

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestASGIWebSocketsPythonClient runs testdata/ws_client.py, checks with
// the Python websockets client (the one most ASGI users' clients and tests
// use) against corral serving the FastAPI app: text, binary, 1 MB and
// fragmented messages, compression, close codes and reasons both ways,
// 1009 for a message over --ws-max-size, 1007 for invalid UTF-8 and 1011
// for a crash. What the app heard when the client closed is in its
// markers.
func TestASGIWebSocketsPythonClient(t *testing.T) {
	if err := exec.Command(pythonBin, "-c", "import websockets").Run(); err != nil {
		missingTool(t, "the Python websockets client is not installed in %s (integration/requirements.txt)", pythonBin)
	}
	const maxSize = 2 << 20
	s, dir := startFastAPI(t, "-w", "2", "--ws-max-size", "2M", "--ws-ping-interval", "200ms")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pythonBin, testdata("ws_client.py"), "ws://"+s.addr, strconv.Itoa(maxSize))
	begun := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("ws_client.py took %v:\n%s", time.Since(begun).Round(time.Millisecond), out)
	passed := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case strings.HasPrefix(line, "PASS "):
			passed++
		case strings.HasPrefix(line, "FAIL "):
			t.Error(line)
		}
	}
	if err != nil || passed == 0 {
		t.Errorf("ws_client.py: %v, %d checks passed\n%s", err, passed, out)
	}

	// What the app heard in websocket.disconnect.
	for tag, want := range map[string]string{
		"py-close":          "4242 client done ✓",
		"py-close-normal":   "1000 ",
		"py-close-empty":    "1005 ",
		"py-ping":           "1000 ",
		"py-rawclose-1005":  "1006 ",
		"py-rawclose-999":   "1006 ",
		"py-rawclose-short": "1006 ",
		"py-rawclose-utf8":  "1000 bad \ufffd",
		"py-big":            "1009 message over 2097152 bytes",
		"py-bomb":           "1009 message over 2097152 bytes",
		"py-utf8":           "1007 invalid UTF-8",
		"py-utf8-frag":      "1007 invalid UTF-8",
		"py-utf8-deflate":   "1007 invalid UTF-8",
	} {
		if got := waitMark(t, dir, "ws-disconnect-"+tag); got != want {
			t.Errorf("socket %s: the app heard %q, want %q", tag, got, want)
		}
	}
}

// TestASGIWebSocketOverHTTP2 opens WebSockets with HTTP/2 extended CONNECT
// (RFC 8441), which corral serves when run with GODEBUG=http2xconnect=1:
// three sockets (one compressed) and a plain request share one HTTP/2
// connection, messages and close codes go both ways, the app's scope says
// HTTP/2, and a graceful shutdown closes the sockets with 1001 before the
// connection. Go's HTTP/2 client does the CONNECT; the frames are written
// here.
func TestASGIWebSocketOverHTTP2(t *testing.T) {
	dir := t.TempDir()
	s := start(t, []string{"CORRAL_IT_DIR=" + dir, "GODEBUG=http2xconnect=1"},
		"-w", "1", "--h2c", "--graceful-timeout", "1", "--ws-ping-interval", "100ms", testdata("asgi_fastapi.py")+":app")
	// net/http's client (Transport and ClientConn alike) refuses the
	// :protocol pseudo-header; x/net's HTTP/2 transport, deprecated for
	// them, still sends it (over h2c here).
	//lint:ignore SA1019 the only Go client that sends :protocol
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	client := &http.Client{Transport: tr}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	open := func(path string, deflate bool) *h2Socket {
		t.Helper()
		pr, pw := io.Pipe()
		req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, s.url+path, pr)
		req.Header.Set(":protocol", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Protocol", "chat.v1")
		if deflate {
			req.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate; client_no_context_takeover; server_no_context_takeover")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("extended CONNECT %s: %v", path, err)
		}
		t.Cleanup(func() { pw.Close(); resp.Body.Close() })
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || resp.Header.Get("Sec-WebSocket-Protocol") != "chat.v1" ||
			resp.Header.Get("Sec-WebSocket-Accept") != "" || resp.Header.Get("Upgrade") != "" ||
			strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") != deflate {
			t.Fatalf("extended CONNECT %s: %s %d %v", path, resp.Proto, resp.StatusCode, resp.Header)
		}
		return &h2Socket{t: t, w: pw, r: bufio.NewReader(resp.Body), deflate: deflate}
	}

	a := open("/ws/echo?tag=h2a", false)
	b := open("/ws/echo?tag=h2b", false)
	z := open("/ws/echo?tag=h2z", true)
	text := strings.Repeat("compress me over HTTP/2 ", 1000)
	z.send(0x1, []byte(text))
	if op, got := z.recv(); op != 0x1 || string(got) != text {
		t.Errorf("compressed echo over HTTP/2: %x, %d bytes", op, len(got))
	}
	if z.compressed == 0 {
		t.Error("corral's answer on a compressed socket was not compressed")
	}
	z.send(0x8, []byte{0x03, 0xe8})
	a.send(0x1, []byte("héllo"))
	b.send(0x2, bytes.Repeat([]byte{0, 255}, 50_000))
	if op, got := a.recv(); op != 0x1 || string(got) != "héllo" {
		t.Errorf("text echo over HTTP/2: %x %q", op, got)
	}
	if op, got := b.recv(); op != 0x2 || !bytes.Equal(got, bytes.Repeat([]byte{0, 255}, 50_000)) {
		t.Errorf("binary echo over HTTP/2: %x, %d bytes", op, len(got))
	}
	mb := make([]byte, 1<<20)
	_, _ = rand.Read(mb)
	a.send(0x2, mb)
	if op, got := a.recv(); op != 0x2 || !bytes.Equal(got, mb) {
		t.Errorf("1 MiB echo over HTTP/2: %x, %d bytes", op, len(got))
	}
	time.Sleep(300 * time.Millisecond) // corral's pings (every 100ms) wait in the stream; recv answers them
	a.send(0x1, []byte("http_version"))
	if _, got := a.recv(); string(got) != "2" {
		t.Errorf("the app's scope has http_version %q, want 2", got)
	}
	if code, body := s.get("/pid"); code != 200 || body == "" {
		t.Errorf("a plain request beside the sockets: %d %q", code, body)
	}
	// The app closes a: code and reason reach the client.
	a.send(0x1, []byte("close"))
	if op, got := a.recv(); op != 0x8 || len(got) < 2 || binary.BigEndian.Uint16(got) != 4001 || string(got[2:]) != "bye from the app" {
		t.Errorf("the app's close over HTTP/2: %x %q", op, got)
	}
	a.send(0x8, []byte{0x0f, 0xa1})

	// A graceful shutdown: b gets 1001 after the graceful timeout, and the
	// app hears it.
	s.signal(syscall.SIGTERM)
	if op, got := b.recv(); op != 0x8 || len(got) < 2 || binary.BigEndian.Uint16(got) != 1001 {
		t.Errorf("shutdown over HTTP/2: %x %q, want a close frame with 1001", op, got)
	}
	b.send(0x8, []byte{0x03, 0xe9})
	if got := waitMark(t, dir, "ws-disconnect-h2b"); !strings.HasPrefix(got, "1001") {
		t.Errorf("the app heard %q, want 1001", got)
	}
	if code := s.wait(15 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// h2Socket is the client's side of a WebSocket on an HTTP/2 stream.
type h2Socket struct {
	t          *testing.T
	w          io.Writer
	r          *bufio.Reader
	deflate    bool // permessage-deflate, without context takeover
	compressed int  // compressed messages received
}

// send writes one masked frame (FIN set), a data frame compressed if the
// socket is.
func (s *h2Socket) send(op byte, payload []byte) {
	s.t.Helper()
	f := []byte{0x80 | op}
	if s.deflate && op < 0x8 {
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
		_, _ = fw.Write(payload)
		_ = fw.Flush()
		payload = bytes.TrimSuffix(buf.Bytes(), []byte{0, 0, 0xff, 0xff})
		f[0] |= 0x40 // RSV1: compressed
	}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	mask := []byte{1, 2, 3, 4}
	f = append(f, mask...)
	for i, c := range payload {
		f = append(f, c^mask[i%4])
	}
	if _, err := s.w.Write(f); err != nil {
		s.t.Fatalf("write a frame: %v", err)
	}
}

// recv reads one message (reassembling fragments) or control frame.
func (s *h2Socket) recv() (byte, []byte) {
	s.t.Helper()
	var op byte
	var msg []byte
	var compressed bool
	for {
		var h [2]byte
		if _, err := io.ReadFull(s.r, h[:]); err != nil {
			s.t.Fatalf("read a frame: %v", err)
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			_, _ = io.ReadFull(s.r, l[:])
			n = uint64(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			_, _ = io.ReadFull(s.r, l[:])
			n = binary.BigEndian.Uint64(l[:])
		}
		if h[1]&0x80 != 0 || h[0]&0x30 != 0 || (h[0]&0x40 != 0 && (!s.deflate || h[0]&0x0f == 0 || h[0]&0x0f >= 0x8)) {
			s.t.Fatalf("a masked frame or wrong RSV bits from corral: %x", h)
		}
		if h[0]&0x40 != 0 {
			compressed = true
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(s.r, p); err != nil {
			s.t.Fatalf("read a frame: %v", err)
		}
		if fop := h[0] & 0x0f; fop >= 0x8 {
			if fop == 0x9 { // a ping: corral's keepalive; answer it
				s.send(0xa, p)
				continue
			}
			return fop, p
		} else if fop != 0 {
			op = fop
		}
		msg = append(msg, p...)
		if h[0]&0x80 == 0 {
			continue
		}
		if compressed {
			s.compressed++
			var err error
			msg, err = io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(msg), bytes.NewReader([]byte{0, 0, 0xff, 0xff}))))
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				s.t.Fatalf("inflate a message from corral: %v", err)
			}
		}
		return op, msg
	}
}
