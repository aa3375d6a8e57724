// Package worker owns one Python worker process: spawning it with its two
// socketpairs, the BOOT/HELLO handshake, frame I/O, signals and stopping.
// It knows nothing of HTTP or of other workers; package pool does.
package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"corral/internal/proto"
)

// Boot is the JSON config carried by the BOOT frame (docs/PROTOCOL.md).
type Boot struct {
	Protocol     int               `json:"protocol"`
	Mode         string            `json:"mode"` // "serve", "check" or "routes"
	App          string            `json:"app"`
	WorkerID     int               `json:"worker_id"`
	Threads      int               `json:"threads"`
	Multiprocess bool              `json:"multiprocess"`
	Chdir        string            `json:"chdir"`
	PythonPath   []string          `json:"pythonpath"`
	Environ      map[string]string `json:"environ"`

	// Version 2: ASGI.
	Interface string `json:"interface"` // "auto", "asgi" or "wsgi"; "" is sent as "auto"
	// WorkerConnections is the most requests (HTTP and WebSocket) an ASGI
	// worker runs at once.
	WorkerConnections int     `json:"worker_connections"`
	Lifespan          string  `json:"lifespan"`         // "auto", "on" or "off"; "" is sent as "auto"
	GracefulTimeout   float64 `json:"graceful_timeout"` // seconds: bound on lifespan shutdown and the drain at exit
	RootPath          string  `json:"root_path"`        // SCRIPT_NAME
}

// Interfaces a worker may report in HELLO.
const (
	InterfaceWSGI = "wsgi"
	InterfaceASGI = "asgi"
)

// Hello is what a ready worker reports about itself.
type Hello struct {
	Protocol       int             `json:"protocol"`
	Pid            int             `json:"pid"`
	Python         string          `json:"python"`
	Implementation string          `json:"implementation"`
	Threads        int             `json:"threads"`
	App            string          `json:"app"`
	DumpSignal     int             `json:"dump_signal"`
	Routes         json.RawMessage `json:"routes"`
	Files          []string        `json:"files"` // the app's own source files, for --reload

	// Version 2. Interface is what the worker serves, InterfaceWSGI or
	// InterfaceASGI ("" from a worker that does not say: WSGI). For an ASGI
	// worker Threads is its worker_connections.
	Interface string    `json:"interface"`
	ASGI      *ASGIInfo `json:"asgi,omitempty"`
}

// ASGIInfo is HELLO's description of an ASGI app.
type ASGIInfo struct {
	Version     string   `json:"version"`      // "3.0"
	SpecVersion string   `json:"spec_version"` // of the HTTP spec, "2.5"
	Lifespan    string   `json:"lifespan"`     // "on", "off" or "unsupported"
	Extensions  []string `json:"extensions"`   // what every scope's "extensions" holds
}

// IsASGI reports whether the worker serves an ASGI app.
func (h *Hello) IsASGI() bool { return h.Interface == InterfaceASGI }

// BootError is returned by Spawn when the app could not be loaded.
type BootError struct {
	Err       string `json:"error"`
	Traceback string `json:"traceback"`
}

func (e *BootError) Error() string { return "load app: " + e.Err }

// Config describes how to start a worker.
type Config struct {
	Python    string   // interpreter path
	Bootstrap string   // source of python/boot.py, run with -c
	Runtime   []byte   // zip archive of the corral package, sent in BOOT
	Env       []string // the complete environment of the process
	Boot      Boot
	Logger    *slog.Logger // for the worker's stdout and stderr lines
	// Credential is the user and groups the worker runs as; nil = the
	// master's. Its NoSetGroups must be set unless the master is root.
	Credential *syscall.Credential
	// KillGrace is how long Shutdown waits between SIGTERM and SIGKILL
	// once its context has ended; 0 = 2s. Workers a zygote forks use the
	// zygote's.
	KillGrace time.Duration
}

const defaultKillGrace = 2 * time.Second

// Worker is a running Python worker process.
type Worker struct {
	ID    int
	Pid   int
	Hello Hello

	cmd    *exec.Cmd
	data   *net.UnixConn
	ctl    *net.UnixConn
	wmu    sync.Mutex
	rd     *fdReader
	frames *proto.Reader

	exited  chan struct{}
	exitErr error
	output  *tail

	killGrace time.Duration // Config.KillGrace
	eofOnce   sync.Once     // Shutdown's EOF
	termOnce  sync.Once     // Shutdown's SIGTERM: a second one would mean "exit now"
	closeOnce sync.Once     // closeConns
}

// Spawn starts a worker, sends BOOT and waits for HELLO. It returns a
// *BootError if the app failed to load, or an error naming what went wrong
// if the process died or ctx ended first; in both cases the process is gone.
func Spawn(ctx context.Context, sp *Spawner, cfg Config) (*Worker, error) {
	dataP, dataC, err := socketpair()
	if err != nil {
		return nil, fmt.Errorf("spawn worker %d: %w", cfg.Boot.WorkerID, err)
	}
	ctlP, ctlC, err := socketpair()
	if err != nil {
		dataP.Close()
		dataC.Close()
		return nil, fmt.Errorf("spawn worker %d: %w", cfg.Boot.WorkerID, err)
	}
	defer dataC.Close()
	defer ctlC.Close()

	w := &Worker{ID: cfg.Boot.WorkerID, exited: make(chan struct{}), output: newTail(40),
		killGrace: cfg.KillGrace}
	if w.killGrace <= 0 {
		w.killGrace = defaultKillGrace
	}
	cmd := exec.Command(cfg.Python, "-c", cfg.Bootstrap)
	cmd.Env = cfg.Env
	cmd.ExtraFiles = []*os.File{dataC, ctlC} // fd 3 and fd 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cfg.Credential}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("spawn worker %d: %w", w.ID, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("spawn worker %d: %w", w.ID, err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = sp.start(cmd)
	outW.Close()
	errW.Close()
	// The child has its own copies of its ends now. Ours must go at once:
	// while we hold them, our ends never see EOF, and the handshake would
	// wait forever for a worker that died (or was killed) before HELLO.
	dataC.Close()
	ctlC.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		dataP.Close()
		ctlP.Close()
		return nil, fmt.Errorf("spawn worker %d: %w", w.ID, err)
	}
	w.cmd, w.Pid = cmd, cmd.Process.Pid
	log := cfg.Logger.With("component", "app", "worker", w.ID)
	go w.forward(outR, log, "stdout")
	go w.forward(errR, log, "stderr")
	go func() {
		w.exitErr = cmd.Wait()
		close(w.exited)
	}()
	if w.data, err = fileConn(dataP); err != nil {
		w.Kill()
		return nil, fmt.Errorf("spawn worker %d: %w", w.ID, err)
	}
	if w.ctl, err = fileConn(ctlP); err != nil {
		w.data.Close()
		w.Kill()
		return nil, fmt.Errorf("spawn worker %d: %w", w.ID, err)
	}
	w.rd = &fdReader{c: w.data, oob: make([]byte, syscall.CmsgSpace(4*maxFDsPerRead))}
	w.frames = proto.NewReader(bufio.NewReaderSize(w.rd, 256<<10))

	if err := w.handshake(ctx, cfg); err != nil {
		w.Kill()
		<-w.exited
		w.closeConns()
		return nil, fmt.Errorf("boot worker %d: %w", w.ID, err)
	}
	return w, nil
}

func (w *Worker) handshake(ctx context.Context, cfg Config) error {
	cfg.Boot.Protocol = proto.Version
	if cfg.Boot.Interface == "" {
		cfg.Boot.Interface = "auto"
	}
	if cfg.Boot.Lifespan == "" {
		cfg.Boot.Lifespan = "auto"
	}
	js, err := json.Marshal(cfg.Boot)
	if err != nil {
		return err
	}
	n := []byte{byte(len(js) >> 24), byte(len(js) >> 16), byte(len(js) >> 8), byte(len(js))}
	if 4+len(js)+len(cfg.Runtime) > proto.MaxPayload {
		return fmt.Errorf("BOOT payload of %d bytes: %w", 4+len(js)+len(cfg.Runtime), proto.ErrTooLarge)
	}
	if err := w.Write(proto.AppendFrame(nil, proto.Boot, 0, 0, n, js, cfg.Runtime)); err != nil {
		return w.diedOr(err)
	}
	return w.awaitHello(ctx)
}

// awaitHello reads the worker's first frame: HELLO, or BOOTFAIL.
func (w *Worker) awaitHello(ctx context.Context) error {
	type result struct {
		f   proto.Frame
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := w.frames.Next()
		ch <- result{f, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		w.Kill()
		<-ch
		return fmt.Errorf("no HELLO: %w", context.Cause(ctx))
	}
	if r.err != nil {
		return w.diedOr(r.err)
	}
	switch r.f.Type {
	case proto.Hello:
		if err := json.Unmarshal(r.f.Payload, &w.Hello); err != nil {
			return fmt.Errorf("HELLO: %w", err)
		}
		// A version 1 worker is a WSGI worker, which version 2 serves alike.
		if w.Hello.Protocol != proto.Version && (w.Hello.Protocol != 1 || w.Hello.IsASGI()) {
			return fmt.Errorf("worker speaks protocol %d, want %d", w.Hello.Protocol, proto.Version)
		}
		switch w.Hello.Interface {
		case "":
			w.Hello.Interface = InterfaceWSGI
		case InterfaceWSGI, InterfaceASGI:
		default:
			return fmt.Errorf("%w: HELLO with interface %q", proto.ErrMalformed, w.Hello.Interface)
		}
		return nil
	case proto.BootFail:
		be := &BootError{}
		if err := json.Unmarshal(r.f.Payload, be); err != nil {
			return fmt.Errorf("BOOTFAIL: %w", err)
		}
		return be
	default:
		return fmt.Errorf("%w: %s before HELLO", proto.ErrMalformed, r.f.Type)
	}
}

// diedOr explains an I/O error during boot by the process's exit and its
// last output lines when the process is gone.
func (w *Worker) diedOr(err error) error {
	select {
	case <-w.exited:
	case <-time.After(2 * time.Second):
		return err
	}
	time.Sleep(50 * time.Millisecond) // let the output forwarders catch the last lines
	msg := fmt.Sprintf("worker exited before HELLO (%v)", w.exitErr)
	if out := w.output.String(); out != "" {
		msg += ":\n" + out
	}
	return errors.New(msg)
}

// Next reads the next frame from the worker. For a FILE frame it also
// returns the received descriptor, which the caller must close. Only one
// goroutine may call Next.
func (w *Worker) Next() (proto.Frame, *os.File, error) {
	f, err := w.frames.Next()
	if err != nil {
		return f, nil, err
	}
	if f.Type != proto.File {
		return f, nil, nil
	}
	fd, ok := w.rd.popFD()
	if !ok {
		return f, nil, fmt.Errorf("%w: FILE without a descriptor", proto.ErrMalformed)
	}
	return f, os.NewFile(uintptr(fd), "response-file"), nil
}

// Write writes complete frames to the data channel. Safe for concurrent use.
func (w *Worker) Write(b []byte) error {
	w.wmu.Lock()
	_, err := w.data.Write(b)
	w.wmu.Unlock()
	return err
}

// Steal asks the worker to return the requests it has not started.
func (w *Worker) Steal() error {
	_, err := w.ctl.Write(proto.AppendFrame(nil, proto.Steal, 0, 0))
	return err
}

// Signal sends sig to the process; it is a no-op once the process is gone.
func (w *Worker) Signal(sig syscall.Signal) {
	select {
	case <-w.exited:
	default:
		if w.cmd != nil {
			_ = w.cmd.Process.Signal(sig)
		} else { // forked by a zygote: not our child, but ours to signal
			_ = syscall.Kill(w.Pid, sig)
		}
	}
}

// Kill kills the process at once.
func (w *Worker) Kill() { w.Signal(syscall.SIGKILL) }

// DumpStacks asks the worker's faulthandler to write every thread's Python
// stack to its stderr.
func (w *Worker) DumpStacks() {
	if w.Hello.DumpSignal > 0 {
		w.Signal(syscall.Signal(w.Hello.DumpSignal))
	}
}

// Exited is closed when the process has exited.
func (w *Worker) Exited() <-chan struct{} { return w.exited }

// ExitErr is the process's exit error; valid after Exited is closed.
func (w *Worker) ExitErr() error { return w.exitErr }

// Shutdown stops the worker gracefully. EOF on its data channel lets it
// finish the requests it has started and exit; the time until ctx ends is
// its grace. If it is still running then, it gets SIGTERM (it still
// finishes what it runs: docs/PROTOCOL.md), and SIGKILL Config.KillGrace
// later. A ctx that has already ended means no grace: SIGTERM at once.
//
// Shutdown returns when the process is gone: nil if it went before ctx
// ended, else an error wrapping ctx's. It may be called more than once and from
// several goroutines (the worker gets one EOF and at most one SIGTERM from
// them all), and Close cuts it short.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.eofOnce.Do(func() { _ = w.data.CloseWrite() })
	select {
	case <-w.exited:
		w.closeConns()
		return nil
	case <-ctx.Done():
	}
	select {
	case <-w.exited: // gone just as ctx ended: it made it
		w.closeConns()
		return nil
	default:
	}
	w.termOnce.Do(func() { w.Signal(syscall.SIGTERM) })
	t := time.NewTimer(w.killGrace)
	defer t.Stop()
	select {
	case <-w.exited:
	case <-t.C:
		w.Kill()
		<-w.exited
	}
	w.closeConns()
	return fmt.Errorf("shut down worker %d: %w", w.ID, ctx.Err())
}

// Close kills the process at once if it still runs (SIGKILL: no grace),
// waits until it is gone and releases the channels. It is for workers
// that are already dead or must die now. It may be called more than once,
// and while Shutdown runs, which it cuts short.
func (w *Worker) Close() {
	w.Kill()
	<-w.exited
	w.closeConns()
}

// closeConns releases the channels of a worker whose process has exited.
func (w *Worker) closeConns() {
	w.closeOnce.Do(func() {
		w.data.Close()
		w.ctl.Close()
		w.rd.closeFDs()
	})
}

// RSS returns the resident set size of the process in bytes.
func (w *Worker) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.Pid))
	if err != nil {
		return 0, fmt.Errorf("rss of worker %d: %w", w.ID, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("rss of worker %d: %w", w.ID, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("rss of worker %d: no VmRSS", w.ID)
}

// forward logs each line the worker writes to stdout or stderr. Lines are
// cut at 16 KiB so a runaway writer cannot grow memory.
func (w *Worker) forward(r io.ReadCloser, log *slog.Logger, stream string) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 16<<10)
	for {
		line, isPrefix, err := br.ReadLine()
		if len(line) > 0 || (err == nil && !isPrefix) {
			s := string(line)
			w.output.add(s)
			log.Info(s, "stream", stream)
		}
		if err != nil {
			return
		}
	}
}

func socketpair() (parent, child *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "worker-parent"), os.NewFile(uintptr(fds[1]), "worker-child"), nil
}

func fileConn(f *os.File) (*net.UnixConn, error) {
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("socketpair end is %T", c)
	}
	return uc, nil
}

// tail keeps the last lines a worker printed, to explain a failed boot.
type tail struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) add(s string) {
	t.mu.Lock()
	if len(t.lines) == t.max {
		t.lines = append(t.lines[:0], t.lines[1:]...)
	}
	t.lines = append(t.lines, s)
	t.mu.Unlock()
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// WriteBuffers writes frames to the data channel with one writev where
// possible. Callers serialize their writes.
func (w *Worker) WriteBuffers(b *net.Buffers) (int64, error) {
	return b.WriteTo(w.data)
}
