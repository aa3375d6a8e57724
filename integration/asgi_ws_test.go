package integration

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestASGIWebSocketsPythonClient runs testdata/ws_client.py, checks with
// the Python websockets client (the one most ASGI users' clients and tests
// use) against corral serving the FastAPI app: text, binary, 1 MB and
// fragmented messages, compression, close codes and reasons both ways,
// 1009 for a message over --ws-max-size, 1007 for invalid UTF-8 and 1011
// for a crash. What the app heard when the client closed is in its
// markers.
func TestASGIWebSocketsPythonClient(t *testing.T) {
	if err := exec.Command(pythonBin, "-c", "import websockets").Run(); err != nil {
		missingTool(t, "the Python websockets client is not installed in %s (integration/requirements.txt)", pythonBin)
	}
	const maxSize = 2 << 20
	s, dir := startFastAPI(t, "-w", "2", "--ws-max-size", "2M", "--ws-ping-interval", "200ms")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pythonBin, testdata("ws_client.py"), "ws://"+s.addr, strconv.Itoa(maxSize))
	out, err := cmd.CombinedOutput()
	passed := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case strings.HasPrefix(line, "PASS "):
			passed++
		case strings.HasPrefix(line, "FAIL "):
			t.Error(line)
		}
	}
	if err != nil || passed == 0 {
		t.Errorf("ws_client.py: %v, %d checks passed\n%s", err, passed, out)
	}

	// What the app heard in websocket.disconnect.
	for tag, want := range map[string]string{
		"py-close":        "4242 client done ✓",
		"py-close-normal": "1000 ",
		"py-close-empty":  "1005 ",
		"py-ping":         "1000 ",
		"py-big":          "1009 message over 2097152 bytes",
		"py-bomb":         "1009 message over 2097152 bytes",
		"py-utf8":         "1007 invalid UTF-8",
		"py-utf8-frag":    "1007 invalid UTF-8",
		"py-utf8-deflate": "1007 invalid UTF-8",
	} {
		if got := waitMark(t, dir, "ws-disconnect-"+tag); got != want {
			t.Errorf("socket %s: the app heard %q, want %q", tag, got, want)
		}
	}
}
