package main

import (
	"reflect"
	"testing"
)

func TestCutFlag(t *testing.T) {
	tests := []struct {
		in    []string
		want  []string
		found bool
	}{
		{[]string{"--json", "app:app"}, []string{"app:app"}, true},
		{[]string{"-w", "2", "app:app", "--json"}, []string{"-w", "2", "app:app"}, true},
		{[]string{"app:app"}, []string{"app:app"}, false},
		{[]string{"--", "--json"}, []string{"--", "--json"}, false},
	}
	for _, tt := range tests {
		got, found := cutFlag(tt.in, "--json")
		if !reflect.DeepEqual(got, tt.want) || found != tt.found {
			t.Errorf("cutFlag(%q) = %q, %v; want %q, %v", tt.in, got, found, tt.want, tt.found)
		}
	}
}
