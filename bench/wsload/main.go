// Command wsload is the WebSocket load client of bench/run asgi: N
// connections to one URL, each in a closed loop (send one text message,
// wait for its echo, check it, send the next) for a fixed time.
//
// All connections are opened first; the clock starts once every dial has
// finished, so handshakes are not part of the measured rate. A message
// counts when its echo arrived before the end of the run. At the end it
// prints one line of space-separated key=value pairs, starting with
// "wsload", for bench/run to parse:
//
//	wsload connections=100 connected=100 seconds=10.000 messages=123456 msgs_per_sec=12345.6 p50_ms=0.812 p99_ms=2.310 errors=0 dial_errors=0 io_errors=0 mismatches=0 timeouts=0
//
// errors is the sum of the four kinds after it. An echo that does not
// arrive within -timeout after the end of the run is a timeout. The exit
// status is 0 whenever the run happened, even with errors (bench/run
// reports them); 2 for bad flags.
//
// Usage: wsload -url ws://127.0.0.1:8000/ws -c 100 -d 10s -size 32
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
)

func main() {
	url := flag.String("url", "", "WebSocket URL (ws://HOST:PORT/PATH)")
	conns := flag.Int("c", 100, "connections, each running its own closed loop")
	duration := flag.Duration("d", 10*time.Second, "measured time, after all connections are open")
	size := flag.Int("size", 32, "message size in bytes (ASCII text)")
	timeout := flag.Duration("timeout", 5*time.Second, "how long an echo may take after the end of the run, and a dial at all")
	flag.Parse()
	if *url == "" || *conns < 1 || *size < 1 || *duration <= 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: wsload -url ws://HOST:PORT/PATH [-c 100] [-d 10s] [-size 32] [-timeout 5s]")
		os.Exit(2)
	}
	r := run(*url, *conns, *duration, *size, *timeout)
	fmt.Println(r)
}

// connResult is what one connection did during the run.
type connResult struct {
	connected  bool
	dialErr    bool
	ioErr      bool
	timedOut   bool
	mismatches int
	rtts       []time.Duration // one per echo received in time
	firstErr   error
}

type result struct {
	conns, connected                       int
	seconds                                float64
	messages                               int
	p50, p99                               time.Duration
	dialErrs, ioErrs, mismatches, timeouts int
	firstErr                               error
}

func (r result) String() string {
	rate := 0.0
	if r.seconds > 0 {
		rate = float64(r.messages) / r.seconds
	}
	errs := r.dialErrs + r.ioErrs + r.mismatches + r.timeouts
	s := fmt.Sprintf("wsload connections=%d connected=%d seconds=%.3f messages=%d msgs_per_sec=%.1f p50_ms=%s p99_ms=%s errors=%d dial_errors=%d io_errors=%d mismatches=%d timeouts=%d",
		r.conns, r.connected, r.seconds, r.messages, rate, ms(r.p50, r.messages), ms(r.p99, r.messages),
		errs, r.dialErrs, r.ioErrs, r.mismatches, r.timeouts)
	if r.firstErr != nil {
		// Last, and with spaces replaced, so the line stays key=value.
		s += " first_error=" + fmt.Sprintf("%q", r.firstErr.Error())
	}
	return s
}

func ms(d time.Duration, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond))
}

func run(url string, n int, duration time.Duration, size int, timeout time.Duration) result {
	// A transport of its own: no proxy from the environment, whatever it
	// says, and no connection limit per host (each handshake's connection
	// is taken over by its WebSocket and never returned to the pool).
	client := &http.Client{Transport: &http.Transport{}}
	opts := &websocket.DialOptions{HTTPClient: client, CompressionMode: websocket.CompressionDisabled}

	cs := make([]*websocket.Conn, n)
	res := make([]connResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			c, _, err := websocket.Dial(ctx, url, opts)
			if err != nil {
				res[i].dialErr, res[i].firstErr = true, fmt.Errorf("dial: %w", err)
				return
			}
			c.SetReadLimit(int64(size) + 1024)
			cs[i] = c
			res[i].connected = true
		})
	}
	wg.Wait()

	end := time.Now().Add(duration)
	// Operations still pending at end+timeout are cut off: the context
	// closes their connection.
	ctx, cancel := context.WithDeadline(context.Background(), end.Add(timeout))
	defer cancel()
	for i, c := range cs {
		if c == nil {
			continue
		}
		wg.Go(func() { loop(ctx, c, end, size, i, &res[i]) })
	}
	wg.Wait()

	// The rate is over the whole measured time, even when connections
	// broke before its end: they contributed nothing from then on.
	out := result{conns: n, seconds: duration.Seconds()}
	var all []time.Duration
	for i := range res {
		r := &res[i]
		if r.connected {
			out.connected++
		}
		if r.dialErr {
			out.dialErrs++
		}
		if r.ioErr {
			out.ioErrs++
		}
		if r.timedOut {
			out.timeouts++
		}
		out.mismatches += r.mismatches
		all = append(all, r.rtts...)
		if out.firstErr == nil && r.firstErr != nil {
			out.firstErr = r.firstErr
		}
	}
	out.messages = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		out.p50 = all[(len(all)-1)*50/100]
		out.p99 = all[(len(all)-1)*99/100]
	}
	return out
}

// loop runs one connection's closed loop until end, then closes it.
func loop(ctx context.Context, c *websocket.Conn, end time.Time, size, id int, r *connResult) {
	msg := make([]byte, size)
	for j := range msg {
		msg[j] = 'a' + byte((id+j)%26)
	}
	buf := make([]byte, size+1024)
	r.rtts = make([]time.Duration, 0, 4096)
	for {
		t0 := time.Now()
		if !t0.Before(end) {
			break
		}
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			r.fail(ctx, err)
			return
		}
		typ, rd, err := c.Reader(ctx)
		if err != nil {
			r.fail(ctx, err)
			return
		}
		got, err := readAll(rd, buf)
		if err != nil {
			r.fail(ctx, err)
			return
		}
		t1 := time.Now()
		if typ != websocket.MessageText || !bytes.Equal(got, msg) {
			r.mismatches++
			if r.firstErr == nil {
				r.firstErr = fmt.Errorf("echo differs: sent %d bytes of text, got %d bytes (%v)", len(msg), len(got), typ)
			}
		}
		if t1.After(end) {
			break // answered, but after the end of the run: not counted
		}
		r.rtts = append(r.rtts, t1.Sub(t0))
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
}

// readAll reads one whole message into buf.
func readAll(rd io.Reader, buf []byte) ([]byte, error) {
	n := 0
	for {
		if n == len(buf) {
			return nil, errors.New("echo longer than the message sent")
		}
		m, err := rd.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			return buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (r *connResult) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		r.timedOut = true
		err = fmt.Errorf("no echo within the timeout after the end of the run: %w", err)
	} else {
		r.ioErr = true
	}
	if r.firstErr == nil {
		r.firstErr = err
	}
}
