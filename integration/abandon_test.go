package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAbandonedRequestsDoNotLeak: clients that give up on their requests
// while others keep sending must not make any request run twice or any
// answer reach the wrong client. (A request frame reused after its client
// left once reached a worker twice.)
func TestAbandonedRequestsDoNotLeak(t *testing.T) {
	calls := filepath.Join(t.TempDir(), "calls")
	s, _ := startFaults(t, []string{"CALLS_FILE=" + calls}, "-w", "2")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	var wrong []string
	sent := map[string]bool{}
	for g := 0; g < 6; g++ { // clients that keep their requests
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok := fmt.Sprintf("keep-%d-%d", g, i)
				resp, err := client.Get(s.url + "/echo?" + tok)
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				sent[tok] = true
				if !strings.HasPrefix(string(b), tok+" ") {
					wrong = append(wrong, fmt.Sprintf("asked %s, got %q", tok, b))
				}
				mu.Unlock()
			}
		}()
	}
	for g := 0; g < 6; g++ { // clients that give up almost at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(50+i%400)*time.Microsecond)
				req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/echo?drop-%d-%d", s.url, g, i), nil)
				if resp, err := tr.RoundTrip(req); err == nil {
					resp.Body.Close()
				}
				cancel()
			}
		}()
	}
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()
	for _, w := range wrong[:min(len(wrong), 5)] {
		t.Error(w)
	}
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 1 || f[0] != "/echo" {
			continue
		}
		seen[f[len(f)-1]]++
	}
	dups := 0
	for tok, n := range seen {
		if n > 1 {
			dups++
			if dups <= 5 {
				t.Errorf("request %s ran %d times", tok, n)
			}
		}
	}
	if len(sent) == 0 {
		t.Fatal("no request completed")
	}
	if strings.Contains(s.log.String(), "broke the protocol") {
		t.Errorf("a worker broke the protocol:\n%s", s.log)
	}
}
