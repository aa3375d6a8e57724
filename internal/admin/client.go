package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"corral/internal/guard"
)

// Client talks to the admin API of one running corral.
type Client struct {
	// Addr is the server's admin address, as Open takes it (not "").
	Addr string
	// Token, if not "", is sent as "Authorization: Bearer TOKEN": the
	// server's --admin-token, needed on TCP from another host.
	Token string
}

// Status fetches /status. It returns the document and the body as the
// server sent it.
func (c Client) Status(ctx context.Context) (*Status, []byte, error) {
	st, body, err := send(ctx, c.Addr, c.Token, http.MethodGet, "/status", nil)
	if err != nil {
		return nil, nil, err
	}
	if st != http.StatusOK {
		return nil, body, fmt.Errorf("admin API at %s answered %d", c.Addr, st)
	}
	var doc Status
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, body, fmt.Errorf("%s: %w", c.Addr, err)
	}
	return &doc, body, nil
}

// Bans fetches the bans in force, and the body as the server sent it.
func (c Client) Bans(ctx context.Context) ([]guard.BanInfo, []byte, error) {
	body, err := c.do(ctx, http.MethodGet, "/bans", nil)
	if err != nil {
		return nil, body, err
	}
	var doc struct {
		Bans []guard.BanInfo `json:"bans"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, body, fmt.Errorf("%s: %w", c.Addr, err)
	}
	return doc.Bans, body, nil
}

// Ban bans a client and returns the server's answer.
func (c Client) Ban(ctx context.Context, req BanRequest) ([]byte, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode the ban: %w", err)
	}
	return c.do(ctx, http.MethodPost, "/bans", b)
}

// Unban lifts the ban of addr and returns the server's answer; an error
// if there was none.
func (c Client) Unban(ctx context.Context, addr string) ([]byte, error) {
	return c.do(ctx, http.MethodDelete, "/bans?addr="+url.QueryEscape(addr), nil)
}

// do sends a request; an answer other than 200 is an error carrying the
// server's message.
func (c Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	st, resp, err := send(ctx, c.Addr, c.Token, method, path, body)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(resp, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("answered %d", st)
		}
		return resp, fmt.Errorf("%s: %s", c.Addr, e.Error)
	}
	return resp, nil
}

// Get fetches path from the admin API at addr and returns the status code
// and body.
func Get(ctx context.Context, addr, path string) (int, []byte, error) {
	return Do(ctx, addr, http.MethodGet, path, nil)
}

// Do sends a request to the admin API at addr, with body as JSON if not
// nil, and returns the status code and body.
func Do(ctx context.Context, addr, method, path string, body []byte) (int, []byte, error) {
	return send(ctx, addr, "", method, path, body)
}

// send is Do with a bearer token ("" = none).
func send(ctx context.Context, addr, token, method, path string, body []byte) (int, []byte, error) {
	network, address := split(addr)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}}
	defer tr.CloseIdleConnections()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://corral"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("admin API at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b, err
}

// Sockets lists the admin sockets in dir that answer, removing those left
// behind by processes that are gone.
func Sockets(dir string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	var live []string
	for _, m := range matches {
		c, err := net.DialTimeout("unix", m, time.Second)
		if err != nil {
			if pid, perr := strconv.Atoi(strings.TrimSuffix(filepath.Base(m), ".sock")); perr == nil && !processExists(pid) {
				os.Remove(m)
			}
			continue
		}
		c.Close()
		live = append(live, m)
	}
	return live
}

func processExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}
