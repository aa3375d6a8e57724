package pool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"corral/internal/fakeworker"
	"corral/internal/proto"
)

// startASGI returns a started pool of fake ASGI workers that run conns
// requests each.
func startASGI(t *testing.T, cfg Config, conns int) *harness {
	t.Helper()
	cfg.Worker.Boot.WorkerConnections = conns
	h := newHarness(t, cfg, fakeworker.ModeASGI)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := h.p.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(h.cleanup)
	if !h.p.ASGI() {
		t.Fatal("ASGI() = false for ASGI workers")
	}
	return h
}

// areq is a request for the fake ASGI worker's route path.
func areq(path, query, tok string) *Request {
	return &Request{Frame: fakeworker.ScopeFrame(path, query, tok, 0), Method: "GET", Path: path}
}

// wsreq is a WebSocket request for the fake ASGI worker's route path.
func wsreq(path, query, tok string) *Request {
	return &Request{Frame: fakeworker.ScopeFrame(path, query, tok, proto.FlagWebSocket), Method: "GET", Path: path, WebSocket: true}
}

func TestASGIConcurrencyAndQueue(t *testing.T) {
	h := startASGI(t, Config{Workers: 1}, 3)
	if e := h.waitEvent("asgi"); e.Args["connections"] != "3" {
		t.Errorf("BOOT worker_connections = %s, want 3", e.Args["connections"])
	}
	var held []*Call
	for i := range 3 {
		held = append(held, h.submit(areq("/untilcancel", "", "u"+strconv.Itoa(i))))
	}
	for i := range 3 {
		h.waitEvent("recv", "tok", "u"+strconv.Itoa(i))
	}
	waiting := h.submit(areq("/fast", "", "w"))
	time.Sleep(50 * time.Millisecond)
	if n := h.queued(); n != 1 {
		t.Fatalf("queued = %d with 3 of 3 connections busy, want 1", n)
	}
	ws, _ := h.p.Status()
	if len(ws) != 1 || ws[0].InFlight != 3 {
		t.Fatalf("status %+v, want one worker with 3 in flight", ws)
	}
	held[1].Release() // CANCEL: the worker ends it, and the queued request runs
	h.wantOK(waiting, "w")
	for _, e := range all(h.events(), "recv") {
		if n, _ := strconv.Atoi(e.Args["running"]); n > 3 {
			t.Errorf("%d requests running at once, want at most 3", n)
		}
	}
	if _, ok := find(h.events(), "steal"); ok {
		t.Error("an ASGI worker was asked to STEAL")
	}
	h.noFailures()
}

func TestASGIDeathFailsEveryRequest(t *testing.T) {
	h := startASGI(t, Config{Workers: 1, Budget: time.Second}, 10)
	old := h.pids()[0]
	a := h.submit(areq("/untilcancel", "", "a"))
	b := h.submit(areq("/untilcancel", "", "b"))
	h.waitEvent("recv", "tok", "b")
	crash := h.submit(areq("/crash", "", "c"))
	for _, c := range []*Call{a, b, crash} {
		wantErr(t, c, ErrWorkerDied)
	}
	h.waitReplaced(old)
	if n := len(all(h.events(), "recv", "tok", "a")); n != 1 {
		t.Errorf("request a reached %d workers, want 1: an ASGI worker's requests have all started", n)
	}
}

func TestASGITimeoutCancelsTheTask(t *testing.T) {
	h := startASGI(t, Config{Workers: 1, Timeout: 200 * time.Millisecond}, 10)
	old := h.pids()[0]
	slow := h.submit(areq("/untilcancel", "", "slow"))
	wantErr(t, slow, ErrTimeout)
	h.waitEvent("cancel", "tok", "slow", "timeout", "true")
	h.waitEvent("done", "tok", "slow", "how", "aborted")
	slow.Release()
	h.waitIdle()
	if pid := h.wantOK(h.submit(areq("/fast", "", "f")), "f"); pid != old {
		t.Errorf("served by %d, want the same worker %d: a timeout does not replace an ASGI worker", pid, old)
	}
	if !strings.Contains(h.log.String(), "request timed out; its task is cancelled") {
		t.Errorf("no timeout line in the log:\n%s", h.log)
	}
	if n := len(all(h.events(), "cancel", "tok", "slow")); n != 1 {
		t.Errorf("%d CANCELs for the timed-out request, want 1", n)
	}
	if _, ok := find(h.events(), "dump"); ok {
		t.Error("stacks dumped for a timeout of an ASGI request")
	}
}

func TestASGITimeoutEndsWithTheResponseStart(t *testing.T) {
	h := startASGI(t, Config{Workers: 1, Timeout: 150 * time.Millisecond}, 10)
	c := h.submit(areq("/stream", "n=6&ms=60", "s"))
	status, body, err := result(c)
	if err != nil || status != 200 || !strings.HasSuffix(body, "part 5\n") {
		t.Fatalf("stream past the timeout: %d %q %v", status, body, err)
	}
}

func TestASGIHintsAndTrailers(t *testing.T) {
	h := startASGI(t, Config{Workers: 1}, 10)
	c := h.submit(areq("/hint", "", "h"))
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var hints [][]string
	status, _, _, err := c.HeadHints(ctx, func(hs []string) { hints = append(hints, hs) })
	if err != nil || status != 200 {
		t.Fatalf("HeadHints: %d %v", status, err)
	}
	if len(hints) != 1 || len(hints[0]) != 2 || hints[0][0] != "link" {
		t.Errorf("hints %q, want one link", hints)
	}
	c = h.submit(areq("/trailers", "", "t"))
	status, body, err := result(c)
	if err != nil || status != 200 || body != "body more" {
		t.Fatalf("trailers response: %d %q %v", status, body, err)
	}
	announced, trailers := c.Trailers()
	if !announced || len(trailers) != 2 || trailers[0] != "x-checksum" || trailers[1] != "abc123" {
		t.Errorf("Trailers() = %v %q", announced, trailers)
	}
}

func TestASGIViolation(t *testing.T) {
	h := startASGI(t, Config{Workers: 1}, 10)
	old := h.pids()[0]
	_, err := head(h.submit(areq("/violation", "", "v")))
	var ae *AppError
	if !errors.As(err, &ae) || !strings.Contains(ae.Err, "ASGI protocol violation") {
		t.Fatalf("err = %v, want the app's violation", err)
	}
	if pid := h.wantOK(h.submit(areq("/fast", "", "f")), "f"); pid != old {
		t.Errorf("worker replaced after a violation")
	}
}

func TestASGIBlockedLoop(t *testing.T) {
	h := startASGI(t, Config{Workers: 1, Timeout: 30 * time.Second, StuckAfter: -1}, 10)
	old := h.pids()[0]
	c := h.submit(areq("/block", "ms=1800", "b"))
	h.wantOK(c, "b")
	waitLog(t, h, "event loop answers again")
	if !strings.Contains(h.log.String(), "event loop blocked; its stacks follow") {
		t.Errorf("no blocked-loop line:\n%s", h.log)
	}
	h.waitEvent("dump")
	if pid := h.wantOK(h.submit(areq("/fast", "", "f")), "f"); pid != old {
		t.Errorf("a loop blocked for less than --timeout got its worker replaced")
	}
}

func TestASGIBlockedPastTimeoutIsReplaced(t *testing.T) {
	h := startASGI(t, Config{Workers: 1, Timeout: 1500 * time.Millisecond, StuckAfter: -1, KillGrace: 200 * time.Millisecond}, 10)
	old := h.pids()[0]
	c := h.submit(areq("/block", "ms=20000", "b"))
	// The request's own timeout comes at the same time as the loop's.
	if _, err := head(c); !errors.Is(err, ErrWorkerDied) && !errors.Is(err, ErrTimeout) {
		t.Fatalf("Head: err = %v, want a timeout or the worker's death", err)
	}
	waitLog(t, h, "event loop blocked past --timeout; replacing its worker")
	h.waitReplaced(old)
	h.wantOK(h.submit(areq("/fast", "", "f")), "f")
}

func TestASGIBlockedPastStuckAfterIsSetAside(t *testing.T) {
	h := startASGI(t, Config{Workers: 1, Timeout: 30 * time.Second, StuckAfter: 1200 * time.Millisecond}, 10)
	old := h.pids()[0]
	blocked := h.submit(areq("/block", "ms=3000", "b"))
	waitLog(t, h, "event loop blocked past --stuck-after")
	fresh := h.waitReplaced(old)
	if pid := h.wantOK(h.submit(areq("/fast", "", "f")), "f"); pid != fresh {
		t.Errorf("served by %d, want the fresh worker %d", pid, fresh)
	}
	if pid := h.wantOK(blocked, "b"); pid != old {
		t.Errorf("the blocked request finished on %d, want %d", pid, old)
	}
}

func waitLog(t *testing.T, h *harness, s string) {
	t.Helper()
	for end := time.Now().Add(patience); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(h.log.String(), s) {
			return
		}
	}
	t.Fatalf("no %q in the log:\n%s", s, h.log)
}

func TestInterfaceChangeRefused(t *testing.T) {
	h := startASGI(t, Config{Workers: 1}, 10)
	old := h.pids()[0]
	h.setMode(fakeworker.ModeServe)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := h.p.Reload(ctx); !errors.Is(err, ErrInterfaceChanged) {
		t.Fatalf("Reload to a WSGI app: err = %v, want ErrInterfaceChanged", err)
	}
	if pid := h.wantOK(h.submit(areq("/fast", "", "f")), "f"); pid != old {
		t.Errorf("served by %d, want the old worker %d", pid, old)
	}
}

func nextWS(t *testing.T, c *Call) WSEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ev, err := c.NextWS(ctx)
	if err != nil {
		t.Fatalf("NextWS: %v", err)
	}
	return ev
}

// message splits data into SendWS parts with room for their headers.
func message(data []byte) ([][]byte, int64) {
	var parts [][]byte
	for off := 0; off == 0 || off < len(data); {
		end := min(len(data), off+proto.MaxPayload)
		part := make([]byte, WSHeadroom, WSHeadroom+end-off)
		parts = append(parts, append(part, data[off:end]...))
		off = end
		if len(data) == 0 {
			break
		}
	}
	return parts, int64(len(data))
}

func sendWS(t *testing.T, c *Call, text bool, data []byte) {
	t.Helper()
	parts, n := message(data)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := c.SendWS(ctx, text, parts, n); err != nil {
		t.Fatalf("SendWS: %v", err)
	}
}

// readMessage reads the app's next whole message.
func readMessage(t *testing.T, c *Call) (text bool, data []byte, parts int) {
	t.Helper()
	for {
		ev := nextWS(t, c)
		if ev.Close {
			t.Fatalf("close %d %q instead of a message", ev.Code, ev.Reason)
		}
		data = append(data, ev.Data...)
		parts++
		if !ev.More {
			return ev.Text, data, parts
		}
	}
}

func TestWebSocketEcho(t *testing.T) {
	h := startASGI(t, Config{Workers: 1}, 10)
	c := h.submit(wsreq("/ws/echo", "sub=chat", "e"))
	status, _, hdrs, err := c.Head(context.Background())
	if err != nil || status != 101 {
		t.Fatalf("Head = %d %v, want 101", status, err)
	}
	if sub := c.Subprotocol(); sub != "chat" || len(hdrs) != 2 || hdrs[0] != "x-fake" {
		t.Errorf("accept: subprotocol %q headers %q", sub, hdrs)
	}
	sendWS(t, c, true, []byte("hello"))
	if text, data, _ := readMessage(t, c); !text || string(data) != "hello" {
		t.Errorf("echo: %v %q", text, data)
	}
	big := bigBody(3<<20 + 5)
	sendWS(t, c, false, big)
	text, data, parts := readMessage(t, c)
	if text || !bytes.Equal(data, big) || parts != 4 {
		t.Errorf("echo of 3 MiB: text %v, %d bytes in %d parts, equal %v", text, len(data), parts, bytes.Equal(data, big))
	}
	sendWS(t, c, true, []byte("close"))
	if ev := nextWS(t, c); !ev.Close || ev.Code != 4000 || ev.Reason != "bye" {
		t.Errorf("close event %+v", ev)
	}
	if _, err := c.NextWS(context.Background()); err != io.EOF {
		t.Errorf("after the app's END: %v, want io.EOF", err)
	}
	h.waitIdle()
	if ws, _ := h.p.Status(); ws[0].WebSockets != 0 {
		t.Errorf("websockets = %d after the end", ws[0].WebSockets)
	}
}

func TestWebSocketHandshakeAnswers(t *testing.T) {
	h := startASGI(t, Config{Workers: 1}, 10)
	status, body, err := result(h.submit(wsreq("/ws/deny", "", "d")))
	if err != nil || status != 401 || body != "denied" {
		t.Errorf("denial: %d %q %v", status, body, err)
	}
	for _, path := range []string{"/ws/close", "/ws/return"} {
		if status, body, err := result(h.submit(wsreq(path, "", "x"))); err != nil || status != 403 || body != "" {
			t.Errorf("%s: %d %q %v, want 403", path, status, body, err)
		}
	}
}

func TestWebSocketWindow(t *testing.T) {
	h := startASGI(t, Config{Workers: 1}, 10)
	c := h.submit(wsreq("/ws/noread", "", "n"))
	if status, _ := head(c); status != 101 {
		t.Fatalf("status %d", status)
	}
	msg := bytes.Repeat([]byte("x"), 100<<10)
	sendWS(t, c, false, msg)
	sendWS(t, c, false, msg)
	parts, n := message(msg)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.SendWS(ctx, false, parts, n); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third 100 KiB message to an app that reads nothing: %v, want to wait for the window", err)
	}
	if n := len(all(h.events(), "ws-recv")); n != 2 {
		t.Errorf("the worker got %d messages, want 2", n)
	}
	big := bytes.Repeat([]byte("y"), 600<<10)
	c2 := h.submit(wsreq("/ws/echo", "", "e"))
	if status, _ := head(c2); status != 101 {
		t.Fatalf("status %d", status)
	}
	sendWS(t, c2, false, big) // larger than the window: goes when nothing is unacknowledged
	if _, data, _ := readMessage(t, c2); len(data) != len(big) {
		t.Errorf("echo of a message larger than the window: %d bytes", len(data))
	}
	c.CloseWS(1000, "")
	c2.CloseWS(1000, "")
}

func TestWebSocketPause(t *testing.T) {
	h := startASGI(t, Config{Workers: 1, WSBuffer: 64 << 10}, 10)
	c := h.submit(wsreq("/ws/flood", "n=40&size=32768", "f"))
	if status, _ := head(c); status != 101 {
		t.Fatalf("status %d", status)
	}
	h.waitEvent("pause", "tok", "f")
	h.waitEvent("blocked")
	if _, ok := find(h.events(), "flooded"); ok {
		t.Fatal("the app sent everything to a client that read nothing")
	}
	for i := range 40 {
		_, data, _ := readMessage(t, c)
		if len(data) != 32768 || data[0] != fakeworker.BigByte(i) {
			t.Fatalf("message %d: %d bytes", i, len(data))
		}
	}
	if _, err := c.NextWS(context.Background()); err != io.EOF {
		t.Errorf("after the flood: %v, want io.EOF", err)
	}
	h.waitEvent("resume", "tok", "f")
}

func TestWebSocketClientCloseAndNoTimeout(t *testing.T) {
	h := startASGI(t, Config{Workers: 1, Timeout: 150 * time.Millisecond}, 10)
	c := h.submit(wsreq("/ws/hold", "", "h"))
	if status, _ := head(c); status != 101 {
		t.Fatalf("status %d", status)
	}
	time.Sleep(400 * time.Millisecond) // past the timeout: WebSockets are exempt
	if ws, _ := h.p.Status(); ws[0].InFlight != 1 || ws[0].WebSockets != 1 {
		t.Fatalf("status %+v, want the socket in flight", ws[0])
	}
	c.CloseWS(1001, "going away")
	c.CloseWS(1000, "twice") // once only
	h.waitEvent("ws-close", "code", "1001", "reason", "going_away")
	if _, err := c.NextWS(context.Background()); err != io.EOF {
		t.Errorf("after the client's close: %v, want io.EOF", err)
	}
	if n := len(all(h.events(), "ws-close")); n != 1 {
		t.Errorf("%d WS_CLOSE, want 1", n)
	}
	if _, ok := find(h.events(), "cancel"); ok {
		t.Error("a WebSocket was cancelled by the hard timeout")
	}
}

func TestWebSocketWorkerDeath(t *testing.T) {
	h := startASGI(t, Config{Workers: 1}, 10)
	old := h.pids()[0]
	c := h.submit(wsreq("/ws/crash", "", "c"))
	if status, _ := head(c); status != 101 {
		t.Fatalf("status %d", status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := c.NextWS(ctx); !errors.Is(err, ErrWorkerDied) {
		t.Fatalf("NextWS after the crash: %v, want ErrWorkerDied", err)
	}
	h.waitReplaced(old)
	e := h.submit(wsreq("/ws/error", "", "e"))
	if status, _ := head(e); status != 101 {
		t.Fatalf("status %d", status)
	}
	var ae *AppError
	if _, err := e.NextWS(ctx); !errors.As(err, &ae) {
		t.Fatalf("NextWS after ERROR: %v, want the app error", err)
	}
}

func TestWebSocketOfARetiringWorker(t *testing.T) {
	h := startASGI(t, Config{Workers: 1, GracefulTimeout: 300 * time.Millisecond}, 10)
	old := h.pids()[0]
	c := h.submit(wsreq("/ws/hold", "", "r"))
	if status, _ := head(c); status != 101 {
		t.Fatalf("status %d", status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := h.p.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NextWS(ctx); !errors.Is(err, ErrRestarting) {
		t.Fatalf("NextWS on a retired worker: %v, want ErrRestarting", err)
	}
	h.waitEvent("ws-close", "code", "1012")
	if pid := h.wantOK(h.submit(areq("/fast", "", "f")), "f"); pid == old {
		t.Errorf("served by the retired worker")
	}
}

func TestWebSocketHandshakeTimeout(t *testing.T) {
	h := startASGI(t, Config{Workers: 1, Timeout: 200 * time.Millisecond}, 10)
	c := h.submit(wsreq("/ws/silent", "", "w"))
	wantErr(t, c, ErrTimeout)
	h.waitEvent("cancel", "tok", "w", "timeout", "true")
}
