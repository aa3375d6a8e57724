package integration

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWheel is the pip user's path: scripts/wheel builds this machine's
// wheels; a fresh virtual environment gets the wheel and Flask; the
// corral in its bin/, run with no go on PATH, no --python, no
// VIRTUAL_ENV and no .venv in reach, serves the Flask example with that
// environment's Python; `python -m corral` works; the app's `import
// corral` is the runtime corral sends at boot, and outside a worker the
// copy pip installed. It also checks the wheels' tags and that the binary
// inside is static.
func TestWheel(t *testing.T) {
	t.Parallel() // long and mostly waiting: overlaps the other parallel tests (harness_test.go)
	if testing.Short() {
		t.Skip("builds a wheel and installs Flask into a new virtual environment")
	}
	var wantArch, machine string
	var wantMachine elf.Machine
	switch runtime.GOARCH {
	case "amd64":
		wantArch, machine, wantMachine = "amd64", "x86_64", elf.EM_X86_64
	case "arm64":
		wantArch, machine, wantMachine = "arm64", "aarch64", elf.EM_AARCH64
	default:
		t.Skipf("no wheel for %s", runtime.GOARCH)
	}
	tmp := t.TempDir()
	dist := filepath.Join(tmp, "dist")

	// 1. Build the wheels.
	build := exec.Command(filepath.Join(repoRoot, "scripts", "wheel"), "--arch", "host", "--out", dist)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/wheel: %v\n%s", err, out)
	}
	version := runtimeVersion(t)
	wheels := map[string]string{} // platform tag -> path
	for _, platform := range []string{
		"manylinux_2_17_" + machine + ".manylinux2014_" + machine,
		"musllinux_1_1_" + machine,
	} {
		wheels[platform] = filepath.Join(dist, fmt.Sprintf("corral_server-%s-py3-none-%s.whl", version, platform))
	}
	built, _ := filepath.Glob(filepath.Join(dist, "*.whl"))
	if len(built) != len(wheels) {
		t.Fatalf("scripts/wheel --arch host built %v, want the %d wheels for %s", built, len(wheels), wantArch)
	}

	// 7. The wheels' tags and contents, and the binary inside.
	for platform, path := range wheels {
		checkWheel(t, path, version, platform, wantMachine)
	}

	// 2, 3. A fresh virtual environment with the wheel and Flask.
	venv := filepath.Join(tmp, "venv")
	run(t, tmp, nil, pythonBin, "-m", "venv", venv)
	venvPython := filepath.Join(venv, "bin", "python")
	run(t, tmp, nil, venvPython, "-m", "pip", "install", "-q", "--disable-pip-version-check",
		wheels["manylinux_2_17_"+machine+".manylinux2014_"+machine],
		"-r", filepath.Join(repoRoot, "examples", "flaskapp", "requirements.txt"))
	corral := filepath.Join(venv, "bin", "corral")

	// 4. As the venv's corral runs from a systemd unit: nothing activated,
	// no go (nor anything else Go's) on PATH, no --python, and a working
	// directory without .venv.
	env := pipUserEnv(t)
	work := filepath.Join(tmp, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}

	// 6. The command line, --version, and python -m corral.
	wantVersion := "corral " + version + " ("
	if out := run(t, work, env, corral, "--version"); !strings.HasPrefix(out, wantVersion) {
		t.Errorf("corral --version = %q, want %q...", out, wantVersion)
	}
	if out := run(t, work, env, venvPython, "-m", "corral", "--version"); !strings.HasPrefix(out, wantVersion) {
		t.Errorf("python -m corral --version = %q, want %q...", out, wantVersion)
	}

	// 5. Serve the Flask example and answer a request.
	s := startInstalled(t, corral, work, env, "-w", "1", "--chdir", filepath.Join(repoRoot, "examples", "flaskapp"), "app:app")
	if code, body := s.get("/"); code != 200 || strings.TrimSpace(body) != `{"status": "ok"}` {
		t.Errorf("GET / = %d %q, want 200 {\"status\": \"ok\"}", code, body)
	}
	if want := "python=" + venvPython; !strings.Contains(s.log.String(), want) {
		t.Errorf("corral's log does not say %s:\n%s", want, s.log)
	}
	s.stop()

	// The app's `import corral` in a worker: the runtime the binary sent
	// (served from memory, file name <corral>/...), with the worker's id,
	// in the venv's interpreter.
	s = startInstalled(t, corral, work, env, "-w", "1", "--chdir", testdata(""), "importprobe:app")
	code, body := s.get("/")
	var probe struct {
		Prefix     string `json:"prefix"`
		CorralFile string `json:"corral_file"`
		WorkerID   *int   `json:"worker_id"`
		Version    string `json:"version"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &probe) != nil {
		t.Fatalf("GET / of importprobe = %d %q", code, body)
	}
	if !samePath(probe.Prefix, venv) {
		t.Errorf("the worker's sys.prefix is %s, want the venv %s", probe.Prefix, venv)
	}
	if !strings.HasPrefix(probe.CorralFile, "<corral>/") || probe.WorkerID == nil || *probe.WorkerID != 1 || probe.Version != version {
		t.Errorf("in a worker, import corral gave %+v (worker id %v), want the embedded runtime <corral>/corral/__init__.py, worker 1, version %s",
			probe, probe.WorkerID, version)
	}
	s.stop()

	// Outside a worker, `import corral` is the package pip installed, and
	// says no worker is running.
	out := run(t, work, env, venvPython, "-c",
		`import corral, json; print(json.dumps([corral.__file__, corral.__version__, corral.ban("192.0.2.1", 60), corral.worker_id()]))`)
	var outside []any
	if err := json.Unmarshal([]byte(out), &outside); err != nil || len(outside) != 4 {
		t.Fatalf("import corral outside a worker printed %q", out)
	}
	if f, _ := outside[0].(string); !strings.HasPrefix(f, filepath.Join(venv, "lib")) || !strings.HasSuffix(f, filepath.Join("site-packages", "corral", "__init__.py")) {
		t.Errorf("outside a worker corral.__file__ = %v, want the venv's site-packages", outside[0])
	}
	if outside[1] != version || outside[2] != false || outside[3] != nil {
		t.Errorf("outside a worker: version, ban(), worker_id() = %v, want %s, false, null", outside[1:], version)
	}
}

// runtimeVersion reads __version__ from python/corral/__init__.py.
func runtimeVersion(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "python", "corral", "__init__.py"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^__version__\s*=\s*["']([^"']+)["']`).FindSubmatch(src)
	if m == nil {
		t.Fatal("no __version__ in python/corral/__init__.py")
	}
	return string(m[1])
}

// checkWheel checks a wheel's name, tags and contents: the runtime
// package as the binary embeds it plus __main__.py, and a static Linux
// binary for the tag's architecture, installed as the script `corral`.
func checkWheel(t *testing.T, path, version, platform string, machine elf.Machine) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	defer zr.Close()
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	read := func(name string) []byte {
		f := files[name]
		if f == nil {
			t.Fatalf("%s has no %s", filepath.Base(path), name)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	name := filepath.Base(path)
	distInfo := "corral_server-" + version + ".dist-info/"

	// WHEEL: one Tag line per tag of the file name, and not pure Python.
	wheelFile := string(read(distInfo + "WHEEL"))
	var tags []string
	for _, line := range strings.Split(wheelFile, "\n") {
		if tag, ok := strings.CutPrefix(line, "Tag: "); ok {
			tags = append(tags, strings.TrimSpace(tag))
		}
	}
	var want []string
	for _, p := range strings.Split(platform, ".") {
		want = append(want, "py3-none-"+p)
	}
	sort.Strings(tags)
	sort.Strings(want)
	if strings.Join(tags, " ") != strings.Join(want, " ") {
		t.Errorf("%s: WHEEL tags %v, want %v", name, tags, want)
	}
	if !strings.Contains(wheelFile, "Root-Is-Purelib: false") {
		t.Errorf("%s: WHEEL says pure Python:\n%s", name, wheelFile)
	}
	meta := string(read(distInfo + "METADATA"))
	for _, w := range []string{"Name: corral-server\n", "Version: " + version + "\n", "Requires-Python: >=3.9", "License-Expression: ", "Classifier: Topic :: Internet :: WWW/HTTP :: WSGI :: Server", "Description-Content-Type: text/markdown"} {
		if !strings.Contains(meta, w) {
			t.Errorf("%s: METADATA lacks %q", name, w)
		}
	}

	// The runtime package, byte for byte the files the binary embeds.
	runtimeDir := filepath.Join(repoRoot, "python", "corral")
	pys, _ := filepath.Glob(filepath.Join(runtimeDir, "*.py"))
	if len(pys) == 0 {
		t.Fatal("no python/corral/*.py")
	}
	for _, p := range pys {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := read("corral/" + filepath.Base(p)); !bytes.Equal(got, src) {
			t.Errorf("%s: corral/%s differs from python/corral/%s", name, filepath.Base(p), filepath.Base(p))
		}
	}
	read("corral/__main__.py")

	// The binary: an executable script, static, for the tag's machine.
	binName := "corral_server-" + version + ".data/scripts/corral"
	bin := read(binName)
	if mode := files[binName].Mode(); mode&0o111 == 0 {
		t.Errorf("%s: %s is not executable (%v)", name, binName, mode)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("%s: %s is not an ELF file: %v", name, binName, err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != machine || f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		t.Errorf("%s: binary is %v %v %v, want ELFCLASS64 %v for Linux", name, f.Class, f.Machine, f.OSABI, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: binary has a %v segment: it is not static", name, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s: binary needs %v", name, libs)
	}
}

// pipUserEnv is the environment of someone who installed corral with
// pip: this process's, less VIRTUAL_ENV and PYTHONPATH, with every PATH
// directory that holds go left out.
func pipUserEnv(t *testing.T) []string {
	t.Helper()
	var path []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, "go")); err == nil && !fi.IsDir() {
			continue
		}
		path = append(path, dir)
	}
	pathVar := strings.Join(path, string(os.PathListSeparator))
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "GOROOT":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "PATH="+pathVar)
	// The check that go really is out of reach.
	for _, dir := range path {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			t.Fatalf("go still on PATH in %s", dir)
		}
	}
	return env
}

// run runs a command to completion in dir (env nil: this process's) and
// returns its standard output; it fails the test if the command fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// startInstalled runs an installed corral (no --python) in dir with env,
// bound to a free 127.0.0.1 port, and waits until it serves. The server
// is stopped, and its workers checked gone, at cleanup or by s.stop.
func startInstalled(t *testing.T, corral, dir string, env []string, args ...string) *server {
	t.Helper()
	port := freePort(t)
	s := &server{t: t, addr: fmt.Sprintf("127.0.0.1:%d", port), log: &syncBuffer{}, done: make(chan struct{})}
	s.url = "http://" + s.addr
	s.cmd = exec.Command(corral, append([]string{"-b", s.addr}, args...)...)
	s.cmd.Dir = dir
	s.cmd.Env = env
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if strings.Contains(s.log.String(), "listening") {
			if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
				c.Close()
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("corral exited during start-up (%v):\n%s", s.err, s.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("corral did not start within 30s:\n%s", s.log)
		}
	}
}

// samePath reports whether a and b name the same directory.
func samePath(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}
