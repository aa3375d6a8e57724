package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"corral/internal/proto"
)

// Zygote is a Python process that has imported the app once and forks
// workers from itself (corral --preload): a new worker costs a fork, not a
// Python start and an import, and workers share the app's memory pages
// until they write to them. The master is not the parent of the workers a
// zygote forks; the zygote reports their pids and exit statuses, and each
// forked worker dies with the zygote, which dies with the master.
type Zygote struct {
	w *Worker // the zygote process itself

	mu       sync.Mutex
	nextID   uint32
	waiting  map[uint32]chan forkResult
	children map[int]*Worker
	early    map[int]syscall.WaitStatus // exits reported before Fork registered the pid
	gone     bool
	done     chan struct{} // closed when the zygote is gone
}

type forkResult struct {
	Pid   int    `json:"pid"`
	Error string `json:"error"`
}

// StartZygote starts a zygote: a worker process in mode "zygote". It fails
// like Spawn does, with a *BootError if the app does not load.
func StartZygote(ctx context.Context, sp *Spawner, cfg Config) (*Zygote, error) {
	cfg.Boot.Mode = "zygote"
	w, err := Spawn(ctx, sp, cfg)
	if err != nil {
		return nil, err
	}
	z := &Zygote{w: w, waiting: map[uint32]chan forkResult{}, children: map[int]*Worker{},
		early: map[int]syscall.WaitStatus{}, done: make(chan struct{})}
	go z.read()
	return z, nil
}

// Hello is what the zygote reported when it loaded the app.
func (z *Zygote) Hello() Hello { return z.w.Hello }

// Pid is the zygote's process id.
func (z *Zygote) Pid() int { return z.w.Pid }

// Done is closed once the zygote is gone; its workers die with it.
func (z *Zygote) Done() <-chan struct{} { return z.done }

// Children returns the number of forked workers that have not exited.
func (z *Zygote) Children() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return len(z.children)
}

// read handles FORKED and EXITED until the zygote's channel ends.
func (z *Zygote) read() {
	for {
		f, fd, err := z.w.Next()
		if fd != nil {
			fd.Close()
		}
		if err != nil {
			break
		}
		switch f.Type {
		case proto.Forked:
			var r forkResult
			if json.Unmarshal(f.Payload, &r) != nil {
				r.Error = "unreadable FORKED"
			}
			z.mu.Lock()
			ch := z.waiting[f.ID]
			delete(z.waiting, f.ID)
			z.mu.Unlock()
			if ch != nil {
				ch <- r
			}
		case proto.Exited:
			var e struct {
				Pid    int `json:"pid"`
				Status int `json:"status"`
			}
			if json.Unmarshal(f.Payload, &e) != nil {
				continue
			}
			z.exited(e.Pid, syscall.WaitStatus(e.Status))
		}
	}
	z.w.Close()
	z.mu.Lock()
	z.gone = true
	children := z.children
	z.children = map[int]*Worker{}
	for id, ch := range z.waiting {
		ch <- forkResult{Error: "the zygote exited"}
		delete(z.waiting, id)
	}
	z.mu.Unlock()
	// PR_SET_PDEATHSIG kills them with the zygote; nobody is left to
	// report how they ended.
	for _, w := range children {
		w.exitErr = errors.New("its zygote exited")
		close(w.exited)
	}
	close(z.done)
}

func (z *Zygote) exited(pid int, ws syscall.WaitStatus) {
	z.mu.Lock()
	w := z.children[pid]
	delete(z.children, pid)
	if w == nil {
		z.early[pid] = ws
	}
	z.mu.Unlock()
	if w != nil {
		w.setExit(ws)
	}
}

// Fork asks the zygote for a worker with the given id and waits for its
// HELLO. The worker's stdout and stderr are its own pipes, logged with its
// id like a spawned worker's.
func (z *Zygote) Fork(ctx context.Context, id int, log *slog.Logger) (*Worker, error) {
	dataP, dataC, err := socketpair()
	if err != nil {
		return nil, fmt.Errorf("fork worker %d: %w", id, err)
	}
	ctlP, ctlC, err := socketpair()
	if err != nil {
		closeFiles(dataP, dataC)
		return nil, fmt.Errorf("fork worker %d: %w", id, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeFiles(dataP, dataC, ctlP, ctlC)
		return nil, fmt.Errorf("fork worker %d: %w", id, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeFiles(dataP, dataC, ctlP, ctlC, outR, outW)
		return nil, fmt.Errorf("fork worker %d: %w", id, err)
	}
	res := make(chan forkResult, 1)
	z.mu.Lock()
	if z.gone {
		z.mu.Unlock()
		closeFiles(dataP, dataC, ctlP, ctlC, outR, outW, errR, errW)
		return nil, fmt.Errorf("fork worker %d: the zygote exited", id)
	}
	z.nextID++
	if z.nextID == 0 {
		z.nextID = 1
	}
	rid := z.nextID
	z.waiting[rid] = res
	z.mu.Unlock()

	payload, _ := json.Marshal(map[string]int{"worker_id": id})
	rights := syscall.UnixRights(int(dataC.Fd()), int(ctlC.Fd()), int(outW.Fd()), int(errW.Fd()))
	z.w.wmu.Lock()
	_, _, err = z.w.data.WriteMsgUnix(proto.AppendFrame(nil, proto.Fork, 0, rid, payload), rights, nil)
	z.w.wmu.Unlock()
	closeFiles(dataC, ctlC, outW, errW) // the zygote has its copies
	if err != nil {
		z.forget(rid)
		closeFiles(dataP, ctlP, outR, errR)
		return nil, fmt.Errorf("fork worker %d: %w", id, err)
	}
	var r forkResult
	select {
	case r = <-res:
	case <-ctx.Done():
		z.forget(rid)
		closeFiles(dataP, ctlP, outR, errR)
		return nil, fmt.Errorf("fork worker %d: %w", id, context.Cause(ctx))
	}
	if r.Error != "" || r.Pid <= 0 {
		closeFiles(dataP, ctlP, outR, errR)
		return nil, fmt.Errorf("fork worker %d: %s", id, r.Error)
	}

	w := &Worker{ID: id, Pid: r.Pid, exited: make(chan struct{}), output: newTail(40),
		killGrace: z.w.killGrace}
	z.mu.Lock()
	if ws, ok := z.early[r.Pid]; ok {
		delete(z.early, r.Pid)
		w.setExit(ws)
	} else if z.gone {
		w.exitErr = errors.New("its zygote exited")
		close(w.exited)
	} else {
		z.children[r.Pid] = w
	}
	z.mu.Unlock()
	wlog := log.With("component", "app", "worker", id)
	go w.forward(outR, wlog, "stdout")
	go w.forward(errR, wlog, "stderr")
	if w.data, err = fileConn(dataP); err != nil {
		ctlP.Close()
		w.Kill()
		<-w.exited
		return nil, fmt.Errorf("fork worker %d: %w", id, err)
	}
	if w.ctl, err = fileConn(ctlP); err != nil {
		w.data.Close()
		w.Kill()
		<-w.exited
		return nil, fmt.Errorf("fork worker %d: %w", id, err)
	}
	w.rd = &fdReader{c: w.data, oob: make([]byte, syscall.CmsgSpace(4*maxFDsPerRead))}
	w.frames = proto.NewReader(bufio.NewReaderSize(w.rd, 256<<10))
	err = w.awaitHello(ctx)
	if err == nil && w.Hello.Pid != w.Pid {
		err = fmt.Errorf("%w: HELLO from pid %d on the channel of pid %d", proto.ErrMalformed, w.Hello.Pid, w.Pid)
	}
	if err != nil {
		w.Kill()
		<-w.exited
		w.closeConns()
		return nil, fmt.Errorf("fork worker %d: %w", id, err)
	}
	return w, nil
}

func (z *Zygote) forget(rid uint32) {
	z.mu.Lock()
	delete(z.waiting, rid)
	z.mu.Unlock()
}

// Shutdown stops the zygote as Worker.Shutdown stops a worker (EOF, and
// when ctx ends SIGTERM, then SIGKILL after Config.KillGrace) and returns
// once it is gone, with Worker.Shutdown's result. The workers it forked
// die with it: shut them down first. Shutdown and Close may be called more
// than once and concurrently; Close cuts Shutdown short.
func (z *Zygote) Shutdown(ctx context.Context) error {
	err := z.w.Shutdown(ctx)
	<-z.done
	return err
}

// Close kills the zygote now, and with it every worker it forked, and
// returns once it is gone.
func (z *Zygote) Close() {
	z.w.Close()
	<-z.done
}

// setExit records how a forked worker ended.
func (w *Worker) setExit(ws syscall.WaitStatus) {
	if !ws.Exited() || ws.ExitStatus() != 0 {
		w.exitErr = &ExitError{Status: ws}
	}
	close(w.exited)
}

// ExitError is how a forked worker ended when it did not exit with 0.
type ExitError struct{ Status syscall.WaitStatus }

func (e *ExitError) Error() string {
	if e.Status.Signaled() {
		return "signal: " + e.Status.Signal().String()
	}
	return fmt.Sprintf("exit status %d", e.Status.ExitStatus())
}

// Sys returns the wait status, as exec.ExitError's does.
func (e *ExitError) Sys() any { return e.Status }

func closeFiles(fs ...io.Closer) {
	for _, f := range fs {
		f.Close()
	}
}
