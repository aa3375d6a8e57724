package systemd

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// listen makes a notify socket, points NOTIFY_SOCKET at it and returns
// the messages it receives.
func listen(t *testing.T) <-chan string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", sock)
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return msgs
}

func next(t *testing.T, msgs <-chan string) string {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
		return ""
	}
}

func TestNotify(t *testing.T) {
	msgs := listen(t)
	n := New(nil)
	n.Ready("1 workers ready")
	n.Status("2 workers ready")
	n.Reloading("reloading")
	n.Stopping("shutting down")
	if got, want := next(t, msgs), "READY=1\nSTATUS=1 workers ready"; got != want {
		t.Errorf("Ready sent %q, want %q", got, want)
	}
	if got, want := next(t, msgs), "STATUS=2 workers ready"; got != want {
		t.Errorf("Status sent %q, want %q", got, want)
	}
	if got, re := next(t, msgs), `^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*\nSTATUS=reloading$`; !regexp.MustCompile(re).MatchString(got) {
		t.Errorf("Reloading sent %q, want it to match %q", got, re)
	}
	if got, want := next(t, msgs), "STOPPING=1\nSTATUS=shutting down"; got != want {
		t.Errorf("Stopping sent %q, want %q", got, want)
	}
}

// TestNotifyOutsideSystemd: without NOTIFY_SOCKET nothing is sent and
// nothing fails.
func TestNotifyOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := New(nil)
	n.Ready("ready")
	n.Stopping("stopping")
}

func TestWatchdog(t *testing.T) {
	msgs := listen(t)
	t.Setenv("WATCHDOG_USEC", "100000") // pings every 50ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	ctx, cancel := context.WithCancel(context.Background())
	var alive atomic.Int64
	done := make(chan struct{})
	go func() {
		New(nil).Watchdog(ctx, func() { alive.Add(1) })
		close(done)
	}()
	for range 3 {
		if got := next(t, msgs); got != "WATCHDOG=1" {
			t.Errorf("watchdog sent %q, want WATCHDOG=1", got)
		}
	}
	if alive.Load() < 3 {
		t.Errorf("alive called %d times for 3 pings", alive.Load())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watchdog did not return when its context ended")
	}
}

// TestWatchdogWedged: while alive blocks, no ping goes out.
func TestWatchdogWedged(t *testing.T) {
	msgs := listen(t)
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wedged := make(chan struct{})
	defer close(wedged)
	go New(nil).Watchdog(ctx, func() { <-wedged })
	select {
	case m := <-msgs:
		t.Errorf("a wedged server pinged: %q", m)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestWatchdogOff: without a watchdog for this process, Watchdog returns
// at once.
func TestWatchdogOff(t *testing.T) {
	for _, env := range [][2]string{
		{"", ""},
		{"100000", "1"}, // another process's watchdog
		{"100000", "x"},
	} {
		t.Setenv("WATCHDOG_USEC", env[0])
		t.Setenv("WATCHDOG_PID", env[1])
		done := make(chan struct{})
		go func() {
			New(nil).Watchdog(context.Background(), func() { t.Error("alive called without a watchdog") })
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: Watchdog did not return", env[0], env[1])
		}
	}
}
