package main

import (
	"testing"

	"corral/python"
)

func TestVersionIsTheRuntimes(t *testing.T) {
	if v := corralVersion(); v != python.Version() || v == "" || v == "unknown" {
		t.Fatalf("corralVersion() = %q, python.Version() = %q", v, python.Version())
	}
}
