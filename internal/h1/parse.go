package h1

import (
	"bytes"
	"context"
	"net/http"
	"net/textproto"
	"net/url"
)

// parseStatus is the outcome of parseHead.
type parseStatus int

const (
	// needMore: buf holds the start of a head the fast path may serve;
	// call again with more bytes.
	needMore parseStatus = iota
	// parsed: buf starts with a complete head the fast path serves.
	parsed
	// declined: the fast path does not serve this head (unsupported or
	// malformed); net/http must read it from its first byte and answer.
	declined
)

func (s parseStatus) String() string {
	switch s {
	case needMore:
		return "needMore"
	case parsed:
		return "parsed"
	case declined:
		return "declined"
	}
	return "parseStatus(?)"
}

// parseHead parses one request head from the start of buf.
//
// On parsed it returns the request net/http's server would hand its
// handler for the same bytes, with ctx as its context, and n, the length
// of the head including its final CRLF CRLF. The caller sets RemoteAddr
// (and TLS, which the fast path never serves). req.Body is http.NoBody:
// only heads without a body are served.
//
// It declines anything it does not serve exactly as net/http does, and
// anything net/http refuses: a method that is not a token, CONNECT and
// PRI; a request-target not in origin form; a version other than
// HTTP/1.1 and HTTP/1.0; bare LF line ends, obs-fold and any byte
// net/http's server refuses in a field; more than one Host, none for
// HTTP/1.1, or one net/http finds malformed; Transfer-Encoding (so every
// head the framing check refuses is declined too), a Content-Length
// other than one field "0", Expect, and upgrades (an Upgrade field or an
// "upgrade" token in Connection); and a head longer than maxHeaderBytes
// (<= 0: http.DefaultMaxHeaderBytes), which net/http may answer with 431.
//
// Leading CR or LF bytes are declined too: net/http skips them only
// after a POST, which the caller does (see skipAfterPost).
func parseHead(ctx context.Context, buf []byte, maxHeaderBytes int) (req *http.Request, n int, status parseStatus) {
	var scanned int
	return parseHeadFrom(ctx, buf, maxHeaderBytes, &scanned)
}

// parseHeadFrom is parseHead for a head that arrives in pieces: *scanned
// is how much of buf earlier calls checked (complete lines, without the
// blank line); it starts at 0 for each head, and parseHeadFrom moves it
// on when it returns needMore. So a head sent a byte at a time is
// scanned once in all, not once per byte: with a rescan per read, a
// client trickling 16 KiB would cost the master over 100 million byte
// checks.
func parseHeadFrom(ctx context.Context, buf []byte, maxHeaderBytes int, scanned *int) (req *http.Request, n int, status parseStatus) {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	if len(buf) > 0 && (buf[0] == '\r' || buf[0] == '\n') {
		return nil, 0, declined // net/http answers an empty request line with 400
	}
	from := *scanned
	if from > len(buf) {
		from = 0
	}
	// Find the end of the head first: nothing is allocated for a head
	// that is not complete yet. Checked lines end in CRLF, so the blank
	// line's CRLF CRLF may start up to 2 bytes before them.
	start := max(0, from-3)
	end := bytes.Index(buf[start:], crlfcrlf)
	if end >= 0 {
		end += start
	}
	if end < 0 {
		if len(buf) >= maxHeaderBytes {
			return nil, 0, declined
		}
		next, ok := validPrefix(buf, from)
		if !ok {
			return nil, 0, declined
		}
		*scanned = next
		return nil, 0, needMore
	}
	n = end + len(crlfcrlf)
	if n > maxHeaderBytes {
		return nil, 0, declined
	}
	// One string for the whole head: every field of the request is a
	// substring of it, so the head costs one allocation, not one per
	// value (as textproto's would).
	head := string(buf[:end+2]) // each line with its CRLF

	line, rest, ok := cutLine(head)
	if !ok {
		return nil, 0, declined
	}
	method, target, proto, ok := parseRequestLine(line)
	if !ok {
		return nil, 0, declined
	}
	major, minor := 1, 1
	switch proto {
	case "HTTP/1.1":
	case "HTTP/1.0":
		minor = 0
	default:
		return nil, 0, declined
	}

	// Count the fields first, to size the map like textproto does
	// (it does not matter for equality, only for allocations).
	fields := 0
	for i := 0; i < len(rest); i++ {
		if rest[i] == '\n' {
			fields++
		}
	}
	header := make(http.Header, fields)
	var (
		hosts  int
		host   string
		values []string // one backing array for single-valued fields
	)
	values = make([]string, 0, fields)
	for rest != "" {
		line, rest, ok = cutLine(rest)
		if !ok {
			return nil, 0, declined // a CR or LF inside a line
		}
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			return nil, 0, declined // obs-fold, or space before the first field
		}
		colon := indexColon(line)
		if colon <= 0 {
			return nil, 0, declined // no colon, or an empty name
		}
		name, value := line[:colon], line[colon+1:]
		for i := 0; i < len(name); i++ {
			if !isTokenByte(name[i]) {
				return nil, 0, declined
			}
		}
		for i := 0; i < len(value); i++ {
			if !validValueByte(value[i]) {
				return nil, 0, declined
			}
		}
		value = trimOWS(value)
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Host":
			hosts++
			host = value
			continue // net/http's server deletes it from Header
		case "Transfer-Encoding", "Expect", "Upgrade":
			return nil, 0, declined
		case "Content-Length":
			if value != "0" || len(header["Content-Length"]) > 0 {
				return nil, 0, declined
			}
		}
		if vv, ok := header[key]; ok {
			header[key] = append(vv[:len(vv):len(vv)], value)
			continue
		}
		values = append(values, value)
		header[key] = values[len(values)-1 : len(values) : len(values)]
	}

	if method == "CONNECT" || method == "PRI" {
		return nil, 0, declined
	}
	switch {
	case hosts > 1:
		return nil, 0, declined // net/http: too many Host headers
	case hosts == 0 && minor == 1:
		return nil, 0, declined // net/http: missing required Host header
	case hosts == 1 && !validHost(host):
		return nil, 0, declined // net/http: malformed Host header
	}
	if valuesContainToken(header["Connection"], "upgrade") {
		return nil, 0, declined
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, 0, declined
	}

	// As net/http's readRequest: Pragma: no-cache implies Cache-Control.
	if hp, ok := header["Pragma"]; ok && len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := header["Cache-Control"]; !ok {
			header["Cache-Control"] = []string{"no-cache"}
		}
	}

	var zero http.Request
	req = zero.WithContext(ctx)
	req.Method = method
	req.URL = u
	req.Proto = proto
	req.ProtoMajor, req.ProtoMinor = major, minor
	req.Header = header
	req.Body = http.NoBody
	req.ContentLength = 0
	req.Host = u.Host
	if req.Host == "" {
		req.Host = host
	}
	req.RequestURI = target
	req.Close = shouldClose(minor, header["Connection"])
	return req, n, parsed
}

var crlfcrlf = []byte("\r\n\r\n")

// validPrefix reports whether the complete lines of buf, the start of a
// head without its blank line, may still begin a head the fast path
// serves. net/http reads a head line by line and answers a bad line at
// once (and ends lines at a bare LF too, so its blank line may be here
// already): the fast path must not wait for more bytes after one.
// Lines before from (0, or the end of a complete line) were checked
// already; next is where the complete lines end.
func validPrefix(buf []byte, from int) (next int, ok bool) {
	first := from == 0
	next = from
	buf = buf[from:]
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return next, true
		}
		if i == 0 || buf[i-1] != '\r' {
			return next, false // a bare LF
		}
		line := buf[:i-1]
		buf = buf[i+1:]
		next += i + 1
		if bytes.IndexByte(line, '\r') >= 0 {
			return next, false
		}
		if first {
			first = false
			method, target, proto, ok := parseRequestLine(string(line))
			if !ok || proto != "HTTP/1.1" && proto != "HTTP/1.0" || method == "CONNECT" || method == "PRI" {
				return next, false
			}
			if _, err := url.ParseRequestURI(target); err != nil {
				return next, false
			}
			continue
		}
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			return next, false
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return next, false
		}
		for _, c := range line[:colon] {
			if !isTokenByte(c) {
				return next, false
			}
		}
		for _, c := range line[colon+1:] {
			if !validValueByte(c) {
				return next, false
			}
		}
	}
}

// cutLine returns the first line of s without its CRLF, and the rest. ok
// is false if the line holds a CR or an LF of its own. s must end in
// CRLF.
func cutLine(s string) (line, rest string, ok bool) {
	i := 0
	for s[i] != '\n' {
		i++
	}
	if i == 0 {
		return "", "", false // a bare LF
	}
	line, rest = s[:i-1], s[i+1:]
	for j := 0; j < len(line); j++ {
		if line[j] == '\r' {
			return "", "", false
		}
	}
	return line, rest, s[i-1] == '\r'
}

// parseRequestLine splits "METHOD SP TARGET SP VERSION" as net/http does
// (at the first two spaces) and keeps only what the fast path serves: a
// token method and an origin-form target of visible ASCII.
func parseRequestLine(line string) (method, target, proto string, ok bool) {
	sp1 := indexByte(line, ' ')
	if sp1 <= 0 {
		return "", "", "", false
	}
	method = line[:sp1]
	for i := 0; i < len(method); i++ {
		if !isTokenByte(method[i]) {
			return "", "", "", false
		}
	}
	rest := line[sp1+1:]
	sp2 := indexByte(rest, ' ')
	if sp2 < 0 {
		return "", "", "", false
	}
	target, proto = rest[:sp2], rest[sp2+1:]
	if target == "" || target[0] != '/' {
		// Absolute form, authority form and "*" are net/http's: the
		// first two set Host from the target, the last is answered by
		// net/http itself for OPTIONS.
		return "", "", "", false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c >= 0x7f {
			return "", "", "", false
		}
	}
	return method, target, proto, true
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func indexColon(s string) int { return indexByte(s, ':') }

// trimOWS removes spaces and tabs at both ends, as textproto does to a
// field value.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isTokenByte reports whether c may appear in a token (RFC 9110 §5.6.2):
// a method or a field name. net/http's server refuses any other byte in
// either.
func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// validValueByte reports whether textproto accepts c in a field value:
// visible ASCII, space, tab and obs-text (0x80-0xff).
func validValueByte(c byte) bool {
	return c == '\t' || c >= ' ' && c != 0x7f
}

// validHost reports whether net/http's server accepts h as a Host value
// (httpguts.ValidHostHeader: a lenient byte set, the empty value
// included).
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			continue
		}
		switch c {
		case '!', '$', '%', '&', '(', ')', '*', '+', ',', '-', '.', ':', ';', '=', '[', '\'', ']', '_', '~':
			continue
		}
		return false
	}
	return true
}

// shouldClose is net/http's Request.Close for an HTTP/1.x request: for
// HTTP/1.0 unless a Connection field has the token keep-alive, and
// whenever one has the token close.
func shouldClose(minor int, connection []string) bool {
	hasClose := valuesContainToken(connection, "close")
	if minor == 0 {
		return hasClose || !valuesContainToken(connection, "keep-alive")
	}
	return hasClose
}

// valuesContainToken is httpguts.HeaderValuesContainsToken: whether any
// of values, split at commas and trimmed of spaces and tabs, is token
// (lower case), ASCII case-insensitively.
func valuesContainToken(values []string, token string) bool {
	for _, v := range values {
		for {
			elem, rest, more := cutComma(v)
			if equalFoldASCII(trimOWS(elem), token) {
				return true
			}
			if !more {
				break
			}
			v = rest
		}
	}
	return false
}

func cutComma(s string) (before, after string, found bool) {
	if i := indexByte(s, ','); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// equalFoldASCII reports whether s equals the lower-case ASCII t, ASCII
// case-insensitively; a non-ASCII byte in s never matches.
func equalFoldASCII(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}

// hasToken is net/http's hasToken, which its server uses on the first
// Connection value to decide keep-alive and close for the response: token
// (lower case) bounded by start, end, space, comma or tab, ASCII
// case-insensitively.
func hasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if b := v[sp]; b != token[0] && b|0x20 != token[0] {
			continue
		}
		if sp > 0 && !isTokenBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !isTokenBoundary(v[end]) {
			continue
		}
		if equalFoldASCII(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

// skipAfterPost returns how many leading bytes of buf net/http skips
// before the request that follows a POST: up to four CR or LF bytes
// (RFC 9112 §2.2 tolerance for clients that end a body with CRLF). ok
// is false if buf is too short to know yet (net/http peeks at four
// bytes).
func skipAfterPost(buf []byte) (n int, ok bool) {
	for n < len(buf) && n < 4 && (buf[n] == '\r' || buf[n] == '\n') {
		n++
	}
	return n, n < len(buf) || n == 4
}
