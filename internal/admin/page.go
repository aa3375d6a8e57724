package admin

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strings"

	"corral/internal/guard"
)

// The status page is one HTML document with its style and script inline,
// so it needs nothing but the admin listener (no CDN, works offline). Its
// Content-Security-Policy allows exactly that style and that script, by
// their hashes, and fetches from the page's own origin: nothing else may
// run or load, whatever a request path shown on it contains (the script
// writes text, never markup).
var (
	//go:embed page/page.html
	pageHTML string
	//go:embed page/page.css
	pageCSS string
	//go:embed page/page.js
	pageJS string
)

// page is the assembled document and its policy.
var page = func() struct {
	body []byte
	csp  string
} {
	body := strings.Replace(strings.Replace(pageHTML, "{{CSS}}", pageCSS, 1), "{{JS}}", pageJS, 1)
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	csp := "default-src 'none'; script-src " + hash(pageJS) + "; style-src " + hash(pageCSS) +
		"; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return struct {
		body []byte
		csp  string
	}{[]byte(body), csp}
}()

// PageCSP is the Content-Security-Policy the status page is served with.
func PageCSP() string { return page.csp }

// Page serves the live status page (GET /). It polls ./live every second.
func Page() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", page.csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		_, _ = w.Write(page.body)
	})
}

// liveBans bounds the bans /live sends, the newest: the ban table may
// hold a million, and the page polls every second.
const liveBans = 100

// LiveDoc is the document at /live that the status page draws: the
// status of /status, the newest bans of /bans and the metrics' live view.
type LiveDoc struct {
	Status Status          `json:"status"`
	Bans   []guard.BanInfo `json:"bans"`       // the newest liveBans
	NBans  int             `json:"bans_total"` // all of them
	Live   any             `json:"live"`
}

// Live serves /live from src, bans (nil: none) and live (the metrics'
// Live; nil: empty).
func Live(src Source, bans Bans, live func() any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc := LiveDoc{Status: src.Status(), Bans: []guard.BanInfo{}}
		if bans != nil {
			if b := bans.List(); b != nil {
				doc.NBans = len(b)
				doc.Bans = b[max(0, len(b)-liveBans):]
			}
		}
		if live != nil {
			doc.Live = live()
		}
		writeJSON(w, http.StatusOK, doc)
	})
}
