package listen

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
)

// errAmbiguousFraming ends the reads of a connection whose client sent a
// request head with both Content-Length and Transfer-Encoding. It is
// neither io.EOF nor a net.Error, so net/http answers it with 400 and
// closes the connection instead of dropping it silently.
var errAmbiguousFraming = errors.New("request has both Content-Length and Transfer-Encoding")

// FramingListener wraps l so that its connections refuse request heads
// that carry both Content-Length and Transfer-Encoding, and HTTP/1.0 heads
// that carry Transfer-Encoding. net/http lets Transfer-Encoding win and
// deletes Content-Length before any handler runs, so only the byte stream
// shows the ambiguity that request smuggling through a proxy framing by
// Content-Length relies on. The client gets net/http's 400 with
// Connection: close; the handler never sees the request.
//
// Each connection follows HTTP/1 message framing exactly as net/http's
// server reads it and stops acting for good (pass-through) once the
// stream is something it does not follow: a protocol other than HTTP/1.x
// (the h2c preface), a Transfer-Encoding net/http answers with 501, or
// malformed framing, all of which make net/http close the connection.
// Upgrade and CONNECT requests are followed like any other request until
// a 101 Switching Protocols goes out (a WebSocket the handler took over):
// from then on the connection passes everything through.
//
// Because it follows the framing, a connection also knows when corral
// answered a request the client has not finished sending (a 413 before
// the body, net/http's 431 or 400 for a head): its Close then lingers
// with lg (see Linger) so that the client reads the answer instead of a
// reset. A nil lg closes at once.
//
// l must deliver plain HTTP/1 connections: a TLS listener must be wrapped
// below TLS, and only for connections that negotiated HTTP/1.1.
func FramingListener(l net.Listener, lg *Linger) net.Listener {
	return framingListener{Listener: l, lg: lg}
}

// Framing is FramingListener for one connection, as the TLS layer hands
// out each decrypted HTTP/1 stream.
func Framing(c net.Conn, lg *Linger) net.Conn {
	return &framingConn{Conn: c, k: closer{l: lg, c: c}}
}

type framingListener struct {
	net.Listener
	lg *Linger
}

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Framing(c, l.lg), nil
}

// framingConn runs a tracker over the bytes net/http reads. It is used by
// one reader at a time, as net/http does; Write and Close may come from
// other goroutines.
type framingConn struct {
	net.Conn
	t       tracker
	refused bool
	held    []byte // the refused head's bytes not yet returned, without its final LF
	k       closer
	// upgraded is set when a 101 Switching Protocols went out (a
	// WebSocket): the bytes that follow are not HTTP/1 any more.
	upgraded atomic.Bool

	// pos is where the reads are: the number of complete messages << 1,
	// | 1 while in a message (from its first byte to its end, and for good
	// after a refused head). early is pos as a write found it in a
	// message: an answer to a request the client was still sending.
	pos, early atomic.Uint64
}

// Read returns what the client sent until a head must be refused. That
// head is handed out without its final LF, so net/http never completes it,
// and later Reads fail. A Read never returns bytes of earlier requests
// together with the refused head: net/http reads one byte ahead while a
// handler runs, and an error there would cancel that earlier, valid
// request instead of refusing the bad one. For the same reason a Read
// may return 0, nil once, when it got nothing but the final LF.
func (c *framingConn) Read(p []byte) (int, error) {
	if c.upgraded.Load() {
		return c.Conn.Read(p)
	}
	if c.refused {
		if len(c.held) > 0 {
			n := copy(p, c.held)
			c.held = c.held[n:]
			return n, nil
		}
		return 0, errAmbiguousFraming
	}
	n, err := c.Conn.Read(p)
	if n == 0 || c.t.state == stPass {
		return n, err
	}
	start, end, refuse := c.t.feed(p[:n])
	if !refuse {
		c.pos.Store(c.t.position())
		return n, err
	}
	c.refused = true
	c.pos.Store(uint64(c.t.done)<<1 | 1) // net/http answers 400 to a head the client goes on sending
	if start > 0 {
		c.held = append([]byte(nil), p[start:end]...)
		return start, nil
	}
	return end, nil
}

// switching starts the response that hands a connection over to another
// protocol. net/http writes a 1xx head at once, at the start of a write.
const switching = "HTTP/1.1 101 "

// Write notes an answer written while the client is still sending its
// request, and a 101 that ends HTTP/1 on the connection.
func (c *framingConn) Write(p []byte) (int, error) {
	if pos := c.pos.Load(); pos&1 == 1 {
		c.early.Store(pos)
	}
	if len(p) >= len(switching) && string(p[:len(switching)]) == switching {
		c.upgraded.Store(true)
	}
	return c.Conn.Write(p)
}

// ReadFrom keeps sendfile for file responses: net/http uses it only when
// the connection itself is an io.ReaderFrom.
func (c *framingConn) ReadFrom(r io.Reader) (int64, error) {
	if pos := c.pos.Load(); pos&1 == 1 {
		c.early.Store(pos)
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// CloseWrite lets net/http half-close before it closes after an answer
// that left input unread (a body over the limit, a head too large), so the
// client reads the answer instead of a reset; lingering starts here.
func (c *framingConn) CloseWrite() error { return c.k.closeWrite() }

// Close closes the connection, after lingering if an answer went out
// while the client was still sending the request it answers.
func (c *framingConn) Close() error {
	if c.upgraded.Load() {
		return c.k.close(false)
	}
	pos := c.pos.Load()
	return c.k.close(pos&1 == 1 && c.early.Load() == pos)
}

type writerOnly struct{ io.Writer }

// Tracker states. A tracker is in exactly one; stPass is final.
const (
	stStart       uint8 = iota // before a request line
	stMethod                   // in the method
	stTarget                   // in the request target
	stProto                    // in the protocol version
	stLineStart                // at the start of a header line
	stLineCR                   // after a CR that starts a header line
	stName                     // in a field name that may be Content-Length or Transfer-Encoding
	stValue                    // in the value of a Content-Length or Transfer-Encoding field
	stSkipLine                 // in a header line the tracker ignores
	stBody                     // in a Content-Length body
	stChunkSize                // in a chunk size
	stChunkWS                  // in whitespace after a chunk size
	stChunkExt                 // in chunk extensions
	stChunkLF                  // after the CR of a chunk size line
	stChunkData                // in chunk data
	stDataCR                   // after chunk data, before its CR
	stDataLF                   // after chunk data and CR, before its LF
	stTrailer                  // at the start of a trailer line
	stTrailerCR                // after a CR that starts a trailer line
	stTrailerSkip              // in a trailer line
	stPass                     // not tracking any more
)

// Field kinds of the current header line.
const (
	fieldOther uint8 = iota
	fieldCL
	fieldTE
)

// Content-Length value states.
const (
	clEmpty  uint8 = iota // no digit yet
	clDigits              // in the digits
	clAfter               // whitespace after the digits
	clBad                 // not a length net/http accepts
)

const maxLength = 1<<63 - 1 // net/http parses Content-Length with 63 bits

// tracker follows HTTP/1 request framing byte by byte as net/http's server
// reads it: request line, header fields to the blank line, then a body by
// Content-Length or chunked coding (sizes, extensions, data, trailers). It
// looks only at what decides framing; whatever net/http refuses, it only
// has to survive, because net/http closes the connection after refusing.
// The zero value expects a request line. State is a fixed set of counters.
type tracker struct {
	state  uint8
	n      int  // bytes of the current method, version or field name seen
	post   bool // the method so far is a prefix of POST; after the head, it is POST
	skip   int  // CR or LF bytes net/http skips before the next request line
	proto  [9]byte
	http10 bool

	field      uint8 // of the current header line (and its continuation lines)
	name       string
	clState    uint8
	clVal      int64
	clLen      int // digits of the current Content-Length value
	clFirst    int64
	clFirstLen int
	clFields   int
	clBad      bool
	teFields   int
	teExact    int8 // chars of "chunked" matched by the whole value; -1: it is not just "chunked"
	teElem     int8 // chars of "chunked" matched by the current list element; -1: not chunked
	teElemEnd  bool // whitespace after a complete "chunked" element
	teLast     bool // the last coding of the last Transfer-Encoding field is chunked
	teOnly     bool // the single Transfer-Encoding field is exactly "chunked"

	remain uint64 // body or chunk bytes left
	digits int    // hex digits of the current chunk size
	done   int    // complete messages seen
}

// feed advances the tracker over b, the next bytes of the stream. If b
// completes a head that must be refused, it returns refuse, the offset in
// b where that head began (0 if it began in an earlier call) and the
// offset of its final LF; the tracker then passes everything through.
func (t *tracker) feed(b []byte) (start, end int, refuse bool) {
	for i := 0; i < len(b); {
		c := b[i]
		switch t.state {
		case stPass:
			return 0, 0, false

		case stStart:
			if t.skip > 0 && (c == '\r' || c == '\n') {
				// net/http skips up to 4 CR or LF after a POST (old
				// clients add a CRLF after the body).
				t.skip--
				i++
				continue
			}
			t.beginHead()
			start = i
			t.state = stMethod

		case stMethod:
			i++
			switch c {
			case ' ':
				t.post = t.post && t.n == 4
				t.state = stTarget
			case '\n':
				t.pass() // a request line without target and version
			default:
				t.post = t.post && t.n < 4 && c == "POST"[t.n]
				if t.n < 5 {
					t.n++
				}
			}

		case stTarget:
			rest := b[i:]
			j := bytes.IndexByte(rest, ' ')
			if j < 0 {
				j = len(rest)
			}
			if bytes.IndexByte(rest[:j], '\n') >= 0 {
				t.pass() // no version
				continue
			}
			i += j
			if j < len(rest) {
				i++
				t.state, t.n = stProto, 0
			}

		case stProto:
			i++
			if c != '\n' {
				if t.n == len(t.proto) {
					t.pass() // too long for HTTP/x.y
					continue
				}
				t.proto[t.n] = c
				t.n++
				continue
			}
			v := t.proto[:t.n]
			if len(v) > 0 && v[len(v)-1] == '\r' {
				v = v[:len(v)-1]
			}
			// Anything but HTTP/1.x is answered by net/http with an error
			// (505, 400) or is the h2c preface: not HTTP/1 framing.
			if len(v) != 8 || string(v[:7]) != "HTTP/1." || v[7] < '0' || v[7] > '9' {
				t.pass()
				continue
			}
			t.http10 = v[7] == '0'
			t.state = stLineStart

		case stLineStart:
			i++
			switch c {
			case '\n':
				if t.endHead() {
					return start, i - 1, true
				}
			case '\r':
				t.state = stLineCR
			case ' ', '\t':
				// obs-fold: net/http joins the line to the previous field
				// with one space.
				switch t.field {
				case fieldCL:
					t.clByte(' ')
					t.state = stValue
				case fieldTE:
					t.teByte(' ', true)
					t.state = stValue
				default:
					t.state = stSkipLine
				}
			default:
				t.endField()
				switch c {
				case 'C', 'c':
					t.name = "content-length"
				case 'T', 't':
					t.name = "transfer-encoding"
				default:
					t.state = stSkipLine
					continue
				}
				t.n = 1
				t.state = stName
			}

		case stLineCR:
			i++
			if c != '\n' {
				t.pass() // a field line starting with CR: net/http refuses it
				continue
			}
			if t.endHead() {
				return start, i - 1, true
			}

		case stName:
			i++
			if c == ':' && t.n == len(t.name) {
				t.startField()
				continue
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c == '\n' {
				t.pass() // no colon
			} else if t.n < len(t.name) && c == t.name[t.n] {
				t.n++
			} else {
				t.state = stSkipLine
			}

		case stValue:
			i++
			switch {
			case c == '\n':
				t.state = stLineStart
			case t.field == fieldCL:
				t.clByte(c)
			default:
				t.teByte(c, false)
			}

		case stSkipLine:
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				i = len(b)
				continue
			}
			i += j + 1
			t.state = stLineStart

		case stBody:
			if k := uint64(len(b) - i); k < t.remain {
				t.remain -= k
				i = len(b)
				continue
			}
			i += int(t.remain)
			t.endMessage()

		case stChunkSize:
			i++
			switch h := hexValue(c); {
			case h >= 0:
				if t.digits == 16 {
					t.pass() // net/http refuses sizes over 16 hex digits
					continue
				}
				t.remain = t.remain<<4 | uint64(h)
				t.digits++
			case t.digits == 0:
				t.pass() // no size
			case c == ';':
				t.state = stChunkExt
			case c == ' ' || c == '\t':
				t.state = stChunkWS
			case c == '\r':
				t.state = stChunkLF
			default:
				t.pass()
			}

		case stChunkWS:
			// net/http trims whitespace at the end of a size line, but not
			// before the extensions.
			i++
			switch c {
			case ' ', '\t':
			case '\r':
				t.state = stChunkLF
			default:
				t.pass()
			}

		case stChunkExt:
			// net/http refuses a CR anywhere but before the LF, and a bare LF.
			rest := b[i:]
			j := bytes.IndexByte(rest, '\r')
			if j < 0 {
				j = len(rest)
			}
			if bytes.IndexByte(rest[:j], '\n') >= 0 {
				t.pass()
				continue
			}
			i += j
			if j < len(rest) {
				i++
				t.state = stChunkLF
			}

		case stChunkLF:
			i++
			switch {
			case c != '\n':
				t.pass()
			case t.remain == 0:
				t.state = stTrailer
			default:
				t.state = stChunkData
			}

		case stChunkData:
			if k := uint64(len(b) - i); k < t.remain {
				t.remain -= k
				i = len(b)
				continue
			}
			i += int(t.remain)
			t.remain = 0
			t.state = stDataCR

		case stDataCR, stDataLF:
			i++
			switch {
			case t.state == stDataCR && c == '\r':
				t.state = stDataLF
			case t.state == stDataLF && c == '\n':
				t.state, t.digits = stChunkSize, 0
			default:
				t.pass()
			}

		case stTrailer:
			i++
			switch c {
			case '\n':
				t.endMessage()
			case '\r':
				t.state = stTrailerCR
			default:
				t.state = stTrailerSkip
			}

		case stTrailerSkip:
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				i = len(b)
				continue
			}
			i += j + 1
			t.state = stTrailer

		case stTrailerCR:
			i++
			if c != '\n' {
				t.pass() // a trailer line starting with CR: net/http refuses it
				continue
			}
			t.endMessage()
		}
	}
	return 0, 0, false
}

func (t *tracker) pass() { t.state = stPass }

// position is the number of complete messages << 1, | 1 inside a message.
func (t *tracker) position() uint64 {
	p := uint64(t.done) << 1
	if t.state != stStart && t.state != stPass {
		p |= 1
	}
	return p
}

// beginHead resets the per-message state at the first byte of a request
// line.
func (t *tracker) beginHead() {
	t.n, t.post, t.http10 = 0, true, false
	t.field = fieldOther
	t.clFields, t.clBad, t.teFields = 0, false, 0
	t.remain, t.digits = 0, 0
}

// startField is called at the colon of a Content-Length or
// Transfer-Encoding field.
func (t *tracker) startField() {
	t.state = stValue
	if t.name[0] == 'c' {
		t.field = fieldCL
		t.clState, t.clVal, t.clLen = clEmpty, 0, 0
		return
	}
	t.field = fieldTE
	t.teExact, t.teElem, t.teElemEnd = 0, 0, false
}

// endField completes the field before the current line: a field ends
// where a line that does not continue it begins.
func (t *tracker) endField() {
	switch t.field {
	case fieldCL:
		// net/http accepts repeated fields only if their trimmed values are
		// the same string: for digit strings, the same value and length.
		switch {
		case t.clState == clEmpty || t.clState == clBad:
			t.clBad = true
		case t.clFields == 0:
			t.clFirst, t.clFirstLen = t.clVal, t.clLen
		case t.clVal != t.clFirst || t.clLen != t.clFirstLen:
			t.clBad = true
		}
		t.clFields++
	case fieldTE:
		t.teFields++
		t.teLast = t.teElem == 7
		t.teOnly = t.teExact == 7
	}
	t.field = fieldOther
}

// endHead decides the framing of the message whose blank line was just
// read, and reports whether the head must be refused.
func (t *tracker) endHead() bool {
	t.endField()
	switch {
	case t.teFields > 0 && (t.http10 || t.clFields > 0 && t.teLast):
		// With both, net/http frames by Transfer-Encoding and a proxy may
		// frame by Content-Length. In HTTP/1.0 net/http ignores
		// Transfer-Encoding and a proxy may not (nginx refuses these too).
		t.pass()
		return true
	case t.teFields > 0:
		if t.teFields != 1 || !t.teOnly {
			t.pass() // net/http answers 501 and closes
			return false
		}
		t.state, t.remain, t.digits = stChunkSize, 0, 0
	case t.clFields > 0:
		switch {
		case t.clBad:
			t.pass() // net/http answers 400 and closes
		case t.clFirst == 0:
			t.endMessage()
		default:
			t.state, t.remain = stBody, uint64(t.clFirst)
		}
	default:
		t.endMessage()
	}
	return false
}

func (t *tracker) endMessage() {
	t.state, t.remain, t.digits = stStart, 0, 0
	t.skip = 0
	if t.post {
		t.skip = 4
	}
	t.done++
}

// clByte follows a Content-Length value: net/http trims ASCII whitespace
// and parses the rest as an unsigned decimal of at most 63 bits.
func (t *tracker) clByte(c byte) {
	switch {
	case '0' <= c && c <= '9':
		d := int64(c - '0')
		if t.clState == clAfter || t.clState == clBad || t.clVal > (maxLength-d)/10 {
			t.clState = clBad
			return
		}
		t.clVal = t.clVal*10 + d
		t.clLen++
		t.clState = clDigits
	case c == ' ' || c == '\t' || c == '\r':
		if t.clState == clDigits {
			t.clState = clAfter
		}
	default:
		t.clState = clBad
	}
}

// teByte follows a Transfer-Encoding value twice: whether the whole value
// is "chunked" (what net/http accepts), and whether its last list element
// is. fold is the space net/http puts in place of an obs-fold: unlike the
// whitespace at the end of a line, it is not trimmed.
func (t *tracker) teByte(c byte, fold bool) {
	ws := c == ' ' || c == '\t' || c == '\r'
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A'
	}
	switch {
	case t.teExact < 0:
	case ws && (t.teExact == 0 || t.teExact == 7 && !fold):
	case !ws && t.teExact < 7 && c == "chunked"[t.teExact]:
		t.teExact++
	default:
		t.teExact = -1
	}
	switch {
	case c == ',':
		t.teElem, t.teElemEnd = 0, false
	case t.teElem < 0:
	case ws:
		if t.teElem == 7 {
			t.teElemEnd = true
		} else if t.teElem > 0 {
			t.teElem = -1
		}
	case !t.teElemEnd && t.teElem < 7 && c == "chunked"[t.teElem]:
		t.teElem++
	default:
		t.teElem = -1
	}
}

func hexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
