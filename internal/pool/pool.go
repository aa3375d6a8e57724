// Package pool runs the Python workers and dispatches requests to them:
// a bounded queue, dispatch with adaptive pipelining, stealing back
// requests stuck behind a slow one, hard timeouts, and the supervisor
// that replaces workers that die.
package pool

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"corral/internal/proto"
	"corral/internal/worker"
)

// Config configures a Pool. Zero values mean the documented defaults.
type Config struct {
	Workers int // number of worker processes (>= 1)
	Threads int // threads per worker (>= 1)

	MaxQueue     int           // requests waiting for a worker; more get ErrQueueFull
	QueueTimeout time.Duration // longest wait for a worker; 0 = no limit
	Timeout      time.Duration // hard limit on a request's running time; 0 = none
	SlowRequest  time.Duration // a request running longer has its stack logged once; 0 = off
	BootTimeout  time.Duration // longest wait for a worker's HELLO (default 60s)
	KillGrace    time.Duration // between SIGTERM and SIGKILL of a worker (default 2s)
	// GracefulTimeout is how long a retiring worker (recycled, reloaded,
	// removed) may take to finish its requests (default 30s).
	GracefulTimeout time.Duration
	WarmupPath      string // a GET sent to each new worker before it takes traffic; "" = none
	// StuckAfter sets a worker aside when every one of its threads has run
	// its request for longer than StuckAfter and 20 times what the route
	// usually takes: its slot gets a fresh worker at once, and the stuck
	// one finishes (or times out) on the side, then exits. At most MaxStuck
	// workers are set aside at once (0 = Workers). StuckAfter 0 = never.
	StuckAfter time.Duration
	MaxStuck   int
	// Preload loads the app once in a zygote process and forks workers
	// from it (gunicorn's --preload): fast replacement, shared memory.
	Preload bool

	// Recycling: a worker is replaced after MaxRequests requests (plus up to
	// MaxRequestsJitter), after MaxLifetime (plus up to MaxLifetimeJitter),
	// or when its resident memory exceeds MaxRSS bytes. Zero = never.
	MaxRequests       int
	MaxRequestsJitter int
	MaxLifetime       time.Duration
	MaxLifetimeJitter time.Duration
	MaxRSS            int64

	// Depth is the most requests in flight on one single-threaded worker
	// (default 16); a worker with T threads gets T-1 more. Budget is the
	// longest expected wait a request may be pipelined into (default 2ms):
	// it, not Depth, limits pipelining for all but the fastest routes.
	Depth  int
	Budget time.Duration

	SpoolDir    string // temporary files for large responses
	SpoolMemory int64  // memory one response may use before spilling (default 1 MiB)
	SpoolBudget int64  // memory all responses may use (default 256 MiB)
	SpoolPause  int64  // spooled bytes at which the worker is paused (default 1 GiB)
	// WSBuffer is how many bytes of an app's WebSocket messages may wait
	// for a client that does not read before its worker is paused
	// (default 1 MiB); it is resumed once half of them went out.
	WSBuffer int64

	// Reserve sets up priority classes 0 … len(Reserve)-1 (Request.Class;
	// 0 is the default and lowest). Reserve[k], for k >= 1, is how many
	// worker threads are kept for class k: a request of a lower class does
	// not take a free thread (nor wait pipelined) while that would leave
	// fewer free threads than the classes above it have reserved and are
	// not using. Queued requests of a higher class are dispatched first,
	// and when the queue is full a request sheds the newest queued request
	// of the lowest class below its own. nil = one class, as without it.
	// For ASGI workers the counts are of connections (worker_connections)
	// and ReserveASGI replaces Reserve when the workers turn out to serve
	// ASGI; it must be nil or as long as Reserve.
	Reserve     []int
	ReserveASGI []int

	// OnReady, if set, is called with the HELLO of every worker that
	// becomes ready (first start, replacements, reloads).
	OnReady func(*worker.Hello)
	// OnBan, if set, gets the bans the app asks for with corral.ban().
	// It runs on a worker's reader goroutine and must not block.
	OnBan func(proto.BanRequest)
	// OnRestart, if set, hears of every worker replaced while the pool
	// runs: one that died unplanned ("crash") or was replaced for a reason
	// ("timeout", "heartbeat", "event loop blocked", "stuck",
	// "max-requests", "max-lifetime", "max-rss", "reload"). It runs on the
	// slot's supervisor or the worker's reader and must not block.
	OnRestart func(Restart)
	// QueueWait, if set, observes in seconds how long each request waited
	// in the pool's queue for a worker (0 for one dispatched at once),
	// under the pool's lock: it must be quick (a Prometheus histogram).
	QueueWait interface{ Observe(float64) }

	Spawner *worker.Spawner
	Worker  worker.Config // template; Boot.WorkerID and KillGrace are set per worker
	Logger  *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Workers < 1 {
		c.Workers = 1
	}
	if c.Threads < 1 {
		c.Threads = 1
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 1024
	}
	if c.BootTimeout <= 0 {
		c.BootTimeout = 60 * time.Second
	}
	if c.KillGrace <= 0 {
		c.KillGrace = 2 * time.Second
	}
	if c.GracefulTimeout <= 0 {
		c.GracefulTimeout = 30 * time.Second
	}
	if c.Depth <= 0 {
		c.Depth = 16
	}
	if c.Budget <= 0 {
		c.Budget = 2 * time.Millisecond
	}
	if c.SpoolMemory <= 0 {
		c.SpoolMemory = 1 << 20
	}
	if c.SpoolBudget <= 0 {
		c.SpoolBudget = 256 << 20
	}
	if c.SpoolPause <= 0 {
		c.SpoolPause = 1 << 30
	}
	if c.WSBuffer <= 0 {
		c.WSBuffer = 1 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Pool is a supervised set of workers and the queue in front of them.
//
// Its lifecycle has net/http's shape:
//
//	New → Start → (MarkNotReady →) Shutdown(ctx) or Close()
//
// Shutdown drains and then stops the workers gracefully, with ctx's
// deadline as their grace; Close stops them now. Both may be called more
// than once, concurrently with each other, and before Start.
type Pool struct {
	cfg    Config
	log    *slog.Logger
	limits *spoolLimits
	slots  int // requests a worker runs at once
	depth  int // requests a worker may hold

	reloadMu   sync.Mutex // one reload at a time
	zmu        sync.Mutex // guards zyg and oldZygotes; held while a zygote starts
	zyg        *worker.Zygote
	oldZygotes []*worker.Zygote // replaced by a reload, waiting for their workers to go

	// mu guards the fields below, the fields of slots and members marked
	// "guarded by p.mu", and the dispatch fields of every Call. Methods
	// whose names end in Locked must be called with mu held.
	mu       sync.Mutex
	members  []*member // live workers: ready, draining or stopping
	slotList []*slot
	queue    queue
	est      *estimates
	inflight int           // calls sent and not done
	stuck    int           // workers set aside as stuck and not yet gone
	classOut []int         // calls sent and not done, per class
	phase    phase         // only moves forward (lifecycle.go)
	started  bool          // Start was called
	iface    string        // what the workers serve, worker.InterfaceWSGI or InterfaceASGI; "" until Start decides
	asgi     atomic.Bool   // iface is InterfaceASGI, for Submit to read without mu
	idle     chan struct{} // closed when nothing is queued or running, if drain waits for that
	busy     chan struct{} // wakes the housekeeper when work arrives

	// Lifecycle (lifecycle.go). wg counts the goroutines that may start
	// workers (Start, Reload, supervisors, spare refills) and the
	// housekeeper and monitor; halt waits for them after cancelling
	// stopCtx. graceCtx ends the graces of stopping workers: Close, or the
	// end of a Shutdown's ctx. halted is closed once every worker is gone.
	wg       sync.WaitGroup
	stopCtx  context.Context
	stopFunc context.CancelFunc
	graceCtx context.Context
	endGrace context.CancelFunc
	halted   chan struct{}
}

// New returns a Pool; Start spawns its workers.
func New(cfg Config) *Pool {
	cfg.setDefaults()
	p := &Pool{
		cfg: cfg,
		log: cfg.Logger.With("component", "pool"),
		limits: &spoolLimits{
			dir: cfg.SpoolDir, perCall: cfg.SpoolMemory, budget: cfg.SpoolBudget, pauseOver: cfg.SpoolPause,
		},
		slots: cfg.Threads,
		depth: cfg.Depth + cfg.Threads - 1,
		est:   newEstimates(time.Millisecond),
		busy:  make(chan struct{}, 1),
	}
	classes := max(1, len(cfg.Reserve))
	p.queue.lanes = make([]lane, classes)
	p.classOut = make([]int, classes)
	p.stopCtx, p.stopFunc = context.WithCancel(context.Background())
	p.graceCtx, p.endGrace = context.WithCancel(context.Background())
	p.halted = make(chan struct{})
	return p
}

// Submit admits a request. It fails at once with ErrQueueFull,
// ErrNoWorkers or ErrShuttingDown; otherwise the call is running or queued
// and the caller waits with Head and must Release it.
func (p *Pool) Submit(r *Request) (*Call, error) {
	c := &Call{req: *r, pool: p, headC: make(chan struct{})}
	c.class = min(max(r.Class, 0), len(p.classOut)-1)
	if p.asgi.Load() || r.WebSocket {
		c.x = &asgiCall{}
		if r.WebSocket {
			c.x.ws = newWSLink()
		}
	}
	p.mu.Lock()
	if p.phase >= phaseDraining {
		p.mu.Unlock()
		return nil, ErrShuttingDown
	}
	c.key = p.est.key(r)
	c.est = p.est.get(c.key)
	now := time.Now()
	if p.inflight == 0 && p.queue.n == 0 {
		p.wake()
	}
	if m := p.pickLocked(c, now); m != nil {
		if p.cfg.QueueWait != nil {
			p.cfg.QueueWait.Observe(0)
		}
		write := p.assignLocked(c, m, now)
		p.mu.Unlock()
		if write {
			if m.asgi {
				go m.drainBatched()
			} else {
				m.drain() // the handler's goroutine may block on the worker's socket
			}
		}
		return c, nil
	}
	if p.readyCountLocked() == 0 && p.crashLoopingLocked() {
		p.mu.Unlock()
		return nil, ErrNoWorkers
	}
	var shed *Call
	if p.queue.n >= p.cfg.MaxQueue {
		if shed = p.queue.lowestBelow(c.class); shed == nil {
			p.mu.Unlock()
			return nil, ErrQueueFull
		}
		p.queue.remove(shed)
		shed.state = callDone
	}
	c.state = callQueued
	c.enqueued = now
	p.queue.pushBack(c)
	p.mu.Unlock()
	if shed != nil {
		shed.fail(ErrQueueFull)
	}
	return c, nil
}

// pickLocked chooses the worker for c, or nil if it should wait in the queue:
// a worker with a free thread (the least loaded), else the worker where c
// is expected to start soonest, if that is within the budget.
//
// With priority classes, a call of a class below others' unused
// reservations only takes a free thread, and only if enough stay free; a
// call below any reservation is never pipelined, so it cannot take a
// reserved worker's next turn.
func (p *Pool) pickLocked(c *Call, now time.Time) *member {
	var best *member
	var bestWait time.Duration
	held, below := p.reservedAboveLocked(c.class)
	free := 0
	for _, m := range p.members {
		if m == nil || m.state != StateReady {
			continue
		}
		if len(m.inflight) < m.slots {
			free += m.slots - len(m.inflight)
			if best == nil || bestWait > 0 || len(m.inflight) < len(best.inflight) {
				best, bestWait = m, 0
			}
			continue
		}
		if below || bestWait == 0 && best != nil || len(m.inflight) >= m.depth {
			continue
		}
		wait, ok := p.expectedWaitLocked(m, now)
		if ok && wait <= p.cfg.Budget && (best == nil || wait < bestWait) {
			best, bestWait = m, wait
		}
	}
	if held > 0 && free <= held {
		return nil
	}
	return best
}

// reservedAboveLocked is the number of threads the classes above class keep
// for themselves (their reservations minus what they use), and whether any
// class above has a reservation.
func (p *Pool) reservedAboveLocked(class int) (held int, below bool) {
	for k := class + 1; k < len(p.cfg.Reserve); k++ {
		if r := p.cfg.Reserve[k]; r > 0 {
			below = true
			held += max(0, r-p.classOut[k])
		}
	}
	return held, below
}

// untrackLocked counts a sent call as no longer in flight.
func (p *Pool) untrackLocked(c *Call) {
	p.inflight--
	p.classOut[c.class]--
}

// expectedWaitLocked estimates how long a request added to m now would wait
// before it starts. ok is false when every running request is overdue: it
// is slower than usual, so nothing more should wait behind it.
func (p *Pool) expectedWaitLocked(m *member, now time.Time) (time.Duration, bool) {
	var left time.Duration
	overdue := 0
	for i, c := range m.inflight {
		if i < m.slots {
			elapsed := now.Sub(c.since)
			if elapsed > p.overdueAfter(c.est) {
				overdue++
			}
			if r := c.est - elapsed; r > 0 {
				left += r
			}
			continue
		}
		left += c.est
	}
	if overdue == m.slots {
		return 0, false
	}
	return left / time.Duration(m.slots), true
}

// overdueAfter is how long a request may run before requests pipelined
// behind it are taken back.
func (p *Pool) overdueAfter(est time.Duration) time.Duration {
	return max(4*est, 2*p.cfg.Budget)
}

// assignLocked records that c goes to m and queues its frame. It reports
// whether the caller must drain m's output queue.
func (p *Pool) assignLocked(c *Call, m *member, now time.Time) bool {
	m.nextID++
	if m.nextID == 0 {
		m.nextID = 1
	}
	c.state, c.m, c.id = callSent, m, m.nextID
	c.pid.Store(int32(m.w.Pid))
	m.inflight = append(m.inflight, c)
	m.byIDPut(c)
	p.inflight++
	p.classOut[c.class]++
	if len(m.inflight) <= m.slots {
		c.since = now
	}
	if c.req.WebSocket {
		m.websockets++
	}
	binary.BigEndian.PutUint32(c.req.Frame[4:8], c.id)
	return m.push(c.req.Frame)
}

// promoteLocked starts the clock of calls that moved into a running position
// (one of the first slots of m's queue): a call ahead of them ended or was
// given back. Every call in a running position must have a start time, or
// no timeout would ever fire for it.
func (p *Pool) promoteLocked(m *member, now time.Time) {
	for i, c := range m.inflight {
		if i >= m.slots {
			return
		}
		if c.since.IsZero() {
			c.since = now
		}
	}
}

func (p *Pool) timeoutOf(c *Call) time.Duration {
	if c.req.Timeout > 0 {
		return c.req.Timeout
	}
	return p.cfg.Timeout
}

// release is Call.Release's pool side.
func (p *Pool) release(c *Call) {
	p.mu.Lock()
	switch c.state {
	case callQueued:
		p.queue.remove(c)
		c.state = callAbandoned
		p.drainedLocked()
	case callSent:
		if !c.cancelled {
			c.cancelled = true
			if l := c.wsl(); l != nil && l.closeSent {
				// The app was told how the socket closed (WS_CLOSE); a
				// CANCEL would add nothing but blur that code.
				break
			}
			m := c.m
			p.mu.Unlock()
			m.send(proto.AppendFrame(nil, proto.Cancel, 0, c.id), false)
			return
		}
	case callNew:
		c.state = callAbandoned
	}
	p.mu.Unlock()
}

// resume lets a paused worker continue a response the client drained.
func (p *Pool) resume(c *Call) {
	p.mu.Lock()
	if c.state != callSent || !c.paused {
		p.mu.Unlock()
		return
	}
	c.paused = false
	m := c.m
	write := m.push(proto.AppendFrame(nil, proto.Resume, 0, c.id)) // under p.mu: see bodyBytes
	p.mu.Unlock()
	if write {
		go m.drain()
	}
}

// completeLocked removes a finished call from its worker, learns its service
// time and hands queued calls to workers that can take them. It returns
// the sends to perform after unlocking.
func (p *Pool) completeLocked(c *Call, now time.Time) []pending {
	m := c.m
	idx := -1
	for i, x := range m.inflight {
		if x == c {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil
	}
	wasRunning := idx < m.slots
	copy(m.inflight[idx:], m.inflight[idx+1:])
	m.inflight[len(m.inflight)-1] = nil
	m.inflight = m.inflight[:len(m.inflight)-1]
	m.byIDDel(c.id)
	c.state = callDone
	p.untrackLocked(c)
	if c.req.WebSocket {
		m.websockets--
	}
	m.served++
	m.lastActive = now
	if m.maxServed > 0 && m.served >= m.maxServed && !m.recycling && m.state == StateReady {
		m.recycling = true
		if s := p.slotOfLocked(m); s != nil {
			p.requestReplace(s, m, "max-requests")
		}
	}
	p.checkEmptiedLocked(m)
	if wasRunning && !c.since.IsZero() && !m.asgi {
		// Service times decide pipelining, which ASGI workers do not do.
		p.est.observe(c.key, now.Sub(c.since))
	}
	p.promoteLocked(m, now)
	ps := p.assignQueuedLocked(now)
	p.drainedLocked()
	return ps
}

// checkEmptiedLocked tells a retiring worker's drain that nothing is left in
// flight.
func (p *Pool) checkEmptiedLocked(m *member) {
	if len(m.inflight) == 0 && m.emptied != nil {
		close(m.emptied)
		m.emptied = nil
	}
}

// pending is a member whose output queue must be drained once p.mu is
// released.
type pending = *member

// assignQueuedLocked moves calls from the queue to workers while they can take
// them.
func (p *Pool) assignQueuedLocked(now time.Time) []pending {
	var out []pending
	for c := p.queue.first(); c != nil; c = p.queue.first() {
		m := p.pickLocked(c, now)
		if m == nil {
			break
		}
		p.queue.remove(c)
		if p.cfg.QueueWait != nil {
			p.cfg.QueueWait.Observe(now.Sub(c.enqueued).Seconds())
		}
		if p.assignLocked(c, m, now) {
			out = append(out, m)
		}
	}
	return out
}

// flush starts the writes assignQueued decided on. Its callers are the
// workers' readers and supervisors, which must never block on a socket: a
// reader stuck in a write while its worker is stuck writing to it would be
// a deadlock.
func (p *Pool) flush(ps []pending) {
	for _, m := range ps {
		go m.drain()
	}
}

// crashLoopingLocked reports whether every slot is in a long backoff, so no
// worker will be ready soon.
func (p *Pool) crashLoopingLocked() bool {
	for _, s := range p.slotList {
		if !s.failing {
			return false
		}
	}
	return true
}

// readyCountLocked is the number of workers that take requests.
func (p *Pool) readyCountLocked() int {
	n := 0
	for _, m := range p.members {
		if m != nil && m.state == StateReady {
			n++
		}
	}
	return n
}

// requeueLocked puts calls a worker gave back (or did not start before it died)
// at the front of the queue, in their original order, and dispatches.
func (p *Pool) requeueLocked(cs []*Call, now time.Time) []pending {
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		c.m, c.id, c.since = nil, 0, time.Time{}
		c.enqueued = now // a fresh queue timeout: the wait so far was not its fault
		if c.cancelled {
			c.state = callDone
			c.fail(ErrAborted)
			continue
		}
		if p.phase >= phaseHalted {
			c.state = callDone
			c.fail(ErrShuttingDown)
			continue
		}
		c.state = callQueued
		p.queue.pushFront(c)
	}
	return p.assignQueuedLocked(now)
}

// drainedLocked signals drain when nothing is queued or running.
func (p *Pool) drainedLocked() {
	if p.inflight == 0 && p.queue.n == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

// failQueuedLocked ends every queued call with err.
func (p *Pool) failQueuedLocked(err error) {
	for c := p.queue.first(); c != nil; c = p.queue.first() {
		p.queue.remove(c)
		c.state = callDone
		c.fail(err)
	}
	p.drainedLocked()
}

// InFlight returns the number of calls sent to workers and not complete.
func (p *Pool) InFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inflight
}

// queue holds the calls waiting for a worker: one intrusive FIFO (lane)
// per priority class.
type queue struct {
	lanes []lane // by class, 0 = the default and lowest
	n     int    // calls in all lanes
}

type lane struct {
	head, tail *Call
}

// first is the call to dispatch next: the oldest of the highest class.
func (q *queue) first() *Call {
	for k := len(q.lanes) - 1; k >= 0; k-- {
		if c := q.lanes[k].head; c != nil {
			return c
		}
	}
	return nil
}

// lowestBelow is the newest call of the lowest non-empty class below
// class, or nil: the one to shed for a call of class when the queue is full.
func (q *queue) lowestBelow(class int) *Call {
	for k := 0; k < class && k < len(q.lanes); k++ {
		if c := q.lanes[k].tail; c != nil {
			return c
		}
	}
	return nil
}

func (q *queue) pushBack(c *Call) {
	l := &q.lanes[c.class]
	c.prev, c.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
	q.n++
}

func (q *queue) pushFront(c *Call) {
	l := &q.lanes[c.class]
	c.prev, c.next = nil, l.head
	if l.head != nil {
		l.head.prev = c
	} else {
		l.tail = c
	}
	l.head = c
	q.n++
}

func (q *queue) remove(c *Call) {
	l := &q.lanes[c.class]
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next = nil, nil
	q.n--
}
