package main

import (
	"testing"

	"corral/python"
)

func TestVersionIsTheRuntimes(t *testing.T) {
	if version != python.Version() || version == "" || version == "unknown" {
		t.Fatalf("version = %q, python.Version() = %q", version, python.Version())
	}
}
