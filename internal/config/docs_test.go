package config

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the option tables in docs/configuration.md")

const (
	docPath  = "../../docs/configuration.md"
	docBegin = "<!-- options:begin (generated from internal/config/options.go by: go test ./internal/config -run TestDocs -update) -->\n"
	docEnd   = "<!-- options:end -->\n"
)

// TestDocs checks that docs/configuration.md holds the option tables as
// generated from the option table; -update rewrites them.
func TestDocs(t *testing.T) {
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	before, rest, ok1 := strings.Cut(doc, docBegin)
	current, after, ok2 := strings.Cut(rest, docEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s: missing the markers %q and %q", docPath, docBegin, docEnd)
	}
	want := reference(options) + "\n"
	if current == want {
		return
	}
	if *update {
		if err := os.WriteFile(docPath, []byte(before+docBegin+want+docEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: option tables are out of date; run go test ./internal/config -run TestDocs -update", docPath)
}

// TestDocsMentionEveryOption checks the whole page, tables included, for
// every flag, env var and config key.
func TestDocsMentionEveryOption(t *testing.T) {
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for i := range options {
		o := &options[i]
		want := []string{o.envName()}
		if !o.positional {
			want = append(want, "--"+o.name)
		}
		if !o.noFile {
			want = append(want, "`"+strings.ReplaceAll(o.name, "-", "_")+"`")
		}
		for _, w := range want {
			if !strings.Contains(doc, w) {
				t.Errorf("%s does not mention %s", docPath, w)
			}
		}
	}
}

// TestDocExamples loads the example corral.toml and pyproject.toml of
// docs/configuration.md.
func TestDocExamples(t *testing.T) {
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, part := range strings.Split(string(data), "```toml\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		blocks = append(blocks, block)
	}
	names := []string{"corral.toml", "pyproject.toml"}
	if len(blocks) != len(names) {
		t.Fatalf("%s has %d toml examples, want %d", docPath, len(blocks), len(names))
	}
	for i, name := range names {
		dir := t.TempDir()
		writeFile(t, dir, name, blocks[i])
		c, err := Load(nil, nil, dir)
		if err != nil {
			t.Errorf("example %s: %v", name, err)
			continue
		}
		if c.App == "" || c.Workers < 2 {
			t.Errorf("example %s: loaded %+v", name, c)
		}
	}
}
