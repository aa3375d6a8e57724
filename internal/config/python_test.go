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
		// corral itself is not in a virtual environment here.
		got, err := c.resolvePython(notInVenv, tt.look)
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

// notInVenv is an os.Executable for a corral that is not installed in a
// virtual environment.
func notInVenv() (string, error) { return "/usr/local/bin/corral", nil }

// TestResolvePythonOwnVirtualEnv: a corral installed in a virtual
// environment's bin/ (pip install corral-server) runs the app with that
// environment's Python, before $VIRTUAL_ENV, .venv and python3; --python
// still wins.
func TestResolvePythonOwnVirtualEnv(t *testing.T) {
	cwd := t.TempDir()
	own := t.TempDir()
	writeFile(t, own, "pyvenv.cfg", "home = /usr/bin\n")
	ownPython := fakePython(t, own, "bin/python")
	ownCorral := fakePython(t, own, "bin/corral")
	realOwn, err := filepath.EvalSymlinks(own)
	if err != nil {
		t.Fatal(err)
	}
	linkDir := t.TempDir()
	linked := filepath.Join(linkDir, "corral")
	if err := os.Symlink(ownCorral, linked); err != nil {
		t.Fatal(err)
	}
	// A directory laid out like a venv's bin/ but without pyvenv.cfg above
	// it, as /usr/local/bin is: its python is not corral's to pick.
	plain := t.TempDir()
	fakePython(t, plain, "bin/python")
	plainCorral := fakePython(t, plain, "bin/corral")
	// A virtual environment whose python is gone.
	broken := t.TempDir()
	writeFile(t, broken, "pyvenv.cfg", "home = /usr/bin\n")
	brokenCorral := fakePython(t, broken, "bin/corral")

	other := t.TempDir()
	otherPython := fakePython(t, other, "bin/python")
	cwdVenv := fakePython(t, cwd, ".venv/bin/python")
	lp := fakeLookPath(map[string]string{"python3": "/usr/bin/python3"})
	exe := func(p string) func() (string, error) { return func() (string, error) { return p, nil } }

	tests := []struct {
		name    string
		args    []string
		environ []string
		exe     func() (string, error)
		want    string
		wantErr []string
	}{
		{name: "own venv before VIRTUAL_ENV and .venv", environ: []string{"VIRTUAL_ENV=" + other}, exe: exe(ownCorral), want: ownPython},
		{name: "own venv through a symbolic link", exe: exe(linked), want: filepath.Join(realOwn, "bin", "python")},
		{name: "--python wins", args: []string{"--python", otherPython}, exe: exe(ownCorral), want: otherPython},
		{name: "not a venv: VIRTUAL_ENV", environ: []string{"VIRTUAL_ENV=" + other}, exe: exe(plainCorral), want: otherPython},
		{name: "not a venv: .venv", exe: exe(plainCorral), want: cwdVenv},
		{name: "executable unknown", environ: []string{"VIRTUAL_ENV=" + other}, exe: func() (string, error) { return "", errors.New("no /proc") }, want: otherPython},
		{name: "own venv without python falls back", environ: []string{"VIRTUAL_ENV=" + other}, exe: exe(brokenCorral), want: otherPython},
		{name: "own venv without python, nothing else", args: []string{"--chdir", "nowhere"}, exe: exe(brokenCorral),
			wantErr: []string{"the virtual environment corral runs from, " + filepath.Join(broken, "bin", "python"), "python3 on PATH"}},
	}
	for _, tt := range tests {
		c := mustLoad(t, append(tt.args, "a:b"), tt.environ, cwd)
		look := lp
		if tt.wantErr != nil {
			look = fakeLookPath(nil)
		}
		got, err := c.resolvePython(tt.exe, look)
		if tt.wantErr != nil {
			if err == nil {
				t.Errorf("%s: resolvePython = %q, want an error", tt.name, got)
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
			t.Errorf("%s: resolvePython = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}
