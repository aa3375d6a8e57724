package worker

import (
	"errors"
	"os/exec"
	"runtime"
	"sync"
)

// Spawner starts worker processes from one OS thread that lives as long as
// the Spawner. PR_SET_PDEATHSIG fires when the thread that forked the child
// exits, not the process: forking from whatever thread the Go scheduler
// picks would kill workers whenever that thread is retired.
type Spawner struct {
	reqs      chan spawnReq
	done      chan struct{}
	closeOnce sync.Once
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

var errSpawnerClosed = errors.New("spawner closed")

// NewSpawner starts the spawning thread. Close it only after every worker
// it started has exited.
func NewSpawner() *Spawner {
	s := &Spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	started := make(chan struct{})
	go func() {
		// Never unlocked: when the goroutine returns, the thread goes with it,
		// which is what Close wants once the workers are gone.
		runtime.LockOSThread()
		close(started)
		for {
			select {
			case r := <-s.reqs:
				r.err <- r.cmd.Start()
			case <-s.done:
				return
			}
		}
	}()
	<-started
	return s
}

func (s *Spawner) start(cmd *exec.Cmd) error {
	r := spawnReq{cmd: cmd, err: make(chan error, 1)}
	select {
	case s.reqs <- r:
		return <-r.err
	case <-s.done:
		return errSpawnerClosed
	}
}

// Close stops the spawning thread; Spawn fails from then on. Close may be
// called more than once and from several goroutines. It does not wait for
// anything: a spawn already under way finishes. A Spawner has no Shutdown,
// since it holds no work to drain; the workers it started are their own
// to shut down, and must be gone before Close (see NewSpawner).
func (s *Spawner) Close() { s.closeOnce.Do(func() { close(s.done) }) }
