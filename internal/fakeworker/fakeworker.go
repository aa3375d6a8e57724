// Package fakeworker is a scripted stand-in for the Python worker runtime,
// used only by the tests of packages worker and pool (the helper-process
// trick). A test binary runs it instead of its tests when the environment
// asks for it:
//
//	func TestMain(m *testing.M) {
//		if fakeworker.Requested() {
//			fakeworker.Main() // does not return
//		}
//		os.Exit(m.Run())
//	}
//
// and the tests start workers with Python set to os.Args[0]. The fake reads
// BOOT from fd 3 and, depending on its mode, answers HELLO and serves,
// answers BOOTFAIL, exits, or says nothing. While serving it behaves like a
// single-threaded Python worker: it reads ahead (so pipelined requests wait
// in its queue), runs requests strictly in order, honours CANCEL, PAUSE,
// RESUME and PING, answers STEAL on fd 4 with the requests it has not
// started, and on EOF or SIGTERM returns those and exits. What a request
// does is chosen by its PATH_INFO (see serve).
//
// Every fake worker appends what happens to it to a record file in its
// directory, one event per line; Events reads them back so a test can
// check ordering, queue depths and that no request started twice.
package fakeworker

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"corral/internal/proto"
)

// Environment variables that configure a fake worker.
const (
	// EnvMode selects the fake's behaviour at boot (see the Mode constants).
	// A file named "mode" in the record directory overrides it, so that a
	// test can change what the next worker a pool spawns will do.
	EnvMode = "CORRAL_FAKE_WORKER"
	// EnvDir is the record directory.
	EnvDir = "CORRAL_FAKE_DIR"
)

// Modes.
const (
	ModeServe     = "serve"      // HELLO, serve; exit on EOF or SIGTERM
	ModeBootFail  = "bootfail"   // BOOTFAIL with a traceback, exit 1
	ModeExit      = "exit"       // print to stderr, exit 3 before HELLO
	ModeSilent    = "silent"     // read BOOT and never answer
	ModeIgnoreEOF = "ignore-eof" // serve; ignore EOF, exit on SIGTERM
	ModeStubborn  = "stubborn"   // serve; ignore EOF and SIGTERM
	ModeASGI      = "asgi"       // HELLO as an ASGI worker, serve requests concurrently (asgi.go)
)

// DumpSignal is the signal the fake reports in HELLO as its stack-dump
// signal; it records a "dump" event when it receives it.
const DumpSignal = syscall.SIGUSR1

// BootFailTraceback is the traceback a fake in ModeBootFail reports.
const BootFailTraceback = "Traceback (most recent call last):\n  File \"<corral boot>\", line 1, in <module>\nModuleNotFoundError: No module named 'nosuchapp'\n"

// ExitStderr is the last line a fake in ModeExit prints before exiting.
const ExitStderr = "fake worker: cannot start: the interpreter is broken"

// AppTraceback is the traceback of the ERROR frame /error sends.
const AppTraceback = "Traceback (most recent call last):\n  File \"app.py\", line 3, in app\nZeroDivisionError: division by zero\n"

// Requested reports whether this process was started as a fake worker.
func Requested() bool { return os.Getenv(EnvMode) != "" }

// Env returns the environment variables that make a test binary run as a
// fake worker in mode, recording into dir.
func Env(mode, dir string) []string {
	// A race-enabled binary otherwise sleeps a second on its way out.
	return []string{EnvMode + "=" + mode, EnvDir + "=" + dir, "GORACE=atexit_sleep_ms=0"}
}

type request struct {
	id    uint32
	env   map[string]string
	query url.Values
	tok   string
	body  []byte
	pull  bool

	// Guarded by fake.mu.
	cancelled bool
	paused    bool
	pausedYet bool
	data      [][]byte
}

type fake struct {
	mode string
	dir  string
	pid  int
	data *net.UnixConn
	ctl  *net.UnixConn

	recmu sync.Mutex
	rec   *os.File

	wmu sync.Mutex // whole frames on the data channel

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*request
	running  *request
	received int
	steals   int
	eof      bool
	term     bool
}

// Main runs the fake worker and exits the process.
func Main() {
	f := &fake{mode: os.Getenv(EnvMode), dir: os.Getenv(EnvDir), pid: os.Getpid()}
	f.cond = sync.NewCond(&f.mu)
	if b, err := os.ReadFile(filepath.Join(f.dir, "mode")); err == nil {
		f.mode = strings.TrimSpace(string(b))
	}
	rec, err := os.OpenFile(filepath.Join(f.dir, fmt.Sprintf("rec-%d.log", f.pid)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake worker:", err)
		exit(72)
	}
	f.rec = rec
	f.record("spawn", "mode", f.mode)
	f.data, f.ctl = conn(3), conn(4)
	fr := proto.NewMasterReader(bufio.NewReaderSize(f.data, 64<<10))
	boot0, err := fr.Next()
	payload := boot0.Payload
	if err != nil || boot0.Type != proto.Boot || len(payload) < 4 {
		f.record("noboot")
		exit(70)
	}
	n := binary.BigEndian.Uint32(payload)
	var boot struct {
		App         string `json:"app"`
		WorkerID    int    `json:"worker_id"`
		Mode        string `json:"mode"`
		Protocol    int    `json:"protocol"`
		Connections int    `json:"worker_connections"`
		Interface   string `json:"interface"`
	}
	if uint64(n) > uint64(len(payload)-4) || json.Unmarshal(payload[4:4+n], &boot) != nil {
		f.record("badboot")
		exit(70)
	}
	f.record("boot", "worker", strconv.Itoa(boot.WorkerID), "app", boot.App, "bootmode", boot.Mode,
		"protocol", strconv.Itoa(boot.Protocol), "runtime", strconv.Itoa(len(payload)-4-int(n)))

	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, DumpSignal)
	go f.signals(sigc)

	switch f.mode {
	case ModeBootFail:
		fmt.Fprintln(os.Stderr, "fake worker: importing nosuchapp")
		js, _ := json.Marshal(map[string]string{"error": "ModuleNotFoundError: No module named 'nosuchapp'", "traceback": BootFailTraceback})
		f.write(proto.AppendFrame(nil, proto.BootFail, 0, 0, js))
		exit(1)
	case ModeExit:
		fmt.Fprintln(os.Stderr, "fake worker: starting")
		fmt.Fprintln(os.Stderr, ExitStderr)
		exit(3)
	case ModeSilent:
		sleepForever()
	case ModeASGI:
		f.record("asgi", "connections", strconv.Itoa(boot.Connections), "interface", boot.Interface)
		f.serveASGI(fr, boot.App, boot.Connections)
	case ModeServe, ModeIgnoreEOF, ModeStubborn:
	default:
		fmt.Fprintln(os.Stderr, "fake worker: unknown mode", f.mode)
		exit(72)
	}
	js, _ := json.Marshal(map[string]any{
		"protocol": proto.Version, "pid": f.pid, "python": "fake", "implementation": "go",
		"threads": 1, "app": boot.App, "dump_signal": int(DumpSignal), "routes": nil,
	})
	f.write(proto.AppendFrame(nil, proto.Hello, 0, 0, js))
	go f.control()
	go f.execute()
	f.read(fr)
	f.record("eof")
	if f.mode != ModeServe {
		sleepForever()
	}
	f.mu.Lock()
	f.eof = true
	f.cond.Broadcast()
	f.mu.Unlock()
	sleepForever() // the executor exits
}

// exit ends the fake at once, skipping the race detector's exit delay.
func exit(code int) {
	syscall.Exit(code)
}

func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func conn(fd uintptr) *net.UnixConn {
	file := os.NewFile(fd, fmt.Sprintf("fd%d", fd))
	c, err := net.FileConn(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake worker: fd", fd, err)
		exit(72)
	}
	file.Close()
	return c.(*net.UnixConn)
}

// record appends one event line: kind, then key=value pairs.
func (f *fake) record(kind string, kv ...string) {
	var b strings.Builder
	b.WriteString(kind)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %s=%s", kv[i], strings.ReplaceAll(kv[i+1], " ", "_"))
	}
	b.WriteByte('\n')
	f.recmu.Lock()
	_, _ = f.rec.WriteString(b.String())
	f.recmu.Unlock()
}

func (f *fake) write(b []byte) {
	f.wmu.Lock()
	_, err := f.data.Write(b)
	f.wmu.Unlock()
	if err != nil {
		f.record("write-error", "error", err.Error())
	}
}

func (f *fake) signals(c chan os.Signal) {
	for s := range c {
		if s == DumpSignal {
			f.record("dump")
			continue
		}
		f.record("term")
		if f.mode == ModeStubborn {
			continue
		}
		f.mu.Lock()
		f.term = true
		f.cond.Broadcast()
		f.mu.Unlock()
	}
}

// read reads the data channel until EOF, queueing requests and applying
// the other frames at once.
func (f *fake) read(fr *proto.Reader) {
	for {
		fm, err := fr.Next()
		h, p := fm.Header, fm.Payload
		if err != nil {
			if err != io.EOF {
				f.record("read-error", "error", err.Error())
			}
			return
		}
		switch h.Type {
		case proto.Request:
			r := parseRequest(h, p)
			f.mu.Lock()
			f.queue = append(f.queue, r)
			f.received++
			depth := len(f.queue)
			if f.running != nil {
				depth++
			}
			f.record("recv", "id", itoa(r.id), "tok", r.tok, "path", r.env["PATH_INFO"], "depth", strconv.Itoa(depth))
			f.cond.Broadcast()
			f.mu.Unlock()
		case proto.Cancel:
			f.mu.Lock()
			if r := f.running; r != nil && r.id == h.ID {
				r.cancelled = true
				f.record("cancel", "id", itoa(h.ID), "tok", r.tok, "state", "running")
				f.cond.Broadcast()
				f.mu.Unlock()
				continue
			}
			var found *request
			for i, r := range f.queue {
				if r.id == h.ID {
					found = r
					f.queue = append(f.queue[:i], f.queue[i+1:]...)
					break
				}
			}
			if found == nil {
				f.record("cancel", "id", itoa(h.ID), "state", "unknown")
				f.mu.Unlock()
				continue
			}
			f.record("cancel", "id", itoa(h.ID), "tok", found.tok, "state", "queued")
			f.record("done", "id", itoa(h.ID), "tok", found.tok, "how", "aborted")
			f.mu.Unlock()
			f.write(proto.AppendFrame(nil, proto.End, proto.FlagAborted, h.ID))
		case proto.Pause, proto.Resume:
			f.mu.Lock()
			if r := f.running; r != nil && r.id == h.ID {
				r.paused = h.Type == proto.Pause
				r.pausedYet = r.pausedYet || r.paused
				f.record(strings.ToLower(h.Type.String()), "id", itoa(h.ID), "tok", r.tok)
				f.cond.Broadcast()
			}
			f.mu.Unlock()
		case proto.Data:
			f.mu.Lock()
			if r := f.running; r != nil && r.id == h.ID {
				r.data = append(r.data, p)
				f.cond.Broadcast()
			}
			f.mu.Unlock()
		case proto.Ping:
			f.record("ping")
			f.write(proto.AppendFrame(nil, proto.Pong, 0, 0, p))
		default:
			f.record("unexpected", "type", h.Type.String())
		}
	}
}

func parseRequest(h proto.Header, p []byte) *request {
	r := &request{id: h.ID, env: map[string]string{}, pull: h.Flags&proto.FlagBodyPull != 0}
	if len(p) >= 4 {
		n := binary.BigEndian.Uint32(p)
		if uint64(n) <= uint64(len(p)-4) {
			fields := strings.Split(string(p[4:4+n]), "\x00")
			for i := 0; i+1 < len(fields); i += 2 {
				r.env[fields[i]] = fields[i+1]
			}
			r.body = p[4+n:]
		}
	}
	r.query, _ = url.ParseQuery(r.env["QUERY_STRING"])
	r.tok = r.env["HTTP_X_TOKEN"]
	if r.tok == "" {
		r.tok = "-"
	}
	return r
}

// control answers STEAL on the control channel.
func (f *fake) control() {
	fr := proto.NewMasterReader(bufio.NewReader(f.ctl))
	for {
		fm, err := fr.Next()
		h := fm.Header
		if err != nil {
			return
		}
		if h.Type != proto.Steal {
			f.record("unexpected-control", "type", h.Type.String())
			continue
		}
		f.mu.Lock()
		rs := f.queue
		f.queue = nil
		f.steals++
		f.record("steal", "returned", toks(rs))
		f.cond.Broadcast()
		f.mu.Unlock()
		f.write(returnedFrame(rs))
	}
}

func toks(rs []*request) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.tok
	}
	return strings.Join(s, ",")
}

func returnedFrame(rs []*request) []byte {
	ids := make([]byte, 4*len(rs))
	for i, r := range rs {
		binary.BigEndian.PutUint32(ids[4*i:], r.id)
	}
	return proto.AppendFrame(nil, proto.Returned, 0, 0, ids)
}

// execute runs the queued requests one at a time, in order.
func (f *fake) execute() {
	for {
		f.mu.Lock()
		for len(f.queue) == 0 && !f.quitting() {
			f.cond.Wait()
		}
		if f.quitting() {
			rs := f.queue
			f.queue = nil
			f.record("exit", "returned", toks(rs))
			f.mu.Unlock()
			if len(rs) > 0 {
				f.write(returnedFrame(rs))
			}
			exit(0)
		}
		r := f.queue[0]
		f.queue = f.queue[1:]
		f.running = r
		f.record("start", "id", itoa(r.id), "tok", r.tok, "path", r.env["PATH_INFO"])
		f.mu.Unlock()
		f.serve(r)
		f.mu.Lock()
		f.running = nil
		f.mu.Unlock()
	}
}

// quitting reports that the worker should exit once idle. Called with f.mu held.
func (f *fake) quitting() bool {
	return f.eof && f.mode == ModeServe || f.term && f.mode != ModeStubborn
}

// waitUntil waits until cond holds (met), r is cancelled, or d passes.
// cond is called with f.mu held.
func (f *fake) waitUntil(r *request, d time.Duration, cond func() bool) (met, cancelled bool) {
	return f.waitFor(d, cond, func() bool { return r.cancelled })
}

// waitFor waits until cond holds (met), cancelled holds, or d passes;
// both are called with f.mu held, after each Broadcast of f.cond.
func (f *fake) waitFor(d time.Duration, cond, cancelled func() bool) (met, wasCancelled bool) {
	deadline := time.Now().Add(d)
	t := time.AfterFunc(d, func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer t.Stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if cond() {
			return true, false
		}
		if cancelled() {
			return false, true
		}
		if !time.Now().Before(deadline) {
			return false, false
		}
		f.cond.Wait()
	}
}

// waitFile waits until a file named name exists in the record directory.
func (f *fake) waitFile(r *request, name string, d time.Duration) (met, cancelled bool) {
	path := filepath.Join(f.dir, name)
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return true, false
		}
		f.mu.Lock()
		c := r.cancelled
		f.mu.Unlock()
		if c {
			return false, true
		}
	}
	return false, false
}

func head(status string, headers ...string) []byte {
	return []byte(strings.Join(append([]string{status}, headers...), "\x00"))
}

func startFrame(id uint32, flags uint8, hd, body []byte) []byte {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(hd)))
	return proto.AppendFrame(nil, proto.Start, flags, id, n[:], hd, body)
}

// complete records that r is done and sends the frame that completes it.
// r stops being the running request first, so that a request the master
// sends on seeing that frame is never counted as waiting behind r.
func (f *fake) complete(r *request, how string, frame []byte) {
	f.mu.Lock()
	f.record("done", "id", itoa(r.id), "tok", r.tok, "how", how)
	if f.running == r {
		f.running = nil
	}
	f.mu.Unlock()
	f.write(frame)
}

// respond completes r with a one-frame response.
func (f *fake) respond(r *request, status string, body string) {
	f.complete(r, "ok", startFrame(r.id, proto.FlagEnd, head(status, "Content-Type", "text/plain"), []byte(body)))
}

func (f *fake) end(r *request, aborted bool) {
	how, flags := "ok", uint8(0)
	if aborted {
		how, flags = "aborted", proto.FlagAborted
	}
	f.complete(r, how, proto.AppendFrame(nil, proto.End, flags, r.id))
}

// okBody is the body of the simple routes: the token and the worker's pid.
func (f *fake) okBody(r *request) string { return fmt.Sprintf("ok %s %d", r.tok, f.pid) }

const patience = 20 * time.Second // how long a scripted wait lasts before it gives up

// serve runs one request. Routes (PATH_INFO, parameters in QUERY_STRING):
//
//	/fast                 answer at once
//	/slow?ms=N            answer after N ms
//	/gate?n=N             answer once N requests have been received in all
//	/wait?file=NAME       answer once the file NAME exists in the record dir
//	/untilcancel          wait for CANCEL, then END with ABORTED
//	/untilsteal           answer once a STEAL has been handled
//	/stream?n=N           START, N BODY frames "part i\n", END; part i > 0
//	                      waits for the file ack-TOKEN-i
//	/big?size=N&chunk=C&expectpause=P
//	                      N bytes (byte i is i%251) in BODY frames of C bytes,
//	                      honouring PAUSE; after P bytes it waits for a PAUSE
//	/file?data=S          START, FILE (S at offset 4 of a fresh file), END
//	/pull?chunk=C         READ the body in C-byte steps; answer "got LEN SHA256"
//	/crash?after=N        exit 3 once N requests have been received
//	/hang                 never answer, ignore CANCEL
//	/error                ERROR with AppTraceback
//	/bogus                END for a request id that was never sent
//	/log                  LOG, then answer
func (f *fake) serve(r *request) {
	q := r.query
	switch r.env["PATH_INFO"] {
	case "/fast":
		f.respond(r, "200 OK", f.okBody(r))
	case "/slow":
		ms, _ := strconv.Atoi(q.Get("ms"))
		if _, cancelled := f.waitUntil(r, time.Duration(ms)*time.Millisecond, never); cancelled {
			f.end(r, true)
			return
		}
		f.respond(r, "200 OK", f.okBody(r))
	case "/gate":
		n, _ := strconv.Atoi(q.Get("n"))
		met, cancelled := f.waitUntil(r, patience, func() bool { return f.received >= n })
		if cancelled {
			f.end(r, true)
			return
		}
		if !met {
			f.record("gate-timeout", "tok", r.tok)
		}
		f.respond(r, "200 OK", f.okBody(r))
	case "/wait":
		met, cancelled := f.waitFile(r, q.Get("file"), patience)
		if cancelled {
			f.end(r, true)
			return
		}
		if !met {
			f.record("wait-timeout", "tok", r.tok)
		}
		f.respond(r, "200 OK", f.okBody(r))
	case "/untilcancel":
		if _, cancelled := f.waitUntil(r, patience, never); !cancelled {
			f.record("cancel-timeout", "tok", r.tok)
		}
		f.end(r, true)
	case "/untilsteal":
		met, cancelled := f.waitUntil(r, patience, func() bool { return f.steals > 0 })
		if cancelled {
			f.end(r, true)
			return
		}
		if !met {
			f.record("steal-timeout", "tok", r.tok)
		}
		f.respond(r, "200 OK", f.okBody(r))
	case "/stream":
		f.stream(r)
	case "/big":
		f.big(r)
	case "/file":
		f.file(r)
	case "/pull":
		f.pull(r)
	case "/crash":
		n, _ := strconv.Atoi(q.Get("after"))
		f.waitUntil(r, patience, func() bool { return f.received >= n })
		f.record("crash", "tok", r.tok)
		exit(3)
	case "/hang":
		f.record("hang", "tok", r.tok)
		sleepForever()
	case "/error":
		js, _ := json.Marshal(map[string]string{"error": "ZeroDivisionError: division by zero", "traceback": AppTraceback})
		f.complete(r, "error", proto.AppendFrame(nil, proto.Error, 0, r.id, js))
	case "/bogus":
		f.complete(r, "bogus", proto.AppendFrame(nil, proto.End, 0, r.id+1000))
	case "/log":
		js, _ := json.Marshal(map[string]string{"level": "warning", "message": "fake worker says hello"})
		f.write(proto.AppendFrame(nil, proto.Log, 0, r.id, js))
		f.respond(r, "200 OK", f.okBody(r))
	case "/ban":
		js, _ := json.Marshal(map[string]any{"addr": r.query.Get("addr"), "seconds": 60, "reason": "fake worker bans"})
		f.write(proto.AppendFrame(nil, proto.Ban, 0, 0, js))
		f.respond(r, "200 OK", f.okBody(r))
	default:
		f.respond(r, "404 Not Found", "no such route")
	}
}

func never() bool { return false }

func (f *fake) stream(r *request) {
	n, _ := strconv.Atoi(r.query.Get("n"))
	f.write(startFrame(r.id, 0, head("200 OK", "Content-Type", "text/plain"), nil))
	for i := range n {
		if i > 0 {
			met, cancelled := f.waitFile(r, fmt.Sprintf("ack-%s-%d", r.tok, i), patience)
			if cancelled {
				f.end(r, true)
				return
			}
			if !met {
				f.record("ack-timeout", "tok", r.tok, "part", strconv.Itoa(i))
			}
		}
		f.write(proto.AppendFrame(nil, proto.Body, 0, r.id, fmt.Appendf(nil, "part %d\n", i)))
	}
	f.end(r, false)
}

// BigByte is byte i of a /big response.
func BigByte(i int) byte { return byte(i % 251) }

func (f *fake) big(r *request) {
	size, _ := strconv.Atoi(r.query.Get("size"))
	chunk, _ := strconv.Atoi(r.query.Get("chunk"))
	if chunk <= 0 {
		chunk = 64 << 10
	}
	expect, _ := strconv.Atoi(r.query.Get("expectpause"))
	f.write(startFrame(r.id, 0, head("200 OK", "Content-Type", "application/octet-stream"), nil))
	sent := 0
	for sent < size {
		if expect > 0 && sent >= expect {
			met, _ := f.waitUntil(r, patience, func() bool { return r.pausedYet })
			if !met {
				f.record("pause-timeout", "tok", r.tok, "sent", strconv.Itoa(sent))
			}
			expect = 0
		}
		// "blocked" is recorded by the wait that finds the request paused,
		// under the same lock: a PAUSE that arrived between a separate
		// check and the wait would block without a record.
		blocked := false
		_, cancelled := f.waitUntil(r, patience, func() bool {
			if r.paused && !r.cancelled && !blocked {
				blocked = true
				f.record("blocked", "tok", r.tok, "sent", strconv.Itoa(sent))
			}
			return !r.paused
		})
		if cancelled {
			f.end(r, true)
			return
		}
		k := min(chunk, size-sent)
		b := make([]byte, k)
		for i := range b {
			b[i] = BigByte(sent + i)
		}
		f.write(proto.AppendFrame(nil, proto.Body, 0, r.id, b))
		sent += k
	}
	f.end(r, false)
}

func (f *fake) file(r *request) {
	tmp, err := os.CreateTemp(f.dir, "file-")
	if err != nil {
		f.record("file-error", "error", err.Error())
		exit(72)
	}
	os.Remove(tmp.Name())
	_, _ = tmp.WriteString("XXXX" + r.query.Get("data") + "YYYY")
	f.write(startFrame(r.id, 0, head("200 OK", "Content-Type", "text/plain"), nil))
	var p [16]byte
	binary.BigEndian.PutUint64(p[:], 4)
	binary.BigEndian.PutUint64(p[8:], uint64(len(r.query.Get("data"))))
	fr := proto.AppendFrame(nil, proto.File, 0, r.id, p[:])
	f.wmu.Lock()
	_, _, err = f.data.WriteMsgUnix(fr, syscall.UnixRights(int(tmp.Fd())), nil)
	f.wmu.Unlock()
	if err != nil {
		f.record("write-error", "error", err.Error())
	}
	// The master must read at the offset, not at the shared file position.
	_, _ = tmp.Seek(1, io.SeekStart)
	tmp.Close()
	f.end(r, false)
}

func (f *fake) pull(r *request) {
	chunk, _ := strconv.Atoi(r.query.Get("chunk"))
	if chunk <= 0 {
		chunk = 1000
	}
	body := append([]byte(nil), r.body...)
	reads := 0
	for r.pull {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(chunk))
		f.write(proto.AppendFrame(nil, proto.Read, 0, r.id, n[:]))
		reads++
		met, cancelled := f.waitUntil(r, patience, func() bool { return len(r.data) > 0 })
		if cancelled || !met {
			f.end(r, true)
			return
		}
		f.mu.Lock()
		d := r.data[0]
		r.data = r.data[1:]
		f.mu.Unlock()
		if len(d) > chunk {
			f.record("data-too-long", "tok", r.tok)
		}
		if len(d) == 0 {
			break
		}
		body = append(body, d...)
	}
	f.record("pulled", "tok", r.tok, "reads", strconv.Itoa(reads), "bytes", strconv.Itoa(len(body)))
	f.respond(r, "200 OK", fmt.Sprintf("got %d %x", len(body), sha256.Sum256(body)))
}

func itoa(id uint32) string { return strconv.FormatUint(uint64(id), 10) }

// Event is one line of a fake worker's record.
type Event struct {
	Pid  int
	Seq  int // position in its worker's record
	Kind string
	Args map[string]string
}

// Events reads the records of every fake worker that ran with dir, each
// worker's events in order, workers ordered by pid. Incomplete last lines
// are skipped.
func Events(dir string) ([]Event, error) {
	names, err := filepath.Glob(filepath.Join(dir, "rec-*.log"))
	if err != nil {
		return nil, err
	}
	type rec struct {
		pid  int
		data []byte
	}
	var recs []rec
	for _, name := range names {
		pid, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), "rec-"), ".log"))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec{pid, b})
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].pid < recs[j].pid })
	var out []Event
	for _, r := range recs {
		data := r.data
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
			data = data[:i]
		} else {
			continue
		}
		for seq, line := range strings.Split(string(data), "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			e := Event{Pid: r.pid, Seq: seq, Kind: fields[0], Args: map[string]string{}}
			for _, kv := range fields[1:] {
				k, v, _ := strings.Cut(kv, "=")
				e.Args[k] = v
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// Pids returns the pid of every fake worker that recorded in dir.
func Pids(dir string) []int {
	evs, _ := Events(dir)
	var pids []int
	for _, e := range evs {
		if e.Kind == "spawn" {
			pids = append(pids, e.Pid)
		}
	}
	return pids
}

// RequestFrame builds a REQUEST frame (with id 0, which the sender sets)
// for a fake worker: a GET of path with query, tagged with token so the
// records can tell requests apart.
func RequestFrame(path, query, token string, flags uint8, body []byte) []byte {
	b := proto.BeginRequest(nil)
	b = proto.AddEnv(b, "REQUEST_METHOD", "GET")
	b = proto.AddEnv(b, "PATH_INFO", path)
	b = proto.AddEnv(b, "QUERY_STRING", query)
	b = proto.AddEnv(b, "HTTP_X_TOKEN", token)
	b, err := proto.FinishRequest(b, 0, flags, body)
	if err != nil {
		panic(err)
	}
	return b
}
