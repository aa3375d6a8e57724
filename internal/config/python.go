package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoPython is wrapped in ResolvePython's error when no interpreter was
// found.
var ErrNoPython = errors.New("no Python interpreter found")

// ResolvePython returns the Python interpreter the workers run, trying in
// order:
//
//  1. --python, if given: a name without a slash is looked up with
//     lookPath; a path is taken relative to the working directory given to
//     Load (not --chdir) and must be an executable file. Nothing else is
//     tried.
//  2. The virtual environment corral itself runs from: when the corral
//     executable (os.Executable, symbolic links resolved) is in a directory
//     BIN whose parent holds pyvenv.cfg, BIN/python. That is where
//     `pip install corral-server` puts corral, so `.venv/bin/corral` runs
//     the app with that environment's Python even when nothing activated it
//     (a systemd unit, a crontab, a container's CMD).
//  3. $VIRTUAL_ENV/bin/python, if VIRTUAL_ENV is set in the environ given
//     to Load and that file is executable.
//  4. .venv/bin/python in the app directory: --chdir if given (relative to
//     the working directory), else the working directory. The app directory
//     is where the project, and so its .venv, lives.
//  5. python3, looked up with lookPath.
//
// lookPath is normally exec.LookPath. A path found in steps 1 to 4 is
// returned absolute. The error names everything that was tried.
func (c *Config) ResolvePython(lookPath func(string) (string, error)) (string, error) {
	return c.resolvePython(os.Executable, lookPath)
}

// resolvePython is ResolvePython with the function that says where the
// running executable is (os.Executable) as a parameter, for tests.
func (c *Config) resolvePython(executablePath func() (string, error), lookPath func(string) (string, error)) (string, error) {
	if c.Python != "" {
		if !strings.Contains(c.Python, "/") {
			p, err := lookPath(c.Python)
			if err != nil {
				return "", fmt.Errorf("--python %s: %w", c.Python, err)
			}
			return p, nil
		}
		p := c.abs(c.Python)
		if err := executable(p); err != nil {
			return "", fmt.Errorf("--python %s: %s: %w", c.Python, p, err)
		}
		return p, nil
	}

	var tried []string
	if venv, p := ownVirtualEnv(executablePath); venv != "" {
		if err := executable(p); err == nil {
			return p, nil
		} else {
			tried = append(tried, fmt.Sprintf("the virtual environment corral runs from, %s (%v)", p, err))
		}
	}
	if c.virtualEnv != "" {
		p := c.abs(filepath.Join(c.virtualEnv, "bin", "python"))
		if err := executable(p); err == nil {
			return p, nil
		} else {
			tried = append(tried, fmt.Sprintf("$VIRTUAL_ENV/bin/python %s (%v)", p, err))
		}
	}
	p := c.abs(filepath.Join(c.Chdir, ".venv", "bin", "python"))
	if err := executable(p); err == nil {
		return p, nil
	} else {
		tried = append(tried, fmt.Sprintf("%s (%v)", p, err))
	}
	p, err := lookPath("python3")
	if err == nil {
		return p, nil
	}
	tried = append(tried, fmt.Sprintf("python3 on PATH (%v)", err))
	return "", fmt.Errorf("%w: tried %s; use --python", ErrNoPython, strings.Join(tried, ", "))
}

// ownVirtualEnv returns the virtual environment the running executable is
// installed in, and the Python that environment's bin/ holds, or "" when
// the executable is not in one: its directory's parent must hold
// pyvenv.cfg, the file every virtual environment (venv, virtualenv, uv)
// has at its root. The interpreter path is not resolved: a venv's python
// is a link to the base interpreter, and only the link's path makes Python
// use the environment.
func ownVirtualEnv(executablePath func() (string, error)) (venv, python string) {
	exe, err := executablePath()
	if err != nil || exe == "" {
		return "", ""
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	bin := filepath.Dir(exe)
	venv = filepath.Dir(bin)
	if fi, err := os.Stat(filepath.Join(venv, "pyvenv.cfg")); err != nil || !fi.Mode().IsRegular() {
		return "", ""
	}
	return venv, filepath.Join(bin, "python")
}

// abs resolves p against the working directory given to Load.
func (c *Config) abs(p string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(c.cwd, p)
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// errNotExecutable says a file exists but cannot be run.
var errNotExecutable = errors.New("not an executable file")

// executable reports why p is not an executable regular file, or nil.
// The error does not repeat p.
func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return errNotExecutable
	}
	return nil
}
