package front

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHandshakeOverHTTP2 shows which HTTP/2 requests are WebSocket
// handshakes (RFC 8441) and what checkHandshake answers them.
func TestHandshakeOverHTTP2(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   string
		protocol string
		version  string
		wants    bool
		code     int
	}{
		{"a WebSocket", http.MethodConnect, "websocket", "13", true, 0},
		{"another protocol", http.MethodConnect, "webtransport", "13", true, http.StatusNotImplemented},
		{"an old version", http.MethodConnect, "websocket", "8", true, http.StatusUpgradeRequired},
		{"no :protocol", http.MethodConnect, "", "13", false, 0},
		{"a GET", http.MethodGet, "", "13", false, 0},
	} {
		r := httptest.NewRequest(tc.method, "/ws", nil)
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
		if tc.protocol != "" {
			r.Header[":protocol"] = []string{tc.protocol}
		}
		r.Header.Set("Sec-WebSocket-Version", tc.version)
		if got := wantsWebSocket(r); got != tc.wants {
			t.Errorf("%s: wantsWebSocket %v, want %v", tc.name, got, tc.wants)
		}
		if !tc.wants {
			continue
		}
		w := &recorder{Recorder: Recorder{ResponseWriter: httptest.NewRecorder()}}
		if code, msg := checkHandshake(w, r); code != tc.code {
			t.Errorf("%s: checkHandshake %d %q, want %d", tc.name, code, msg, tc.code)
		}
	}
	// Over HTTP/1.1 an Upgrade header is what counts.
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	r.Header.Set("Upgrade", "websocket")
	if !wantsWebSocket(r) {
		t.Error("HTTP/1.1 with Upgrade: websocket is not a handshake")
	}
}
