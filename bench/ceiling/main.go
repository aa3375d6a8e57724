// Command ceiling is the benchmark's upper bound: a plain net/http server
// answering "Hello, World!" exactly like examples/hello. No Python, no
// worker hop, so its throughput on the same machine is the most any Go
// front end on net/http could reach for the hello workload.
//
// With -raw it answers without net/http: one goroutine per connection,
// one read per request (a GET without a body, as wrk sends), one write per
// response of the same bytes net/http sends. It is not an HTTP server
// (no parsing beyond finding the end of the head, no limits): it is the
// floor of what Go and the kernel cost per request, which is what an
// HTTP/1.1 path of corral's own could approach at most.
//
// Usage: ceiling [-raw] -port 8080   (listens on 127.0.0.1 only)
package main

import (
	"bufio"
	"bytes"
	"flag"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

var body = []byte("Hello, World!")

func main() {
	port := flag.Int("port", 8080, "TCP port to listen on (127.0.0.1)")
	raw := flag.Bool("raw", false, "answer without net/http")
	flag.Parse()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	if *raw {
		log.Fatal(serveRaw(addr))
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	log.Fatal(http.ListenAndServe(addr, nil))
}

// date is the Date header's value, refreshed every second as net/http's
// is per response.
var date atomic.Value

func serveRaw(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	date.Store(time.Now().UTC().Format(http.TimeFormat))
	go func() {
		for range time.Tick(time.Second) {
			date.Store(time.Now().UTC().Format(http.TimeFormat))
		}
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go rawConn(c)
	}
}

func rawConn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	out := make([]byte, 0, 256)
	var head []byte
	for {
		// Read up to the end of one head (wrk's GETs have no body).
		head = head[:0]
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			head = append(head, line...)
			if len(line) <= 2 {
				break
			}
		}
		if !bytes.HasPrefix(head, []byte("GET ")) {
			return
		}
		out = append(out[:0], "HTTP/1.1 200 OK\r\nContent-Length: "...)
		out = strconv.AppendInt(out, int64(len(body)), 10)
		out = append(out, "\r\nContent-Type: text/plain\r\nDate: "...)
		out = append(out, date.Load().(string)...)
		out = append(out, "\r\n\r\n"...)
		out = append(out, body...)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
