package pool

import (
	"net"
	"sync"
	"time"

	"corral/internal/worker"
)

// State is a worker's place in its lifecycle.
type State uint8

// Worker states. A worker moves forward only: Starting → Ready →
// (Draining →) Stopping → Exited.
const (
	StateStarting State = iota // spawned, importing the app
	StateReady                 // takes requests
	StateDraining              // finishing its requests, takes no new ones
	StateStopping              // being stopped or killed
	StateExited                // gone
)

func (s State) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateReady:
		return "ready"
	case StateDraining:
		return "draining"
	case StateStopping:
		return "stopping"
	case StateExited:
		return "exited"
	}
	return "unknown"
}

const stateReady = StateReady

// StateBusy is what Status shows for a ready worker running a request. It
// is not a dispatch state: a busy worker still takes pipelined requests.
const StateBusy = "busy"

// member is the pool's view of one worker process.
type member struct {
	id      int // slot, 1-based
	w       *worker.Worker
	zygote  int // pid of the zygote it was forked from; 0 = started directly
	started time.Time

	// Guarded by the pool's mutex.
	state      State
	inflight   []*Call // in write order; the first `slots` are (probably) running
	nextID     uint32
	served     int64
	stealing   bool          // a STEAL is outstanding
	recycling  bool          // a replacement has been asked for
	diedBusy   bool          // it died with requests running
	stuck      bool          // set aside as stuck; counted in the pool's stuck
	maxServed  int64         // retire after this many requests; 0 = never
	retireAt   time.Time     // retire after this time; zero = never
	lastActive time.Time     // when it last completed a request
	pingSent   time.Time     // an unanswered heartbeat; zero = none
	emptied    chan struct{} // closed when a draining worker has nothing in flight

	// Output queue: frames wait here and whoever finds no write in progress
	// writes everything queued in one writev (flat combining). Request
	// frames are queued under the pool's mutex, so the worker sees requests
	// in the order the pool recorded them.
	omu       sync.Mutex
	out       [][]byte
	spare     [][]byte
	writing   bool
	broken    bool
	writeDone chan struct{} // closed by the active writer when it stops, if someone waits

	idmu sync.Mutex
	byID map[uint32]*Call

	dead chan struct{} // closed once the process is gone and its requests are dealt with
}

func newMember(id int, w *worker.Worker) *member {
	now := time.Now()
	return &member{id: id, w: w, started: now, lastActive: now, state: StateReady,
		byID: make(map[uint32]*Call), dead: make(chan struct{})}
}

// transition moves m to state s if that is forward; it reports whether it
// did. Called with the pool's mutex held.
func (m *member) transition(s State) bool {
	if s <= m.state {
		return false
	}
	m.state = s
	return true
}

func (m *member) byIDPut(c *Call) {
	m.idmu.Lock()
	m.byID[c.id] = c
	m.idmu.Unlock()
}

func (m *member) byIDDel(id uint32) {
	m.idmu.Lock()
	delete(m.byID, id)
	m.idmu.Unlock()
}

func (m *member) lookup(id uint32) *Call {
	m.idmu.Lock()
	c := m.byID[id]
	m.idmu.Unlock()
	return c
}

// push queues a frame. It reports whether the caller became the writer and
// must call drain (inline, or in a goroutine if it must not block).
func (m *member) push(b []byte) bool {
	m.omu.Lock()
	defer m.omu.Unlock()
	if m.broken {
		return false
	}
	m.out = append(m.out, b)
	if m.writing {
		return false
	}
	m.writing = true
	return true
}

// drain writes queued frames until the queue is empty. Only the goroutine
// that push made the writer calls it.
func (m *member) drain() {
	for {
		m.omu.Lock()
		bufs := m.out
		if len(bufs) == 0 || m.broken {
			m.out = nil
			m.writing = false
			if m.writeDone != nil {
				close(m.writeDone)
				m.writeDone = nil
			}
			m.omu.Unlock()
			return
		}
		m.out, m.spare = m.spare[:0], nil
		m.omu.Unlock()
		nb := net.Buffers(bufs)
		_, err := m.w.WriteBuffers(&nb)
		for i := range bufs {
			bufs[i] = nil
		}
		m.omu.Lock()
		m.spare = bufs[:0]
		if err != nil {
			// The reader sees the broken channel too and handles the death.
			m.broken = true
		}
		m.omu.Unlock()
	}
}

// send queues a frame and makes sure it gets written: by this goroutine if
// block is true and nobody is writing, else by another goroutine.
func (m *member) send(b []byte, block bool) {
	if m.push(b) {
		if block {
			m.drain()
		} else {
			go m.drain()
		}
	}
}

// closeOut drops queued frames and waits until no write is in progress, so
// their buffers may be reused. The channel must already be closed.
func (m *member) closeOut() {
	m.omu.Lock()
	m.broken = true
	m.out = nil
	var wait chan struct{}
	if m.writing {
		if m.writeDone == nil {
			m.writeDone = make(chan struct{})
		}
		wait = m.writeDone
	}
	m.omu.Unlock()
	if wait != nil {
		<-wait
	}
}
