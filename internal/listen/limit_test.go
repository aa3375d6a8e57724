package listen

import (
	"net"
	"testing"
	"time"
)

// TestConnLimitShared: two listeners under one limit of 1 count their
// connections together: the second listener's connection is handed out
// only once the first listener's closes. An idle listener holds no room.
func TestConnLimitShared(t *testing.T) {
	limit := NewConnLimit(1)
	var ls []net.Listener
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, limit.Wrap(l))
		defer ls[len(ls)-1].Close()
	}
	accepted := make(chan net.Conn, 2)
	for _, l := range ls {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}
		}()
	}
	dial := func(l net.Listener) net.Conn {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// The second listener's connection first: the first listener, idle,
	// must not have taken the room while it waited.
	dial(ls[1])
	var first net.Conn
	select {
	case first = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the first connection was not handed out")
	}
	dial(ls[0])
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("a second connection was handed out over the limit")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was not handed out after the first closed")
	}
}

// TestConnLimitClosed: a closed listener hands out what its socket still
// returns whatever the count, so a draining listener loses nothing.
func TestConnLimitClosed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limit := NewConnLimit(1)
	w := limit.Wrap(l)
	limit.sem <- struct{}{} // full
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan error, 1)
	go func() {
		a, err := w.Accept()
		if err == nil {
			a.Close()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	// Close the wrapper's done channel only (the socket stays open, as a
	// draining listener's does until it has handed everything out).
	w.(*limitListener).closeOnce.Do(func() { close(w.(*limitListener).done) })
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Accept after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a closed listener kept its accepted connection waiting for room")
	}
	l.Close()
}
