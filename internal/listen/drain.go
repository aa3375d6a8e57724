package listen

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// drainListener is a TCP listener in a SO_REUSEPORT group. Closing a
// listening socket resets the connections the kernel has queued on it
// (handshake done, not accepted yet) and those still in their handshake,
// and in a group the kernel keeps giving new connections to every member
// until it closes. So Close first makes the socket drop new SYNs (a
// socket filter: the clients send them again a second later, and the
// kernel then picks another member), lets the handshakes under way finish
// for handoverWait, accepts everything queued, and only then closes.
// Accept hands out what Close took before it reports the close: net/http
// serves those connections like any other. With the sysctl
// net.ipv4.tcp_migrate_req=1 the kernel moves such connections to another
// member by itself.
type drainListener struct {
	*net.TCPListener

	mu      sync.Mutex
	closed  bool
	pending []net.Conn
}

func newDrainListener(l *net.TCPListener) (*drainListener, error) {
	return &drainListener{TCPListener: l}, nil
}

// Accept returns the next connection; after Close, the ones Close took
// from the kernel's queue, then net.ErrClosed.
func (l *drainListener) Accept() (net.Conn, error) {
	if c := l.next(); c != nil {
		return c, nil
	}
	c, err := l.TCPListener.Accept()
	if err != nil {
		if c := l.next(); c != nil {
			return c, nil
		}
		return nil, err
	}
	return c, nil
}

func (l *drainListener) next() net.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) == 0 {
		return nil
	}
	c := l.pending[0]
	l.pending = l.pending[1:]
	return c
}

// handoverWait is how long a closing listener waits for the handshakes
// under way to finish: a round trip, with room.
const handoverWait = 250 * time.Millisecond

// Close stops new connections, takes the ones under way and queued, then
// closes the socket.
func (l *drainListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.TCPListener.Close()
	}
	l.closed = true
	l.mu.Unlock()
	if l.dropSYNs() == nil {
		time.Sleep(handoverWait)
	}
	conns := l.drain()
	l.mu.Lock()
	l.pending = append(l.pending, conns...)
	l.mu.Unlock()
	return l.TCPListener.Close()
}

// drain accepts without blocking until the queue is empty. It works on the
// descriptor directly: the net package's Accept would wait for more.
func (l *drainListener) drain() []net.Conn {
	raw, err := l.SyscallConn()
	if err != nil {
		return nil
	}
	var fds []int
	_ = raw.Control(func(fd uintptr) {
		for {
			nfd, _, err := syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.ECONNABORTED) {
				continue
			}
			if err != nil {
				return // EAGAIN: the queue is empty
			}
			fds = append(fds, nfd)
		}
	})
	var conns []net.Conn
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "accepted")
		c, err := net.FileConn(f) // a duplicate the runtime poller owns
		f.Close()
		if err == nil {
			conns = append(conns, c)
		}
	}
	return conns
}

// dropSYNs attaches a classic BPF filter that drops TCP segments with SYN
// set and ACK clear: new connection attempts, while the handshakes under
// way and established connections go on. The filter runs on the TCP
// header.
func (l *drainListener) dropSYNs() error {
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 13}, // flags
		{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: 0x12},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: 0x02},
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},
		{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff},
	}
	raw, err := l.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
			&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
	})
	if err != nil {
		return err
	}
	return serr
}
