package fakeworker

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"corral/internal/proto"
)

// The ASGI mode (ModeASGI) behaves like an ASGI worker: it reports
// interface "asgi" and worker_connections as its threads in HELLO, starts
// every request it reads at once and runs them concurrently, answers
// STEAL with an empty RETURNED, and answers PING from its "event loop": a
// lock that /block holds, so a blocked loop leaves PINGs unanswered. It
// reads the scope block of REQUEST (field 3 is the path, 5 the query,
// header x-token the token). Routes:
//
//	/fast                 answer at once
//	/slow?ms=N            answer after N ms
//	/untilcancel          wait for CANCEL (recording whether it was a
//	                      timeout), then END with ABORTED
//	/block?ms=N           hold the event loop for N ms, then answer
//	/hint                 EARLY_HINT (link), then the response
//	/trailers             START with TRAILERS, BODY, TRAILERS, END
//	/violation            ERROR naming an ASGI protocol violation
//	/stream?n=N&ms=M      START, N BODY frames "part i\n" M ms apart, END
//	/crash                exit 3
//
// WebSocket requests (REQUEST with WEBSOCKET):
//
//	/ws/echo?sub=S        accept (subprotocol S), echo every message (in
//	                      parts of at most 1 MiB), acknowledging each; a
//	                      text "close" makes it close with 4000 "bye"
//	/ws/deny              a 401 response with body "denied"
//	/ws/close             WS_CLOSE before accepting (403)
//	/ws/return            END without accepting (403)
//	/ws/noread            accept and never acknowledge a message
//	/ws/flood?n=N&size=S  accept, send N binary messages of S bytes,
//	                      honouring PAUSE, then END
//	/ws/error             accept, then ERROR
//	/ws/crash             accept, then exit 3
//	/ws/hold              accept, then wait for the client's close
//	/ws/silent            never answer the handshake; END ABORTED on CANCEL
type asgiReq struct {
	id    uint32
	ws    bool
	path  string
	query url.Values
	tok   string

	// Guarded by fake.mu.
	cancelled bool
	timeout   bool
	paused    bool
	closed    bool // WS_CLOSE from the master
	closeCode int
	msgs      []asgiMsg
	partial   []byte
}

type asgiMsg struct {
	text bool
	data []byte
}

type asgiFake struct {
	*fake
	loop sync.Mutex // the event loop
	reqs map[uint32]*asgiReq
	wg   sync.WaitGroup
}

func (f *fake) serveASGI(fr *proto.Reader, app string, conns int) {
	if conns <= 0 {
		conns = 1000
	}
	js, _ := json.Marshal(map[string]any{
		"protocol": proto.Version, "pid": f.pid, "python": "fake", "implementation": "go",
		"threads": conns, "app": app, "dump_signal": int(DumpSignal), "routes": nil,
		"interface": "asgi",
		"asgi":      map[string]any{"version": "3.0", "spec_version": "2.5", "lifespan": "unsupported", "extensions": []string{}},
	})
	f.write(proto.AppendFrame(nil, proto.Hello, 0, 0, js))
	a := &asgiFake{fake: f, reqs: map[uint32]*asgiReq{}}
	go a.control()
	go func() { // SIGTERM: finish what runs, then exit
		f.mu.Lock()
		for !f.term {
			f.cond.Wait()
		}
		f.mu.Unlock()
		a.exitWhenIdle()
	}()
	a.read(fr)
	f.record("eof")
	a.exitWhenIdle()
}

func (a *asgiFake) exitWhenIdle() {
	a.wg.Wait()
	a.record("exit", "returned", "")
	exit(0)
}

// control answers STEAL with an empty RETURNED: every request has started.
func (a *asgiFake) control() {
	fr := proto.NewMasterReader(bufio.NewReader(a.ctl))
	for {
		fm, err := fr.Next()
		h := fm.Header
		if err != nil {
			return
		}
		if h.Type == proto.Steal {
			a.record("steal", "returned", "")
			a.write(proto.AppendFrame(nil, proto.Returned, 0, 0))
		}
	}
}

func (a *asgiFake) read(fr *proto.Reader) {
	for {
		fm, err := fr.Next()
		h, p := fm.Header, fm.Payload
		if err != nil {
			if err != io.EOF {
				a.record("read-error", "error", err.Error())
			}
			return
		}
		switch h.Type {
		case proto.Request:
			r, ok := parseScope(h, p)
			if !ok {
				a.record("bad-scope", "id", itoa(h.ID))
				exit(70)
			}
			a.mu.Lock()
			a.reqs[r.id] = r
			a.received++
			a.record("recv", "id", itoa(r.id), "tok", r.tok, "path", r.path, "ws", strconv.FormatBool(r.ws),
				"running", strconv.Itoa(len(a.reqs)))
			a.mu.Unlock()
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.serve(r)
			}()
		case proto.Cancel:
			a.mu.Lock()
			if r := a.reqs[h.ID]; r != nil {
				r.cancelled = true
				r.timeout = h.Flags&proto.FlagTimeout != 0
				a.record("cancel", "id", itoa(h.ID), "tok", r.tok, "timeout", strconv.FormatBool(r.timeout))
				a.cond.Broadcast()
			}
			a.mu.Unlock()
		case proto.Pause, proto.Resume:
			a.mu.Lock()
			if r := a.reqs[h.ID]; r != nil {
				r.paused = h.Type == proto.Pause
				a.record(strings.ToLower(h.Type.String()), "id", itoa(h.ID), "tok", r.tok)
				a.cond.Broadcast()
			}
			a.mu.Unlock()
		case proto.WSSend:
			a.mu.Lock()
			if r := a.reqs[h.ID]; r != nil {
				r.partial = append(r.partial, p...)
				if h.Flags&proto.FlagMore == 0 {
					r.msgs = append(r.msgs, asgiMsg{text: h.Flags&proto.FlagText != 0, data: r.partial})
					a.record("ws-recv", "id", itoa(h.ID), "bytes", strconv.Itoa(len(r.partial)))
					r.partial = nil
					a.cond.Broadcast()
				}
			}
			a.mu.Unlock()
		case proto.WSClose:
			a.mu.Lock()
			if r := a.reqs[h.ID]; r != nil && len(p) >= 2 {
				r.closed = true
				r.closeCode = int(binary.BigEndian.Uint16(p))
				a.record("ws-close", "id", itoa(h.ID), "code", strconv.Itoa(r.closeCode), "reason", string(p[2:]))
				a.cond.Broadcast()
			}
			a.mu.Unlock()
		case proto.Ping:
			a.loop.Lock() // the event loop answers; a blocked one does not
			a.loop.Unlock()
			a.record("ping")
			a.write(proto.AppendFrame(nil, proto.Pong, 0, 0, p))
		default:
			a.record("unexpected", "type", h.Type.String())
		}
	}
}

func parseScope(h proto.Header, p []byte) (*asgiReq, bool) {
	block, _, err := proto.SplitRequest(p)
	if err != nil {
		return nil, false
	}
	fixed, hdrs, err := proto.ParseScope(block)
	if err != nil {
		return nil, false
	}
	r := &asgiReq{id: h.ID, ws: h.Flags&proto.FlagWebSocket != 0, path: fixed[3], tok: "-"}
	r.query, _ = url.ParseQuery(fixed[5])
	for i := 0; i+1 < len(hdrs); i += 2 {
		if hdrs[i] == "x-token" {
			r.tok = hdrs[i+1]
		}
	}
	return r, true
}

// done completes r with frame.
func (a *asgiFake) done(r *asgiReq, how string, frame []byte) {
	a.mu.Lock()
	delete(a.reqs, r.id)
	a.record("done", "id", itoa(r.id), "tok", r.tok, "how", how)
	a.mu.Unlock()
	a.write(frame)
}

func (a *asgiFake) respond(r *asgiReq, status, body string) {
	a.done(r, "ok", startFrame(r.id, proto.FlagEnd, head(status, "content-type", "text/plain"), []byte(body)))
}

func (a *asgiFake) aborted(r *asgiReq) {
	a.done(r, "aborted", proto.AppendFrame(nil, proto.End, proto.FlagAborted, r.id))
}

// wait waits until cond holds, r is cancelled or d passes; cond runs with
// a.mu held.
func (a *asgiFake) wait(r *asgiReq, d time.Duration, cond func() bool) (met, cancelled bool) {
	return a.waitFor(d, cond, func() bool { return r.cancelled })
}

func (a *asgiFake) ok(r *asgiReq) string { return "ok " + r.tok + " " + strconv.Itoa(a.pid) }

func (a *asgiFake) serve(r *asgiReq) {
	if r.ws {
		a.serveWS(r)
		return
	}
	q := r.query
	switch r.path {
	case "/fast":
		a.respond(r, "200 OK", a.ok(r))
	case "/slow":
		ms, _ := strconv.Atoi(q.Get("ms"))
		if _, cancelled := a.wait(r, time.Duration(ms)*time.Millisecond, never); cancelled {
			a.aborted(r)
			return
		}
		a.respond(r, "200 OK", a.ok(r))
	case "/untilcancel":
		if _, cancelled := a.wait(r, patience, never); !cancelled {
			a.record("cancel-timeout", "tok", r.tok)
		}
		a.aborted(r)
	case "/block":
		ms, _ := strconv.Atoi(q.Get("ms"))
		a.record("block", "tok", r.tok, "ms", strconv.Itoa(ms))
		a.loop.Lock()
		time.Sleep(time.Duration(ms) * time.Millisecond)
		a.loop.Unlock()
		a.respond(r, "200 OK", a.ok(r))
	case "/hint":
		a.write(proto.AppendFrame(nil, proto.EarlyHint, 0, r.id, []byte("link\x00</style.css>; rel=preload; as=style")))
		a.respond(r, "200 OK", a.ok(r))
	case "/trailers":
		a.write(startFrame(r.id, proto.FlagTrailers, head("200 OK", "content-type", "text/plain", "trailer", "x-checksum"), []byte("body ")))
		a.write(proto.AppendFrame(nil, proto.Body, 0, r.id, []byte("more")))
		a.write(proto.AppendFrame(nil, proto.Trailers, 0, r.id, []byte("x-checksum\x00abc123")))
		a.done(r, "ok", proto.AppendFrame(nil, proto.End, 0, r.id))
	case "/violation":
		js, _ := json.Marshal(map[string]string{"error": "ASGI protocol violation: http.response.body before http.response.start", "traceback": ""})
		a.done(r, "error", proto.AppendFrame(nil, proto.Error, 0, r.id, js))
	case "/stream":
		n, _ := strconv.Atoi(q.Get("n"))
		ms, _ := strconv.Atoi(q.Get("ms"))
		a.write(startFrame(r.id, 0, head("200 OK", "content-type", "text/event-stream"), nil))
		for i := 0; n == 0 || i < n; i++ {
			if _, cancelled := a.wait(r, time.Duration(ms)*time.Millisecond, never); cancelled {
				a.aborted(r)
				return
			}
			a.write(proto.AppendFrame(nil, proto.Body, 0, r.id, []byte("part "+strconv.Itoa(i)+"\n")))
		}
		a.done(r, "ok", proto.AppendFrame(nil, proto.End, 0, r.id))
	case "/crash":
		a.record("crash", "tok", r.tok)
		exit(3)
	default:
		a.respond(r, "404 Not Found", "no such route")
	}
}

func (a *asgiFake) accept(r *asgiReq, sub string) {
	a.record("ws-accept", "id", itoa(r.id), "tok", r.tok)
	a.write(proto.AppendFrame(nil, proto.WSAccept, 0, r.id, []byte(sub+"\x00x-fake\x00yes")))
}

// sendMessage sends data as WS_MESSAGE frames of at most 1 MiB, waiting
// while r is paused. It reports false if the socket went away.
func (a *asgiFake) sendMessage(r *asgiReq, text bool, data []byte) bool {
	for off := 0; off == 0 || off < len(data); {
		a.mu.Lock()
		if r.paused && !r.cancelled && !r.closed {
			a.record("blocked", "id", itoa(r.id))
		}
		a.mu.Unlock()
		if _, cancelled := a.wait(r, patience, func() bool { return !r.paused || r.closed }); cancelled {
			return false
		}
		end := min(len(data), off+proto.MaxPayload)
		flags := uint8(0)
		if text {
			flags |= proto.FlagText
		}
		if end < len(data) {
			flags |= proto.FlagMore
		}
		a.write(proto.AppendFrame(nil, proto.WSMessage, flags, r.id, data[off:end]))
		off = end
		if len(data) == 0 {
			break
		}
	}
	return true
}

func (a *asgiFake) serveWS(r *asgiReq) {
	end := func() { a.done(r, "ok", proto.AppendFrame(nil, proto.End, 0, r.id)) }
	switch r.path {
	case "/ws/echo":
		a.accept(r, r.query.Get("sub"))
		for {
			var m asgiMsg
			met, cancelled := a.wait(r, time.Hour, func() bool { return len(r.msgs) > 0 || r.closed })
			if cancelled || !met {
				a.aborted(r)
				return
			}
			a.mu.Lock()
			if len(r.msgs) == 0 { // closed by the client
				a.mu.Unlock()
				end()
				return
			}
			m, r.msgs = r.msgs[0], r.msgs[1:]
			a.mu.Unlock()
			var n [4]byte
			binary.BigEndian.PutUint32(n[:], uint32(len(m.data)))
			a.write(proto.AppendFrame(nil, proto.WSAck, 0, r.id, n[:]))
			if m.text && string(m.data) == "close" {
				var c [2]byte
				binary.BigEndian.PutUint16(c[:], 4000)
				a.write(proto.AppendFrame(nil, proto.WSClosed, 0, r.id, c[:], []byte("bye")))
				end()
				return
			}
			if !a.sendMessage(r, m.text, m.data) {
				a.aborted(r)
				return
			}
		}
	case "/ws/deny":
		a.write(startFrame(r.id, 0, head("401 Unauthorized", "content-type", "text/plain"), []byte("denied")))
		end()
	case "/ws/close":
		a.write(proto.AppendFrame(nil, proto.WSClosed, 0, r.id, []byte{0x03, 0xe8}))
		end()
	case "/ws/return":
		end()
	case "/ws/silent": // never answers the handshake
		if _, cancelled := a.wait(r, patience, never); !cancelled {
			a.record("cancel-timeout", "tok", r.tok)
		}
		a.aborted(r)
	case "/ws/noread", "/ws/hold":
		a.accept(r, "")
		if _, cancelled := a.wait(r, time.Hour, func() bool { return r.closed }); cancelled {
			a.aborted(r)
			return
		}
		end()
	case "/ws/flood":
		n, _ := strconv.Atoi(r.query.Get("n"))
		size, _ := strconv.Atoi(r.query.Get("size"))
		a.accept(r, "")
		for i := range n {
			b := make([]byte, size)
			for j := range b {
				b[j] = BigByte(i + j)
			}
			if !a.sendMessage(r, false, b) {
				a.aborted(r)
				return
			}
		}
		a.record("flooded", "id", itoa(r.id), "n", strconv.Itoa(n))
		end()
	case "/ws/error":
		a.accept(r, "")
		js, _ := json.Marshal(map[string]string{"error": "RuntimeError: boom", "traceback": AppTraceback})
		a.done(r, "error", proto.AppendFrame(nil, proto.Error, 0, r.id, js))
	case "/ws/crash":
		a.accept(r, "")
		time.Sleep(20 * time.Millisecond)
		a.record("crash", "tok", r.tok)
		exit(3)
	default:
		a.done(r, "ok", proto.AppendFrame(nil, proto.End, 0, r.id))
	}
}

// ScopeFrame builds a REQUEST frame with a scope block (id 0, set by the
// sender) for a fake ASGI worker: method GET, path and query, tagged with
// token.
func ScopeFrame(path, query, token string, flags uint8) []byte {
	b := proto.BeginRequest(nil)
	for _, f := range []string{"GET", "http", "1.1", path, path, query, "", "127.0.0.1", "1", "127.0.0.1", "80",
		"host", "fake", "x-token", token} {
		b = proto.AddField(b, f)
	}
	b, err := proto.FinishRequest(b, 0, flags, nil)
	if err != nil {
		panic(err)
	}
	return b
}
