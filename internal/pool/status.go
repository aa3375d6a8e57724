package pool

import (
	"time"

	"corral/internal/worker"
)

// WorkerStatus is one worker's line in the pool's status.
type WorkerStatus struct {
	ID       int   `json:"id"`
	Pid      int   `json:"pid"`
	State    State `json:"state"`     // a lifecycle state, StateBusy or StateSpare
	InFlight int   `json:"in_flight"` // running and pipelined requests
	// WebSockets counts the WebSocket requests among InFlight (ASGI).
	WebSockets int `json:"websockets,omitempty"`
	// LoopBlocked: an ASGI worker whose event loop has not answered its
	// heartbeat for pool.BlockedLoopAfter.
	LoopBlocked bool           `json:"loop_blocked,omitempty"`
	Served      int64          `json:"served"`
	RSS         int64          `json:"rss_bytes"`
	AgeSec      float64        `json:"age_seconds"`
	Current     *RequestStatus `json:"current,omitempty"` // the oldest running request
}

// RequestStatus describes a running request.
type RequestStatus struct {
	Method    string  `json:"method"`
	Path      string  `json:"path"`
	ElapsedMS float64 `json:"elapsed_ms"`
}

// Status reports the workers and the number of queued requests.
func (p *Pool) Status() (workers []WorkerStatus, queued int) {
	now := time.Now()
	var ws []*worker.Worker
	p.mu.Lock()
	for _, m := range p.members {
		if m == nil {
			continue
		}
		st := WorkerStatus{
			ID: m.id, Pid: m.w.Pid, State: m.state, InFlight: len(m.inflight),
			Served: m.served, AgeSec: now.Sub(m.started).Seconds(),
			WebSockets: m.websockets, LoopBlocked: m.blocked,
		}
		if len(m.inflight) > 0 && !m.inflight[0].since.IsZero() {
			c := m.inflight[0]
			st.Current = &RequestStatus{Method: c.req.Method, Path: c.req.Path,
				ElapsedMS: float64(now.Sub(c.since).Microseconds()) / 1000}
			if m.state == StateReady {
				// Busy is ready and running a request: a display state,
				// since a busy worker still takes pipelined requests.
				st.State = StateBusy
			}
		}
		workers = append(workers, st)
		ws = append(ws, m.w)
	}
	for _, sl := range p.slotList {
		if sp := sl.spare; sp != nil {
			workers = append(workers, WorkerStatus{ID: sp.id, Pid: sp.w.Pid, State: StateSpare,
				AgeSec: now.Sub(sp.started).Seconds()})
			ws = append(ws, sp.w)
		}
	}
	queued = p.queue.n
	p.mu.Unlock()
	for i, w := range ws { // /proc reads stay outside the lock
		workers[i].RSS, _ = w.RSS()
	}
	return workers, queued
}

// AppFiles returns the app's own source files, as the workers reported
// them when they loaded it.
func (p *Pool) AppFiles() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, m := range p.members {
		for _, f := range m.w.Hello.Files {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}
