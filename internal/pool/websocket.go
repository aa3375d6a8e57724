package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"corral/internal/proto"
)

// WebSockets (ASGI workers). A WebSocket request is a Call like any
// other until the app answers its handshake: WS_ACCEPT makes Head report
// status 101, a denial is an ordinary HTTP response, and a close before
// accepting (or an app that returns without accepting) is a 403. From the
// accept on, the Call carries messages both ways:
//
//   - the app's, from the worker's reader to the front (NextWS): a queue
//     the reader never blocks on; the worker is paused (PAUSE) while more
//     than Config.WSBuffer bytes wait in it for a client that does not
//     read, and resumed once the front has taken half of them;
//   - the client's, from the front to the worker (SendWS): sent only
//     while the bytes the worker has not acknowledged (WS_ACK) are within
//     WSWindow, so an app that does not read holds at most a window in
//     its worker and the client's further messages wait in its socket.

// WSWindow is the flow-control window of client messages towards a
// worker (docs/PROTOCOL.md): a message is sent once it fits in the window
// with the bytes the worker has not acknowledged, or when nothing is
// unacknowledged.
const WSWindow = 256 << 10

// WSHeadroom is the number of bytes at the start of each part given to
// SendWS that are reserved for the frame header the pool writes there.
const WSHeadroom = proto.HeaderSize

// WSEvent is one thing the app did on an accepted WebSocket: sent a
// message (or a part of one: More), or closed the socket (Close, with
// Code and Reason as the app gave them).
type WSEvent struct {
	Close  bool
	Code   int
	Reason string
	Text   bool   // a text message (UTF-8), else binary
	More   bool   // more parts of this message follow
	Data   []byte // the part's bytes; owned by the receiver
}

// ErrWSClosed is returned by SendWS once the request is complete or
// released: the app will not read more messages.
var ErrWSClosed = errors.New("websocket request complete")

// wsLink is the pool's side of one WebSocket request.
type wsLink struct {
	mu        sync.Mutex
	accepted  bool
	sub       string    // the subprotocol the app chose
	events    []WSEvent // from the app, not yet taken by the front
	queued    int64     // bytes of Data in events
	done      bool      // no more events will come
	err       error     // with done: why, nil for a clean end
	released  bool      // the front is gone: drop what comes
	unacked   int64     // client message bytes sent and not acknowledged
	closeSent bool      // WS_CLOSE went to the worker; guarded by the pool's mu
	wake      chan struct{}
	acked     chan struct{}
}

func newWSLink() *wsLink {
	return &wsLink{wake: make(chan struct{}, 1), acked: make(chan struct{}, 1)}
}

func wakeUp(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push queues an event from the app and returns the bytes now queued.
func (l *wsLink) push(ev WSEvent) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done || l.released {
		return 0
	}
	l.events = append(l.events, ev)
	l.queued += int64(len(ev.Data))
	wakeUp(l.wake)
	return l.queued
}

// finish ends the events: err nil is the app's clean end.
func (l *wsLink) finish(err error) {
	l.mu.Lock()
	if !l.done {
		l.done, l.err = true, err
	}
	l.mu.Unlock()
	wakeUp(l.wake)
	wakeUp(l.acked)
}

func (l *wsLink) ack(n int64) {
	l.mu.Lock()
	l.unacked = max(0, l.unacked-n)
	l.mu.Unlock()
	wakeUp(l.acked)
}

func (l *wsLink) release() {
	l.mu.Lock()
	l.released = true
	l.events = nil
	l.queued = 0
	l.mu.Unlock()
}

// Subprotocol is the WebSocket subprotocol the app accepted with, "" for
// none. Valid once Head has reported 101.
func (c *Call) Subprotocol() string {
	l := c.wsl()
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sub
}

// NextWS waits for the app's next WebSocket event. It returns io.EOF once
// the app has finished (its coroutine returned), ErrAborted if the request
// was cancelled, the app's failure (*AppError) or ErrWorkerDied, or ctx's
// error. Only one goroutine may call it.
func (c *Call) NextWS(ctx context.Context) (WSEvent, error) {
	l := c.wsl()
	if l == nil {
		return WSEvent{}, ErrWSClosed
	}
	for {
		l.mu.Lock()
		if len(l.events) > 0 {
			ev := l.events[0]
			l.events[0] = WSEvent{}
			l.events = l.events[1:]
			before := l.queued
			l.queued -= int64(len(ev.Data))
			half := c.pool.cfg.WSBuffer / 2
			resume := before > half && l.queued <= half
			l.mu.Unlock()
			if resume {
				c.pool.resume(c)
			}
			return ev, nil
		}
		if l.done {
			err := l.err
			l.mu.Unlock()
			if err == nil {
				err = io.EOF
			}
			return WSEvent{}, err
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-ctx.Done():
			return WSEvent{}, ctx.Err()
		}
	}
}

// SendWS sends one client message to the app: parts, in order, each
// starting with WSHeadroom spare bytes for its frame header and carrying
// at most proto.MaxPayload bytes after them; size is the message's length.
// It waits until the message fits in the flow-control window (WSWindow),
// and fails with ErrWSClosed once the request is complete, or with ctx's
// error. The parts are the pool's from then on. Only one goroutine may
// call it.
func (c *Call) SendWS(ctx context.Context, text bool, parts [][]byte, size int64) error {
	l := c.wsl()
	if l == nil {
		return ErrWSClosed
	}
	for {
		l.mu.Lock()
		if l.done || l.released {
			l.mu.Unlock()
			return ErrWSClosed
		}
		if l.unacked == 0 || l.unacked+size <= WSWindow {
			l.unacked += size
			l.mu.Unlock()
			break
		}
		l.mu.Unlock()
		select {
		case <-l.acked:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p := c.pool
	p.mu.Lock()
	if c.state != callSent || c.cancelled {
		p.mu.Unlock()
		return ErrWSClosed
	}
	m, write := c.m, false
	for i, part := range parts {
		flags := uint8(0)
		if text {
			flags |= proto.FlagText
		}
		if i < len(parts)-1 {
			flags |= proto.FlagMore
		}
		proto.PutHeader(part, proto.Header{Type: proto.WSSend, Flags: flags, ID: c.id, Length: uint32(len(part) - WSHeadroom)})
		write = m.push(part) || write
	}
	p.mu.Unlock()
	if write {
		// Not inline: messages from the sockets that woke together go to
		// the worker in one writev. WSWindow bounds what each socket has
		// queued meanwhile.
		go m.drainBatched()
	}
	return nil
}

// CloseWS tells the app the client closed the socket (or that the
// connection was lost: 1006) with code and reason, once; later calls do
// nothing. reason must be valid UTF-8. It never blocks.
func (c *Call) CloseWS(code int, reason string) {
	l := c.wsl()
	if l == nil {
		return
	}
	p := c.pool
	p.mu.Lock()
	if c.state != callSent || l.closeSent {
		p.mu.Unlock()
		return
	}
	l.closeSent = true
	m := c.m
	write := m.push(proto.AppendWSClose(nil, c.id, code, reason))
	p.mu.Unlock()
	if write {
		go m.drain() // its callers include the pool's own goroutines, which must not block on a worker
	}
}

// restartSockets ends the WebSockets open on m, a retiring worker about to
// be stopped: the app hears 1012 (service restart), the front gets
// ErrRestarting for the client once the app's messages are out. It
// returns how many there were.
func (p *Pool) restartSockets(m *member) int {
	var ws []*Call
	p.mu.Lock()
	for _, c := range m.inflight {
		if c.req.WebSocket && c.wsAccepted() {
			ws = append(ws, c)
		}
	}
	p.mu.Unlock()
	for _, c := range ws {
		c.wsl().finish(ErrRestarting) // first: the app's END must not end it as a normal close
		c.CloseWS(1012, "server restarting")
	}
	if len(ws) > 0 {
		p.log.Info("closed the WebSockets of a retiring worker (1012)", "worker", m.id, "pid", m.w.Pid, "count", len(ws))
	}
	return len(ws)
}

// accept records the app's websocket.accept: Head reports 101.
func (c *Call) accept(sub string, headers []string) {
	l := c.x.ws
	l.mu.Lock()
	l.accepted, l.sub = true, sub
	l.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.headSet {
		return
	}
	c.headSet = true
	c.status, c.headers = 101, headers
	close(c.headC)
}

func (c *Call) wsAccepted() bool {
	l := c.x.ws
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted
}

// wsFrame handles a WebSocket frame from the worker for c.
func (p *Pool) wsFrame(m *member, c *Call, f proto.Frame) error {
	l := c.wsl()
	if l == nil {
		return fmt.Errorf("%w: %s for a request that is not a WebSocket", errProtocol, f.Type)
	}
	switch f.Type {
	case proto.WSAccept:
		sub, hs, err := proto.ParseAccept(f.Payload)
		if err != nil {
			return err
		}
		c.x.responded.Store(true)
		c.accept(sub, hs)
	case proto.WSMessage:
		if !c.wsAccepted() {
			return fmt.Errorf("%w: WS_MESSAGE before WS_ACCEPT", errProtocol)
		}
		queued := l.push(WSEvent{Text: f.Flags&proto.FlagText != 0, More: f.Flags&proto.FlagMore != 0, Data: f.Payload})
		if queued > p.cfg.WSBuffer {
			p.pause(m, c, func() bool {
				l.mu.Lock()
				defer l.mu.Unlock()
				return l.queued > p.cfg.WSBuffer
			})
		}
	case proto.WSClosed:
		code, reason, err := proto.ParseWSClose(f.Payload)
		if err != nil {
			return err
		}
		if !c.wsAccepted() {
			// websocket.close before websocket.accept denies the handshake.
			c.x.responded.Store(true)
			_ = c.setComplete("403 Forbidden", nil, nil)
			return nil
		}
		l.push(WSEvent{Close: true, Code: code, Reason: reason})
	case proto.WSAck:
		n, err := proto.ParseWSAck(f.Payload)
		if err != nil {
			return err
		}
		l.ack(n)
	}
	return nil
}
