//go:build !pprof

package main

// startProfiling does nothing outside profiling builds (see pprof.go).
func startProfiling() {}
