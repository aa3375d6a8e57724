// Command connhold opens many HTTP/1.1 connections to one server and holds
// them open, so bench/run memory can read what they cost the server.
//
//	connhold -addr 127.0.0.1:8000 -c 10000 -mode idle   -path /
//	connhold -addr 127.0.0.1:8000 -c 10000 -mode queued -path /sleep
//
// Modes:
//   - idle: each connection sends one request, reads the whole response,
//     then stays open without sending anything (an idle keep-alive
//     connection, as a browser or a proxy's pool holds them).
//   - queued: each connection sends one request and waits for the answer;
//     pointed at a route slower than the hold, with more connections than
//     the server has workers, every request waits in the server's queue.
//
// Connections are opened -dials at a time, from -sources loopback source
// addresses (127.0.2.1, 127.0.2.2, ...) so that 10,000 of them never run
// out of ephemeral ports on one address. Once every connection is open
// (and, idle mode, every first response is in) it prints a "ready" line,
// then holds everything until -hold has passed or it gets SIGTERM or
// SIGINT, and prints a "done" line. Both are space-separated key=value
// pairs for bench/run to parse:
//
//	connhold ready mode=idle connections=10000 open=10000 answered=10000 dial_errors=0 io_errors=0 closed=0 statuses=200:10000 seconds=3.412
//
// open counts connections the server has not closed; answered, responses
// received (queued mode: answers that came back early, 503s included);
// closed, connections the server closed (or reset) after they opened.
// The exit status is 0 whenever the run happened, 2 for bad flags.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "", "server address, HOST:PORT")
	n := flag.Int("c", 2000, "connections to open and hold")
	mode := flag.String("mode", "idle", "idle (one request answered, then held) or queued (one request, never answered in time)")
	path := flag.String("path", "/", "request path")
	sources := flag.Int("sources", 0, "source addresses 127.0.2.1, 127.0.2.2, ... to spread connections over; 0 = one per 4,000 connections")
	dials := flag.Int("dials", 200, "connections being opened at once")
	hold := flag.Duration("hold", 10*time.Minute, "how long to hold the connections once ready (SIGTERM ends it sooner)")
	timeout := flag.Duration("timeout", 30*time.Second, "longest a dial, or (idle mode) a first response, may take")
	flag.Parse()
	if *addr == "" || *n < 1 || *dials < 1 || *sources < 0 || (*mode != "idle" && *mode != "queued") || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: connhold -addr HOST:PORT [-c 2000] [-mode idle|queued] [-path /] [-sources N] [-dials 200] [-hold 10m] [-timeout 30s]")
		os.Exit(2)
	}
	if *sources == 0 {
		*sources = (*n + 3999) / 4000
	}
	if *sources > 254 {
		fmt.Fprintln(os.Stderr, "connhold: at most 254 source addresses")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	h := &holder{addr: *addr, mode: *mode, timeout: *timeout,
		request: []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *addr + "\r\nUser-Agent: connhold\r\n\r\n")}
	start := time.Now()
	h.open(*n, *sources, *dials)
	fmt.Println(h.line("ready", time.Since(start)))
	select {
	case <-ctx.Done():
	case <-time.After(*hold):
	}
	fmt.Println(h.line("done", time.Since(start)))
	h.closeAll()
}

type holder struct {
	addr    string
	mode    string
	timeout time.Duration
	request []byte

	dialErrs, ioErrs, closed, answered atomic.Int64
	mu                                 sync.Mutex
	conns                              []net.Conn
	statuses                           map[int]int
	firstErr                           error
}

// open opens n connections, dials at a time, and returns once each one is
// open and holding (or failed).
func (h *holder) open(n, sources, dials int) {
	h.statuses = map[int]int{}
	sem := make(chan struct{}, dials)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(1+i%sources))}
		wg.Go(func() {
			defer func() { <-sem }()
			h.one(src)
		})
	}
	wg.Wait()
}

// one opens one connection, sends its request and, in idle mode, reads the
// answer; then it leaves a reader behind that notices when the server
// closes the connection (or, queued mode, answers it).
func (h *holder) one(src *net.TCPAddr) {
	d := net.Dialer{LocalAddr: src, Timeout: h.timeout}
	c, err := d.Dial("tcp", h.addr)
	if err != nil {
		h.dialErrs.Add(1)
		h.fail(fmt.Errorf("dial from %s: %w", src.IP, err))
		return
	}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	if _, err := c.Write(h.request); err != nil {
		h.ioErrs.Add(1)
		h.fail(fmt.Errorf("write: %w", err))
		c.Close()
		return
	}
	br := bufio.NewReaderSize(c, 1024)
	if h.mode == "idle" {
		_ = c.SetReadDeadline(time.Now().Add(h.timeout))
		if err := h.response(br); err != nil {
			h.ioErrs.Add(1)
			h.fail(fmt.Errorf("first response: %w", err))
			c.Close()
			return
		}
		_ = c.SetReadDeadline(time.Time{})
	}
	go h.watch(c, br)
}

// response reads one whole response and counts its status.
func (h *holder) response(br *bufio.Reader) error {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	h.answered.Add(1)
	h.mu.Lock()
	h.statuses[resp.StatusCode]++
	h.mu.Unlock()
	return err
}

// watch waits on a held connection: a response (queued mode) is counted,
// and the end of the connection from the server's side is counted as
// closed. Our own closeAll at the end is not.
func (h *holder) watch(c net.Conn, br *bufio.Reader) {
	for {
		if h.mode == "queued" {
			if err := h.response(br); err == nil {
				continue
			}
		} else if _, err := br.ReadByte(); err == nil {
			continue // the server sent something unasked: keep reading
		}
		break
	}
	h.mu.Lock()
	ours := h.conns == nil
	h.mu.Unlock()
	if !ours {
		h.closed.Add(1)
	}
}

func (h *holder) fail(err error) {
	h.mu.Lock()
	if h.firstErr == nil {
		h.firstErr = err
	}
	h.mu.Unlock()
}

func (h *holder) closeAll() {
	h.mu.Lock()
	conns := h.conns
	h.conns = nil
	h.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (h *holder) line(event string, elapsed time.Duration) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	codes := make([]int, 0, len(h.statuses))
	for code := range h.statuses {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	st := make([]string, 0, len(codes))
	for _, code := range codes {
		st = append(st, fmt.Sprintf("%d:%d", code, h.statuses[code]))
	}
	statuses := strings.Join(st, ",")
	if statuses == "" {
		statuses = "-"
	}
	opened := int64(len(h.conns)) - h.ioErrs.Load()
	s := fmt.Sprintf("connhold %s mode=%s connections=%d open=%d answered=%d dial_errors=%d io_errors=%d closed=%d statuses=%s seconds=%.3f",
		event, h.mode, len(h.conns)+int(h.dialErrs.Load()), opened-h.closed.Load(), h.answered.Load(),
		h.dialErrs.Load(), h.ioErrs.Load(), h.closed.Load(), statuses, elapsed.Seconds())
	if h.firstErr != nil {
		s += " first_error=" + fmt.Sprintf("%q", h.firstErr.Error())
	}
	return s
}
