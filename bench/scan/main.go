// Command scan is a word-list scanner for bench/guard: it requests
// /WORD for every word of a list, over and over, from a chosen source
// address, with several connections at once and no pause, until the
// duration ends. It prints what it got: answers by status, and
// connections the server closed or refused.
//
//	scan -url http://127.0.0.1:8000 -from 127.0.0.2 -list common.txt -c 4 -d 10s
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8000", "server URL")
	from := flag.String("from", "127.0.0.2", "source address")
	list := flag.String("list", "/usr/share/dirb/wordlists/common.txt", "word list")
	conns := flag.Int("c", 4, "concurrent connections")
	dur := flag.Duration("d", 10*time.Second, "duration")
	flag.Parse()

	words, err := readWords(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scan:", err)
		os.Exit(1)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(*from)}, Timeout: 5 * time.Second}
	client := &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: *conns},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var next atomic.Int64
	var mu sync.Mutex
	statuses := map[int]int{}
	var failed int
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				w := words[int(next.Add(1))%len(words)]
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *base+"/"+url.PathEscape(w), nil)
				resp, err := client.Do(req)
				mu.Lock()
				if err != nil {
					if ctx.Err() == nil {
						failed++
					}
				} else {
					statuses[resp.StatusCode]++
				}
				mu.Unlock()
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	codes := make([]int, 0, len(statuses))
	for c := range statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	total := failed
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d: %d", c, statuses[c]))
		total += statuses[c]
	}
	parts = append(parts, fmt.Sprintf("closed/refused: %d", failed))
	fmt.Printf("scan: %d requests in %s (%.0f/s); %s\n", total, *dur, float64(total)/dur.Seconds(), strings.Join(parts, ", "))
}

func readWords(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var words []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" {
			words = append(words, w)
		}
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%s: no words", path)
	}
	return words, sc.Err()
}
