package integration

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHAProxy runs the real haproxy with examples/haproxy/unix.cfg in front
// of corral on a Unix socket with --proxy-protocol: clients connecting to
// haproxy from several 127.0.0.x addresses are the app's REMOTE_ADDR.
func TestHAProxy(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		missingTool(t, "haproxy is not installed (scripts/test installs it)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "corral.sock")
	launch(t, corralCmd("-w", "2", "-b", "unix:"+sock, "--proxy-protocol"), 1, nil)

	// The example as it is, but for the paths and port of this test; the
	// test's directories are root's, so haproxy keeps the test's user.
	src, err := os.ReadFile(filepath.Join(repoRoot, "examples", "haproxy", "unix.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfg := string(src)
	for old, new := range map[string]string{
		"bind :80":                    "bind 127.0.0.1:" + strconv.Itoa(port),
		"unix@/run/myapp/corral.sock": "unix@" + sock,
		"    log /dev/log local0\n":   "",
		"    user haproxy\n":          "",
		"    group haproxy\n":         "",
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("examples/haproxy/unix.cfg no longer has %q: update this test", old)
		}
		cfg = strings.Replace(cfg, old, new, 1)
	}
	cfgFile := filepath.Join(dir, "haproxy.cfg")
	writeFile(t, cfgFile, cfg)

	hp := exec.Command(haproxy, "-db", "-f", cfgFile)
	var out syncBuffer
	hp.Stdout, hp.Stderr = &out, &out
	hp.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { hp.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = hp.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-hp.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	eventually(t, 10*time.Second, "haproxy listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	for _, from := range []string{"127.0.0.5", "127.0.0.9", "127.0.0.1"} {
		var local string
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
				c, err := d.DialContext(ctx, network, a)
				if err == nil {
					local = c.LocalAddr().String()
				}
				return c, err
			},
		}}
		env := environOf(t, fetch(t, client, "http://"+addr+"/env"))
		_, lport, _ := net.SplitHostPort(local)
		if env["REMOTE_ADDR"] != from || env["REMOTE_PORT"] != lport {
			t.Errorf("client %s: REMOTE_ADDR %v REMOTE_PORT %v, want %s %s", local, env["REMOTE_ADDR"], env["REMOTE_PORT"], from, lport)
		}
		if env["SERVER_PORT"] != strconv.Itoa(port) {
			t.Errorf("client %s: SERVER_PORT %v, want haproxy's %d", local, env["SERVER_PORT"], port)
		}
	}
}
