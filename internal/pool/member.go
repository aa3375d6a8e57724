package pool

import (
	"net"
	"runtime"
	"slices"
	"sync"
	"time"

	"corral/internal/worker"
)

// State is where a worker is in its lifecycle (StateStarting …
// StateExited), or how Status shows it (StateBusy, StateSpare).
type State uint8

// Worker states. A worker moves forward only: Starting → Ready →
// (Draining →) Stopping → Exited, and any of them may end in Exited when
// the process dies.
const (
	StateStarting State = iota // spawned or forked, loading the app; takes no requests
	StateReady                 // takes requests
	StateDraining              // being retired: finishes its requests, takes no new ones
	StateStopping              // being stopped or killed
	StateExited                // gone

	// Display states: Status shows them, no member is ever in one.
	StateBusy  // ready and running a request; still takes pipelined requests
	StateSpare // a spare (--preload): forked and loaded, waiting to take its slot over
)

// stateUnknown is what UnmarshalText makes of a word it does not know.
const stateUnknown State = 255

var stateNames = [...]string{
	StateStarting: "starting",
	StateReady:    "ready",
	StateDraining: "draining",
	StateStopping: "stopping",
	StateExited:   "exited",
	StateBusy:     "busy",
	StateSpare:    "spare",
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// MarshalText encodes s as its String, the word the admin API shows.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a word MarshalText wrote. A word it does not know
// decodes to a state whose String is "unknown", so that a status client
// still reads a server that knows more states than it does.
func (s *State) UnmarshalText(b []byte) error {
	for i, name := range stateNames {
		if name == string(b) {
			*s = State(i)
			return nil
		}
	}
	*s = stateUnknown
	return nil
}

// legalNext is the transition table of the member doc comment, which
// transitionLocked enforces: the states a member in each state may move to.
var legalNext = [...][]State{
	StateStarting: {StateReady, StateExited},
	StateReady:    {StateDraining, StateStopping, StateExited},
	StateDraining: {StateStopping, StateExited},
	StateStopping: {StateExited},
	StateExited:   nil,
}

// transitionLocked moves m to state to if the table allows it from m's
// state, and reports whether it did; a refused move changes nothing, so a
// caller racing another transition (a kill and a death, say) can tell that
// it lost. Entering StateExited also ends the flags that cannot outlive
// the process: stuck (and its count in p.stuck) and emptied.
func (p *Pool) transitionLocked(m *member, to State) bool {
	if int(m.state) >= len(legalNext) || !slices.Contains(legalNext[m.state], to) {
		return false
	}
	m.state = to
	if to == StateExited {
		if m.stuck {
			m.stuck = false
			p.stuck--
		}
		if m.emptied != nil {
			close(m.emptied)
			m.emptied = nil
		}
	}
	return true
}

// member is the pool's view of one worker process.
//
// Its lifecycle is its state and a few flags, all guarded by p.mu.
// transitionLocked is the only writer of the state and refuses any move
// this table does not list (every state may also end in Exited, when the
// reader sees the process's channel close: died):
//
//	state     dispatch  entered from     by (why)
//	--------  --------  ---------------  -----------------------------------------
//	Starting  no        (new)            spawn or fork; a spare stays Starting
//	                                     until it takes its slot over
//	Ready     yes       Starting         install: HELLO, then the warm-up answered
//	Draining  no        Ready            retire: recycled, reloaded, removed, or
//	                                     replaced after being set aside as stuck
//	Stopping  no        Ready, Draining  kill (timeout, heartbeat); the end of a
//	                                     retirement; the pool's Shutdown or Close
//	Exited    no        any other        died
//
// The flags say what is under way for the member, whatever its state:
//
//	flag       set when (in state)                 by                     cleared
//	---------  ----------------------------------  ---------------------  ----------------
//	recycling  a replacement was asked for         completeLocked         never: asked
//	           (Ready)                             (max-requests),        once
//	                                               checkWorkers (max-
//	                                               lifetime, max-rss),
//	                                               sweep (stuck)
//	stuck      set aside as stuck, counted in      sweep, with            entering Exited
//	           p.stuck (Ready)                     recycling
//	stealing   a STEAL is outstanding (Ready,      sweep, retire          RETURNED
//	           Draining)
//	pingSent   a heartbeat is unanswered (Ready,   checkWorkers, or       PONG
//	           idle; ASGI: Ready or Draining)      watchLoops (ASGI)
//	blocked    its event loop missed the blocked-  watchLoops (ASGI)      PONG
//	           loop threshold (ASGI)
//	emptied    a retirement waits for its          retire                 nothing left in
//	           requests (Draining)                                        flight, or
//	                                                                      entering Exited
//	diedBusy   it died running requests (Exited)   died                   never
//
// Display states are not in the table: Status shows a Ready member running
// a request as StateBusy and a slot's spare (which is Starting) as
// StateSpare.
type member struct {
	id      int // slot, 1-based
	w       *worker.Worker
	zygote  int // pid of the zygote it was forked from; 0 = started directly
	started time.Time

	// Set by starting, before it takes requests; fixed from then on.
	asgi  bool // serves an ASGI app: it starts every request it reads at once
	slots int  // requests it runs at once: threads, or worker_connections (ASGI)
	depth int  // requests it may hold: slots plus pipelining (WSGI only)

	// Guarded by the pool's mutex.
	state      State   // written only by transitionLocked
	inflight   []*Call // in write order; the first `slots` are (probably) running
	nextID     uint32
	served     int64
	stealing   bool          // a STEAL is outstanding
	recycling  bool          // a replacement has been asked for
	diedBusy   bool          // it died with requests running
	reported   bool          // its restart went to Config.OnRestart
	stuck      bool          // set aside as stuck; counted in the pool's stuck
	maxServed  int64         // retire after this many requests; 0 = never
	retireAt   time.Time     // retire after this time; zero = never
	lastActive time.Time     // when it last completed a request
	pingSent   time.Time     // an unanswered heartbeat; zero = none
	blocked    bool          // ASGI: its event loop missed the blocked-loop threshold
	websockets int           // WebSocket requests in flight
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
	return &member{id: id, w: w, started: now, lastActive: now, state: StateStarting,
		byID: make(map[uint32]*Call), dead: make(chan struct{})}
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

// drainBatched is drain for a writer that need not write at once: it first
// lets the goroutines that are ready to run (handlers woken by the same
// batch of responses, typically) queue their frames, so that one writev
// carries them all. An ASGI worker takes requests as they come, so without
// this every request would cost the master a writev and the worker a wake-up.
func (m *member) drainBatched() {
	runtime.Gosched()
	m.drain()
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
