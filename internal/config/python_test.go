package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeLookPath resolves the names in found and fails for the others.
func fakeLookPath(found map[string]string) func(string) (string, error) {
	return func(name string) (string, error) {
		if p, ok := found[name]; ok {
			return p, nil
		}
		return "", errors.New("exec: " + name + ": not found")
	}
}

// fakePython creates an executable file at dir/rel and returns its path.
func fakePython(t *testing.T, dir, rel string) string {
	t.Helper()
	p := writeFile(t, dir, rel, "#!/bin/sh\n")
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolvePython(t *testing.T) {
	cwd := t.TempDir()
	venv := t.TempDir()
	venvPython := fakePython(t, venv, "bin/python")
	cwdVenv := fakePython(t, cwd, ".venv/bin/python")
	appVenv := fakePython(t, cwd, "app/.venv/bin/python")
	local := fakePython(t, cwd, "tools/python")
	writeFile(t, cwd, "noexec/python", "") // not executable
	lp := fakeLookPath(map[string]string{"python3": "/usr/bin/python3", "python3.12": "/opt/bin/python3.12"})

	tests := []struct {
		name    string
		args    []string
		environ []string
		look    func(string) (string, error)
		want    string
		wantErr []string
	}{
		{name: "explicit name via PATH", args: []string{"--python", "python3.12"}, environ: []string{"VIRTUAL_ENV=" + venv},
			look: lp, want: "/opt/bin/python3.12"},
		{name: "explicit relative path", args: []string{"--python", "tools/python", "--chdir", "app"}, environ: []string{"VIRTUAL_ENV=" + venv},
			look: lp, want: local},
		{name: "explicit absolute path", args: []string{"--python", venvPython}, look: lp, want: venvPython},
		{name: "explicit missing name", args: []string{"--python", "python9"}, look: lp, wantErr: []string{"--python python9", "not found"}},
		{name: "explicit missing path", args: []string{"--python", "./nope"}, look: lp, wantErr: []string{"--python ./nope", "no such file"}},
		{name: "explicit not executable", args: []string{"--python", "noexec/python"}, look: lp, wantErr: []string{"not an executable file"}},
		{name: "VIRTUAL_ENV", environ: []string{"VIRTUAL_ENV=" + venv}, look: lp, want: venvPython},
		{name: "VIRTUAL_ENV missing falls back to .venv", environ: []string{"VIRTUAL_ENV=" + filepath.Join(venv, "gone")}, look: lp, want: cwdVenv},
		{name: ".venv in cwd", look: lp, want: cwdVenv},
		{name: ".venv after chdir", args: []string{"--chdir", "app"}, look: lp, want: appVenv},
		{name: ".venv after absolute chdir", args: []string{"--chdir", filepath.Join(cwd, "app")}, look: lp, want: appVenv},
		{name: "python3 on PATH", args: []string{"--chdir", "tools"}, look: lp, want: "/usr/bin/python3"},
		{name: "nothing", args: []string{"--chdir", "tools"}, environ: []string{"VIRTUAL_ENV=/nowhere"}, look: fakeLookPath(nil),
			wantErr: []string{"no Python interpreter found", "$VIRTUAL_ENV/bin/python", filepath.Join(cwd, "tools/.venv/bin/python"), "python3 on PATH", "--python"}},
	}
	for _, tt := range tests {
		c := mustLoad(t, append(tt.args, "a:b"), tt.environ, cwd)
		got, err := c.ResolvePython(tt.look)
		if tt.wantErr != nil {
			if err == nil {
				t.Errorf("%s: ResolvePython = %q, want an error", tt.name, got)
				continue
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q, want it to contain %q", tt.name, err, w)
				}
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: ResolvePython = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	_, err := (&Config{Chdir: "/nonexistent"}).ResolvePython(fakeLookPath(nil))
	if !errors.Is(err, ErrNoPython) {
		t.Errorf("error %v does not wrap ErrNoPython", err)
	}
}
