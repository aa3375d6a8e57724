package pool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"corral/internal/proto"
)

// read handles m's frames until its channel breaks. It returns why.
func (p *Pool) read(m *member) error {
	for {
		f, fd, err := m.w.Next()
		if err != nil {
			return err
		}
		if err := p.handle(m, f, fd); err != nil {
			if fd != nil {
				fd.Close()
			}
			return err
		}
	}
}

// errProtocol marks a worker that broke the protocol; it is killed.
var errProtocol = errors.New("protocol violation")

func (p *Pool) handle(m *member, f proto.Frame, fd *os.File) error {
	switch f.Type {
	case proto.Returned:
		p.returned(m, proto.ParseReturned(f.Payload))
		return nil
	case proto.Pong:
		var blockedFor time.Duration
		p.mu.Lock()
		if m.blocked {
			m.blocked = false
			blockedFor = time.Since(m.pingSent)
		}
		m.pingSent = time.Time{}
		p.mu.Unlock()
		if blockedFor > 0 {
			p.log.Warn("event loop answers again", "worker", m.id, "pid", m.w.Pid, "blocked_for", blockedFor.Round(time.Millisecond))
		}
		return nil
	case proto.Log:
		p.workerLog(m, nil, f.Payload)
		return nil
	case proto.Ban:
		b, err := proto.ParseBan(f.Payload)
		if err != nil {
			p.log.Warn("the app sent an unusable ban request; ignored", "worker", m.id, "error", err)
		} else if p.cfg.OnBan != nil {
			p.cfg.OnBan(b)
		}
		return nil
	case proto.Hello, proto.BootFail:
		return fmt.Errorf("%w: %s after boot", errProtocol, f.Type)
	}
	c := m.lookup(f.ID)
	if c == nil {
		return fmt.Errorf("%w: %s for unknown request %d", errProtocol, f.Type, f.ID)
	}
	switch f.Type {
	case proto.Start:
		head, body, err := proto.SplitStart(f.Payload)
		if err != nil {
			return err
		}
		status, headers, err := proto.ParseHead(head)
		if err != nil {
			return err
		}
		if c.x != nil {
			if f.Flags&proto.FlagTrailers != 0 {
				c.mu.Lock()
				c.x.wantTrailers = true
				c.mu.Unlock()
			}
			c.x.responded.Store(true)
		}
		if f.Flags&proto.FlagEnd != 0 {
			p.finish(c)
			if err := c.setComplete(status, headers, body); err != nil {
				p.log.Error("invalid response status from app", "worker", m.id, "method", c.req.Method, "path", c.req.Path, "error", err)
			}
			return nil
		}
		if err := c.setHead(status, headers); err != nil {
			p.log.Error("invalid response status from app", "worker", m.id, "method", c.req.Method, "path", c.req.Path, "error", err)
		}
		return p.bodyBytes(m, c, body)
	case proto.Body:
		return p.bodyBytes(m, c, f.Payload)
	case proto.File:
		off, n, err := proto.ParseFile(f.Payload)
		if err != nil {
			fd.Close()
			return err
		}
		b := c.spool()
		if b == nil {
			fd.Close()
			return fmt.Errorf("%w: FILE before START", errProtocol)
		}
		b.addFile(fd, off, n)
	case proto.End:
		var err error
		if f.Flags&proto.FlagAborted != 0 {
			err = ErrAborted
		}
		if b := c.spool(); b != nil {
			b.finish(err)
		}
		p.finish(c)
		if l := c.wsl(); l != nil {
			if !c.wsAccepted() && err == nil {
				// The app returned without accepting the handshake (or
				// after denying it with WS_CLOSE): 403. A no-op after a
				// denial response.
				_ = c.setComplete("403 Forbidden", nil, nil)
			}
			l.finish(err)
		}
		c.fail(ErrAborted) // no-op when the head was set
	case proto.Error:
		ae := &AppError{}
		if err := json.Unmarshal(f.Payload, ae); err != nil {
			ae.Err = "unreadable ERROR frame"
		}
		p.finish(c)
		p.log.Error("application error", "worker", m.id, "method", c.req.Method, "path", c.req.Path,
			"error", ae.Err, "traceback", ae.Traceback)
		c.fail(ae)
	case proto.Read:
		n, err := proto.ParseRead(f.Payload)
		if err != nil {
			return err
		}
		return p.serveRead(m, c, n)
	case proto.Trailers:
		hs, err := proto.ParseHeaders(f.Payload)
		if err != nil {
			return err
		}
		c.setTrailers(hs)
	case proto.EarlyHint:
		hs, err := proto.ParseHeaders(f.Payload)
		if err != nil {
			return err
		}
		c.addHint(hs)
	case proto.WSAccept, proto.WSMessage, proto.WSClosed, proto.WSAck:
		return p.wsFrame(m, c, f)
	default:
		return fmt.Errorf("%w: unexpected %s", errProtocol, f.Type)
	}
	return nil
}

// finish completes c in the pool before its waiter is woken, so the waiter
// never sees a finished call as still running.
func (p *Pool) finish(c *Call) {
	p.mu.Lock()
	ps := p.completeLocked(c, time.Now())
	p.mu.Unlock()
	p.flush(ps)
}

func (p *Pool) bodyBytes(m *member, c *Call, b []byte) error {
	sp := c.spool()
	if sp == nil {
		return fmt.Errorf("%w: BODY before START", errProtocol)
	}
	pause, err := sp.write(b)
	if err != nil {
		p.log.Error("spooling response failed", "worker", m.id, "method", c.req.Method, "path", c.req.Path, "error", err)
		sp.finish(err)
		p.release(c) // cancel at the worker; the client will see an aborted response
		return nil
	}
	if pause {
		p.pause(m, c, sp.over)
	}
	return nil
}

// pause sends PAUSE for c unless it is paused already. It decides and
// queues PAUSE under p.mu, as resume queues RESUME, so the worker gets them
// in the order c.paused changes; and only while over still reports too
// much waiting for the client: the client may have drained it since, and
// its resume then found nothing to undo.
func (p *Pool) pause(m *member, c *Call, over func() bool) {
	p.mu.Lock()
	write := false
	if c.state == callSent && !c.paused && over() {
		c.paused = true
		write = m.push(proto.AppendFrame(nil, proto.Pause, 0, c.id))
	}
	p.mu.Unlock()
	if write {
		go m.drain()
	}
}

// serveRead answers a READ with the next part of the request body.
func (p *Pool) serveRead(m *member, c *Call, n int) error {
	b := c.req.Body
	if b == nil {
		return fmt.Errorf("%w: READ for a request with an inline body", errProtocol)
	}
	buf := make([]byte, proto.HeaderSize+n)
	got, err := b.ReadAt(buf[proto.HeaderSize:], c.readOff)
	if err != nil && !errors.Is(err, io.EOF) {
		p.log.Error("reading buffered request body failed", "method", c.req.Method, "path", c.req.Path, "error", err)
		got = 0 // the app sees a short body; the request is failed when it answers
	}
	c.readOff += int64(got)
	proto.PutHeader(buf, proto.Header{Type: proto.Data, ID: c.id, Length: uint32(got)})
	m.send(buf[:proto.HeaderSize+got], false)
	return nil
}

// returned re-dispatches the requests a worker gave back after STEAL.
func (p *Pool) returned(m *member, ids []uint32) {
	now := time.Now()
	p.mu.Lock()
	m.stealing = false
	var back []*Call
	for _, id := range ids {
		c := m.lookup(id)
		if c == nil || c.m != m {
			continue
		}
		m.byIDDel(id)
		for i, x := range m.inflight {
			if x == c {
				m.inflight = append(m.inflight[:i], m.inflight[i+1:]...)
				break
			}
		}
		if c.req.WebSocket {
			m.websockets--
		}
		p.untrackLocked(c)
		back = append(back, c)
	}
	if len(back) > 0 {
		p.log.Debug("requests taken back from a slow worker", "worker", m.id, "count", len(back))
	}
	p.promoteLocked(m, now)
	ps := p.requeueLocked(back, now)
	p.checkEmptiedLocked(m)
	p.mu.Unlock()
	p.flush(ps)
}

func (p *Pool) workerLog(m *member, c *Call, payload []byte) {
	var l struct {
		Level   string `json:"level"`
		Message string `json:"message"`
	}
	if json.Unmarshal(payload, &l) != nil {
		return
	}
	args := []any{"worker", m.id}
	if c != nil {
		args = append(args, "method", c.req.Method, "path", c.req.Path)
	}
	switch l.Level {
	case "error", "critical":
		p.log.Error(l.Message, args...)
	case "warning":
		p.log.Warn(l.Message, args...)
	default:
		p.log.Info(l.Message, args...)
	}
}
