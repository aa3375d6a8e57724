// Package static serves files from directories under URL prefixes, in
// front of the WSGI application, so a deployment needs no nginx for its
// assets. It answers GET and HEAD only, with ETag and Last-Modified
// validators (304), Cache-Control, byte ranges (206, multi-range as
// net/http does), and precompressed siblings (file.br, file.gz) chosen by
// Accept-Encoding. It never lists a directory and never serves anything
// outside a mount's directory: paths are checked segment by segment and
// every file is opened through os.Root, which refuses escapes through
// "..", absolute names and symlinks.
package static

import (
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"corral/internal/front"
	"corral/internal/urlpath"
)

// Mount is one URL prefix served from one directory.
type Mount struct {
	// Prefix is a URL path without a trailing slash, such as "/static". A
	// request path P belongs to the mount when P == Prefix or P starts
	// with Prefix + "/". Never "/" (that would hide the application).
	Prefix string
	// Dir is the absolute path of the directory served.
	Dir string
}

// CheckMounts checks, when the server starts, that every mount's Dir
// exists and is a directory. The mounts' form (a clean prefix, each once,
// an absolute Dir) is the caller's to ensure: config.Load parses --static
// into that form.
func CheckMounts(ms []Mount) error {
	for _, m := range ms {
		fi, err := os.Stat(m.Dir)
		if err != nil {
			return fmt.Errorf("static %s: directory: %w", m.Prefix, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("static %s: %s is not a directory", m.Prefix, m.Dir)
		}
	}
	return nil
}

// LogFunc records one request in the access log; front.AccessLog.Log fits.
type LogFunc func(r *http.Request, status int, size int64, d time.Duration)

// Config configures a Handler.
type Config struct {
	Mounts []Mount
	// MaxAge is sent as Cache-Control: public, max-age=N (seconds); 0
	// sends no-cache, so clients revalidate every time (cheap: a 304).
	MaxAge time.Duration
	// SendTimeout is the longest a write to a client may stall before the
	// connection is dropped; 0 = no limit. It bounds each pause, not the
	// whole transfer, so large files still reach slow clients.
	SendTimeout time.Duration
	// Next serves every request outside the mounts (the application).
	Next http.Handler
	// Log, if set, is called once per static request.
	Log    LogFunc
	Logger *slog.Logger
}

// Handler serves the mounts and hands every other request to Next.
type Handler struct {
	cfg          Config
	mounts       []Mount // longest prefix first, so nested mounts win
	cacheControl string
	log          *slog.Logger
}

// New returns a Handler. The mounts' directories are opened per request,
// so files and even the directories themselves (a symlink switched by a
// deploy) may change while corral runs.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ms := append([]Mount(nil), cfg.Mounts...)
	sort.SliceStable(ms, func(i, j int) bool { return len(ms[i].Prefix) > len(ms[j].Prefix) })
	cc := "no-cache"
	if s := int64(cfg.MaxAge / time.Second); s > 0 {
		cc = "public, max-age=" + strconv.FormatInt(s, 10)
	}
	return &Handler{cfg: cfg, mounts: ms, cacheControl: cc, log: cfg.Logger.With("component", "static")}
}

// Prefixes lists the mounted URL prefixes, without trailing slashes, in
// the order they were configured. Every path equal to a prefix or below it
// is answered here and never reaches the application.
func (h *Handler) Prefixes() []string {
	out := make([]string, len(h.cfg.Mounts))
	for i, m := range h.cfg.Mounts {
		out[i] = m.Prefix
	}
	return out
}

// Match reports whether the URL path p belongs to a mount.
func (h *Handler) Match(p string) bool {
	_, _, ok := h.match(p)
	return ok
}

func (h *Handler) match(p string) (*Mount, string, bool) {
	for i := range h.mounts {
		m := &h.mounts[i]
		if rest, ok := urlpath.Below(p, m.Prefix); ok {
			return m, rest, true
		}
	}
	return nil, "", false
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m, rest, ok := h.match(r.URL.Path)
	if !ok {
		h.cfg.Next.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	rw := &response{Recorder: front.Recorder{ResponseWriter: w}, sendTimeout: h.cfg.SendTimeout}
	rw.Hook = rw
	h.serve(rw, r, m, rest)
	if h.cfg.Log != nil {
		status := rw.Status()
		if status == 0 {
			status = http.StatusOK
		}
		h.cfg.Log(r, status, rw.Bytes(), time.Since(start))
	}
}

// encodings are the precompressed siblings looked for, in order of
// preference when the client accepts several equally.
var encodings = []struct{ coding, ext string }{
	{"br", ".br"},
	{"gzip", ".gz"},
}

func (h *Handler) serve(w *response, r *http.Request, m *Mount, rest string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		fail(w, http.StatusMethodNotAllowed)
		return
	}
	name, dirRequest, ok := cleanName(rest)
	if !ok {
		fail(w, http.StatusNotFound)
		return
	}
	root, err := os.OpenRoot(m.Dir)
	if err != nil {
		h.log.Debug("cannot open the static directory", "dir", m.Dir, "error", err)
		fail(w, http.StatusNotFound)
		return
	}
	defer root.Close()

	fi, err := root.Stat(name)
	if err != nil {
		// Not there, not readable, or a symlink out of the root: all look
		// the same from outside.
		fail(w, http.StatusNotFound)
		return
	}
	if fi.IsDir() {
		index := path.Join(name, "index.html")
		ifi, err := root.Stat(index)
		if err != nil || !ifi.Mode().IsRegular() {
			fail(w, http.StatusNotFound)
			return
		}
		if !dirRequest {
			// Relative links in index.html resolve against the directory
			// only when the URL ends with a slash.
			loc := r.URL.EscapedPath() + "/"
			if r.URL.RawQuery != "" {
				loc += "?" + r.URL.RawQuery
			}
			w.Header().Set("Location", loc)
			fail(w, http.StatusMovedPermanently)
			return
		}
		name, fi = index, ifi
	} else if dirRequest || !fi.Mode().IsRegular() {
		fail(w, http.StatusNotFound)
		return
	}

	served, coding, vary := name, "", false
	var available []string
	for _, e := range encodings {
		vfi, err := root.Stat(name + e.ext)
		// A sibling older than the file is left over from a previous
		// version: serving it would send stale content.
		if err == nil && vfi.Mode().IsRegular() && !vfi.ModTime().Before(fi.ModTime()) {
			available = append(available, e.coding)
		}
	}
	if len(available) > 0 {
		vary = true
		if c := negotiate(r.Header.Values("Accept-Encoding"), available); c != "" {
			coding = c
			for _, e := range encodings {
				if e.coding == c {
					served = name + e.ext
				}
			}
		}
	}

	f, err := root.Open(served)
	if err != nil {
		fail(w, http.StatusNotFound)
		return
	}
	defer f.Close()
	sfi, err := f.Stat()
	if err != nil || !sfi.Mode().IsRegular() {
		fail(w, http.StatusNotFound)
		return
	}

	hdr := w.Header()
	if vary {
		hdr.Add("Vary", "Accept-Encoding")
	}
	if ct := contentType(name); ct != "" {
		hdr.Set("Content-Type", ct)
	} else if coding != "" {
		// Sniffing would look at compressed bytes.
		hdr.Set("Content-Type", "application/octet-stream")
	}
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", h.cacheControl)
	hdr.Set("Etag", etag(sfi, coding))
	// Content-Encoding is added by response.BeforeHeader for 200 and 206
	// only: ServeContent would otherwise omit Content-Length, and its error
	// answers (416) are not encoded.
	w.coding = coding
	http.ServeContent(w, r, name, sfi.ModTime(), f)
}

// cleanName turns the part of the URL path after the prefix into a name
// inside the root. It refuses, rather than cleans, anything unusual: empty
// segments, ".", "..", dotfiles (.git, .env, .htpasswd), backslashes and
// NULs. dir reports a trailing slash.
func cleanName(rest string) (name string, dir, ok bool) {
	if rest == "" {
		return ".", false, true
	}
	rest = rest[1:] // the slash after the prefix
	if rest == "" {
		return ".", true, true
	}
	if strings.HasSuffix(rest, "/") {
		dir = true
		rest = rest[:len(rest)-1]
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || seg[0] == '.' || strings.ContainsAny(seg, "\\\x00") {
			return "", false, false
		}
	}
	return rest, dir, true
}

// etag is a strong validator from the file's size and modification time,
// distinct per encoding because each is a different representation.
func etag(fi fs.FileInfo, coding string) string {
	b := make([]byte, 0, 48)
	b = append(b, '"')
	b = strconv.AppendInt(b, fi.ModTime().UnixNano(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, fi.Size(), 16)
	if coding != "" {
		b = append(b, '-')
		b = append(b, coding...)
	}
	return string(append(b, '"'))
}

// webTypes are the types of common web assets, so answers do not depend on
// the machine's mime.types (slim container images often have none).
var webTypes = map[string]string{
	".css":         "text/css; charset=utf-8",
	".csv":         "text/csv; charset=utf-8",
	".gif":         "image/gif",
	".htm":         "text/html; charset=utf-8",
	".html":        "text/html; charset=utf-8",
	".ico":         "image/vnd.microsoft.icon",
	".jpeg":        "image/jpeg",
	".jpg":         "image/jpeg",
	".js":          "text/javascript; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".mjs":         "text/javascript; charset=utf-8",
	".mp3":         "audio/mpeg",
	".mp4":         "video/mp4",
	".otf":         "font/otf",
	".pdf":         "application/pdf",
	".png":         "image/png",
	".svg":         "image/svg+xml",
	".ttf":         "font/ttf",
	".txt":         "text/plain; charset=utf-8",
	".wasm":        "application/wasm",
	".webm":        "video/webm",
	".webmanifest": "application/manifest+json",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".xml":         "text/xml; charset=utf-8",
}

// contentType is the type for name's extension, "" if unknown.
func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := webTypes[ext]; ok {
		return t
	}
	return mime.TypeByExtension(ext)
}

// fail writes a short plain-text error answer, like the application's
// front end does.
func fail(w http.ResponseWriter, code int) {
	msg := strconv.Itoa(code) + " " + http.StatusText(code) + "\n"
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(len(msg)))
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}
