package main

import "corral/python"

// The version is written once, as __version__ in python/corral/__init__.py,
// which the binary embeds; -ldflags "-X main.version=…" still overrides it.
func init() {
	if version == "" {
		version = python.Version()
	}
}
