//go:build pprof

// Profiling builds only (go build -tags pprof): serves net/http/pprof on
// CORRAL_PPROF_ADDR (e.g. 127.0.0.1:6060) for tuning the request path. The
// release binary does not contain this file.
package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

// startProfiling serves the profiles when CORRAL_PPROF_ADDR is set; main
// calls it first.
func startProfiling() {
	if addr := os.Getenv("CORRAL_PPROF_ADDR"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
