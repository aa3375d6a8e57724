package worker

import (
	"errors"
	"net"
	"sync"
	"syscall"
)

// maxFDsPerRead bounds the descriptors one read can carry; the worker sends
// one per FILE frame, so a handful per read is plenty.
const maxFDsPerRead = 16

// maxQueuedFDs bounds descriptors received but not yet claimed by a FILE
// frame; more means the worker is misbehaving.
const maxQueuedFDs = 256

var errFDFlood = errors.New("worker sent descriptors without FILE frames")

// fdReader reads the data channel with recvmsg so that descriptors passed
// with SCM_RIGHTS are collected in arrival order. A FILE frame claims the
// oldest one: the descriptor travels with the frame's bytes, so by the time
// the frame is parsed its descriptor has been received.
type fdReader struct {
	c   *net.UnixConn
	oob []byte

	mu  sync.Mutex
	fds []int
}

func (r *fdReader) Read(p []byte) (int, error) {
	n, oobn, flags, _, err := r.c.ReadMsgUnix(p, r.oob)
	if n < 0 { // recvmsg's -1 on error; io.Reader must never return a negative count
		n = 0
	}
	if oobn > 0 {
		if perr := r.collect(r.oob[:oobn]); perr != nil && err == nil {
			err = perr
		}
	}
	if flags&syscall.MSG_CTRUNC != 0 && err == nil {
		err = errors.New("descriptors truncated in recvmsg")
	}
	return n, err
}

func (r *fdReader) collect(oob []byte) error {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			syscall.CloseOnExec(fd)
			if len(r.fds) >= maxQueuedFDs {
				syscall.Close(fd)
				err = errFDFlood
				continue
			}
			r.fds = append(r.fds, fd)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *fdReader) popFD() (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fds) == 0 {
		return -1, false
	}
	fd := r.fds[0]
	r.fds = r.fds[1:]
	return fd, true
}

func (r *fdReader) closeFDs() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, fd := range r.fds {
		syscall.Close(fd)
	}
	r.fds = nil
}
