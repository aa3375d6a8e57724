package pool

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// spool holds the body of one response between the worker (which produces
// it as fast as it likes) and the client (which takes it as fast as it
// can). Bytes stay in memory up to a per-response threshold and while the
// pool-wide memory budget allows, then go to a temporary file. Files the
// worker passed with FILE are queued by reference and never copied.
type spool struct {
	mu      sync.Mutex
	parts   []part
	mem     int64 // bytes of parts held in memory
	pending int64 // bytes produced and not yet taken by the client
	tmp     *os.File
	tmpEnd  int64
	done    bool  // no more parts will come
	err     error // set with done when the response failed
	closed  bool
	wake    chan struct{}

	limits *spoolLimits
}

// part is a run of body bytes: in memory, or a section of a file.
type part struct {
	data []byte
	file *os.File
	off  int64
	n    int64 // for file parts; -1 = to end of file
	own  bool  // close file when done with the part
}

// spoolLimits are shared by every spool of a pool.
type spoolLimits struct {
	dir       string       // for temporary files; "" = os.TempDir()
	perCall   int64        // memory a response may use before spilling
	budget    int64        // memory all responses together may use
	inMemory  atomic.Int64 // bytes currently held in memory by all spools
	pauseOver int64        // pending bytes over which the worker is paused
}

func newSpool(l *spoolLimits) *spool {
	return &spool{limits: l, wake: make(chan struct{}, 1)}
}

func (s *spool) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// write appends body bytes. It reports whether the producer should be
// paused. The spool takes ownership of b.
func (s *spool) write(b []byte) (pause bool, err error) {
	if len(b) == 0 {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, nil
	}
	n := int64(len(b))
	l := s.limits
	if s.tmp == nil && s.mem+n <= l.perCall && l.inMemory.Add(n) <= l.budget {
		s.parts = append(s.parts, part{data: b})
		s.mem += n
	} else {
		if s.tmp == nil {
			if s.mem+n <= l.perCall { // over the shared budget: undo the reservation
				l.inMemory.Add(-n)
			}
			f, err := os.CreateTemp(l.dir, "corral-response-")
			if err != nil {
				return false, err
			}
			os.Remove(f.Name()) // the open descriptor keeps it alive
			s.tmp = f
		}
		if _, err := s.tmp.WriteAt(b, s.tmpEnd); err != nil {
			return false, err
		}
		s.parts = append(s.parts, part{file: s.tmp, off: s.tmpEnd, n: n})
		s.tmpEnd += n
	}
	s.pending += n
	s.signal()
	return l.pauseOver > 0 && s.pending > l.pauseOver, nil
}

// over reports whether the bytes waiting for the client exceed the pause
// threshold.
func (s *spool) over() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits.pauseOver > 0 && s.pending > s.limits.pauseOver
}

// addFile queues a section of a file the worker passed; the spool owns f.
func (s *spool) addFile(f *os.File, off, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		f.Close()
		return
	}
	s.parts = append(s.parts, part{file: f, off: off, n: n, own: true})
	s.signal()
}

// finish marks the end of the body; err non-nil means it is incomplete.
func (s *spool) finish(err error) {
	s.mu.Lock()
	if !s.done {
		s.done, s.err = true, err
	}
	s.mu.Unlock()
	s.signal()
}

// next takes the next part, waiting until one is available or the body
// ends. It returns io.EOF at a clean end, the failure otherwise. resume
// reports that pending bytes fell to half the pause threshold.
func (s *spool) next(cancel <-chan struct{}) (p part, resume bool, err error) {
	for {
		s.mu.Lock()
		if len(s.parts) > 0 {
			p = s.parts[0]
			s.parts[0] = part{}
			s.parts = s.parts[1:]
			if p.data != nil {
				s.mem -= int64(len(p.data))
				s.limits.inMemory.Add(-int64(len(p.data)))
			}
			before := s.pending
			if p.own {
				// passed files are not counted in pending: they cost no memory
			} else if p.data != nil {
				s.pending -= int64(len(p.data))
			} else {
				s.pending -= p.n
			}
			half := s.limits.pauseOver / 2
			resume = s.limits.pauseOver > 0 && before > half && s.pending <= half
			s.mu.Unlock()
			return p, resume, nil
		}
		if s.done {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				err = io.EOF
			}
			return part{}, false, err
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-cancel:
			return part{}, false, errCancelled
		}
	}
}

var errCancelled = errors.New("cancelled")

// release frees everything the spool holds. Safe to call more than once.
func (s *spool) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, p := range s.parts {
		if p.own {
			p.file.Close()
		}
	}
	s.limits.inMemory.Add(-s.mem)
	s.mem = 0
	s.parts = nil
	if s.tmp != nil {
		s.tmp.Close()
		s.tmp = nil
	}
}
