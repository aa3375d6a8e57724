// Command ceiling is the benchmark's upper bound: a plain net/http server
// answering "Hello, World!" exactly like examples/hello. No Python, no
// worker hop, so its throughput on the same machine is the most any Go
// front end could reach for the hello workload.
//
// Usage: ceiling -port 8080   (listens on 127.0.0.1 only)
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"strconv"
)

var body = []byte("Hello, World!")

func main() {
	port := flag.Int("port", 8080, "TCP port to listen on (127.0.0.1)")
	flag.Parse()

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	log.Fatal(http.ListenAndServe(addr, nil))
}
