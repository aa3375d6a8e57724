package pool

import (
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

// member is the pool's view of one worker process.
type member struct {
	id      int // slot, 1-based
	w       *worker.Worker
	started time.Time

	// Guarded by the pool's mutex.
	state      State
	inflight   []*Call // in write order; the first `slots` are (probably) running
	nextID     uint32
	wseq       uint64 // next write-order ticket
	served     int64
	stealArmed bool
	stealing   bool // a STEAL is outstanding

	// Write order: a request frame is written when wdone reaches its ticket,
	// so the worker sees requests in the order the pool recorded them.
	wmu   sync.Mutex
	wcond *sync.Cond
	wdone uint64

	idmu sync.Mutex
	byID map[uint32]*Call
}

func newMember(id int, w *worker.Worker) *member {
	m := &member{id: id, w: w, started: time.Now(), state: StateReady, byID: make(map[uint32]*Call)}
	m.wcond = sync.NewCond(&m.wmu)
	return m
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
