// Package proto is the frame codec of the master ↔ worker protocol.
// The specification is docs/PROTOCOL.md; this package is its Go half.
package proto

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Version is the protocol version sent in BOOT and expected in HELLO.
// Version 2 adds ASGI workers (docs/PROTOCOL.md, "Version 2"); a version 2
// master talks to WSGI workers exactly as version 1 did.
const Version = 2

// HeaderSize is the size of a frame header in bytes.
const HeaderSize = 12

// MaxPayload is the largest payload a frame may carry.
const MaxPayload = 1 << 20

// Type identifies a frame.
type Type uint8

// Master → worker frames.
const (
	Boot    Type = 0x01
	Request Type = 0x02
	Data    Type = 0x03
	Cancel  Type = 0x04
	Pause   Type = 0x05
	Resume  Type = 0x06
	Ping    Type = 0x07
	Fork    Type = 0x08 // to a zygote, with four descriptors
	Steal   Type = 0x30 // control channel only

	WSSend  Type = 0x09 // WS_MESSAGE, master → worker: a client message (or part of one)
	WSClose Type = 0x0A // WS_CLOSE, master → worker: the client closed, or the connection was lost
)

// Worker → master frames.
const (
	Hello    Type = 0x10
	BootFail Type = 0x11
	Start    Type = 0x12
	Body     Type = 0x13
	File     Type = 0x14
	End      Type = 0x15
	Error    Type = 0x16
	Read     Type = 0x17
	Returned Type = 0x18
	Pong     Type = 0x19
	Log      Type = 0x1A
	Ban      Type = 0x1B // the app bans a client (corral.ban)
	Forked   Type = 0x1C // from a zygote: the pid of a worker it forked
	Exited   Type = 0x1D // from a zygote: a worker it forked has exited

	// Version 2, ASGI workers.
	Trailers  Type = 0x1E // trailing headers, after the body
	EarlyHint Type = 0x1F // a 103 Early Hints response, before START
	WSAccept  Type = 0x20 // websocket.accept: subprotocol and extra headers
	WSMessage Type = 0x21 // websocket.send: a message (or part of one) for the client
	WSClosed  Type = 0x22 // WS_CLOSE, worker → master: websocket.close
	WSAck     Type = 0x23 // bytes of client messages the app has received
)

// Flags.
const (
	FlagBodyPull  uint8 = 1 // REQUEST: body is pulled with READ
	FlagWebSocket uint8 = 4 // REQUEST (ASGI): the scope is a websocket scope
	FlagEnd       uint8 = 1 // START: the response is complete
	FlagTrailers  uint8 = 2 // START (ASGI): TRAILERS follow the body
	FlagAborted   uint8 = 1 // END: the response did not complete
	FlagTimeout   uint8 = 1 // CANCEL: the request ran past its hard timeout
	FlagText      uint8 = 1 // WS_MESSAGE: a text message (UTF-8), else binary
	FlagMore      uint8 = 2 // WS_MESSAGE: more parts of this message follow
)

var typeNames = map[Type]string{
	Boot: "BOOT", Request: "REQUEST", Data: "DATA", Cancel: "CANCEL", Pause: "PAUSE",
	Resume: "RESUME", Ping: "PING", Fork: "FORK", Steal: "STEAL", Hello: "HELLO", BootFail: "BOOTFAIL",
	Start: "START", Body: "BODY", File: "FILE", End: "END", Error: "ERROR", Read: "READ",
	Returned: "RETURNED", Pong: "PONG", Log: "LOG", Ban: "BAN", Forked: "FORKED", Exited: "EXITED",
	WSSend: "WS_MESSAGE", WSClose: "WS_CLOSE", Trailers: "TRAILERS", EarlyHint: "EARLY_HINT",
	WSAccept: "WS_ACCEPT", WSMessage: "WS_MESSAGE", WSClosed: "WS_CLOSE", WSAck: "WS_ACK",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("Type(0x%02x)", uint8(t))
}

// fromWorker reports whether t may be sent by a worker.
func (t Type) fromWorker() bool { return t >= Hello && t <= WSAck }

// fromMaster reports whether t may be sent by the master.
func (t Type) fromMaster() bool { return t >= Boot && t <= WSClose || t == Steal }

// Errors returned by the decoder. A channel that produced one of them is
// broken and must be closed.
var (
	ErrTooLarge    = errors.New("frame payload exceeds limit")
	ErrUnknownType = errors.New("unknown frame type")
	ErrMalformed   = errors.New("malformed frame")
)

// Header is a decoded frame header.
type Header struct {
	Type   Type
	Flags  uint8
	ID     uint32
	Length uint32
}

// PutHeader encodes h into b, which must be at least HeaderSize long.
func PutHeader(b []byte, h Header) {
	b[0] = byte(h.Type)
	b[1] = h.Flags
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint32(b[4:], h.ID)
	binary.BigEndian.PutUint32(b[8:], h.Length)
}

// ParseHeaderAny decodes a header without checking it.
func ParseHeaderAny(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: short header", ErrMalformed)
	}
	return Header{
		Type:   Type(b[0]),
		Flags:  b[1],
		ID:     binary.BigEndian.Uint32(b[4:]),
		Length: binary.BigEndian.Uint32(b[8:]),
	}, nil
}

// ParseHeader decodes a header and checks it against the rules every frame
// from a worker must follow.
func ParseHeader(b []byte) (Header, error) {
	h, err := ParseHeaderAny(b)
	if err != nil {
		return h, err
	}
	if !h.Type.fromWorker() {
		return h, fmt.Errorf("%w: %v", ErrUnknownType, h.Type)
	}
	if h.Length > MaxPayload {
		return h, fmt.Errorf("%w: %s of %d bytes", ErrTooLarge, h.Type, h.Length)
	}
	if b[2] != 0 || b[3] != 0 {
		return h, fmt.Errorf("%w: reserved bytes set", ErrMalformed)
	}
	perRequest := h.Type != Hello && h.Type != BootFail && h.Type != Returned && h.Type != Pong &&
		h.Type != Log && h.Type != Ban && h.Type != Exited
	if perRequest && h.ID == 0 {
		return h, fmt.Errorf("%w: %s without request id", ErrMalformed, h.Type)
	}
	if h.Flags&^allowedFlags(h.Type) != 0 {
		return h, fmt.Errorf("%w: %s with flags 0x%02x", ErrMalformed, h.Type, h.Flags)
	}
	switch h.Type {
	case Start, Read:
		if h.Length < 4 {
			return h, fmt.Errorf("%w: short %s", ErrMalformed, h.Type)
		}
	case File:
		if h.Length != 16 {
			return h, fmt.Errorf("%w: FILE payload of %d bytes", ErrMalformed, h.Length)
		}
	case End:
		if h.Length != 0 {
			return h, fmt.Errorf("%w: END with payload", ErrMalformed)
		}
	case Returned:
		if h.Length%4 != 0 {
			return h, fmt.Errorf("%w: RETURNED of %d bytes", ErrMalformed, h.Length)
		}
	case WSClosed:
		if h.Length < 2 {
			return h, fmt.Errorf("%w: WS_CLOSE of %d bytes", ErrMalformed, h.Length)
		}
	case WSAck:
		if h.Length != 4 {
			return h, fmt.Errorf("%w: WS_ACK of %d bytes", ErrMalformed, h.Length)
		}
	}
	return h, nil
}

// ParseMasterHeader decodes a header of a frame the master sends and
// checks type, size and reserved bytes: what a worker reads (the Python
// runtime, or package fakeworker in tests).
func ParseMasterHeader(b []byte) (Header, error) {
	h, err := ParseHeaderAny(b)
	if err != nil {
		return h, err
	}
	if !h.Type.fromMaster() {
		return h, fmt.Errorf("%w: %v", ErrUnknownType, h.Type)
	}
	if h.Length > MaxPayload {
		return h, fmt.Errorf("%w: %s of %d bytes", ErrTooLarge, h.Type, h.Length)
	}
	if b[2] != 0 || b[3] != 0 {
		return h, fmt.Errorf("%w: reserved bytes set", ErrMalformed)
	}
	return h, nil
}

func allowedFlags(t Type) uint8 {
	switch t {
	case Start:
		return FlagEnd | FlagTrailers
	case End:
		return FlagAborted
	case WSMessage:
		return FlagText | FlagMore
	}
	return 0
}

// Frame is one decoded frame from a worker. Payload is owned by the caller.
type Frame struct {
	Header
	Payload []byte
}

// Reader decodes frames from a worker's data channel (NewReader) or, on
// the worker's side, from the master (NewMasterReader).
type Reader struct {
	r     io.Reader
	parse func([]byte) (Header, error)
	hdr   [HeaderSize]byte
}

// NewReader returns a Reader of a worker's frames on r; r should be
// buffered.
func NewReader(r io.Reader) *Reader { return &Reader{r: r, parse: ParseHeader} }

// NewMasterReader returns a Reader of the master's frames on r, for code
// that plays the worker; r should be buffered.
func NewMasterReader(r io.Reader) *Reader { return &Reader{r: r, parse: ParseMasterHeader} }

// Next reads one frame. The payload is freshly allocated so the frame can
// be handed to another goroutine. io.EOF is returned only at a clean frame
// boundary.
func (d *Reader) Next() (Frame, error) {
	if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
		return Frame{}, err
	}
	h, err := d.parse(d.hdr[:])
	if err != nil {
		return Frame{}, err
	}
	f := Frame{Header: h}
	if h.Length > 0 {
		f.Payload = make([]byte, h.Length)
		if _, err := io.ReadFull(d.r, f.Payload); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
	}
	return f, nil
}

// AppendFrame appends a frame with the given payload parts to dst.
func AppendFrame(dst []byte, t Type, flags uint8, id uint32, payload ...[]byte) []byte {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	var h [HeaderSize]byte
	PutHeader(h[:], Header{Type: t, Flags: flags, ID: id, Length: uint32(n)})
	dst = append(dst, h[:]...)
	for _, p := range payload {
		dst = append(dst, p...)
	}
	return dst
}

// SplitStart splits a START payload into its head and inline body.
func SplitStart(p []byte) (head, body []byte, err error) {
	n := binary.BigEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return nil, nil, fmt.Errorf("%w: START head of %d bytes in %d", ErrMalformed, n, len(p))
	}
	return p[4 : 4+n], p[4+n:], nil
}

// ParseHead splits a START head into the status line and header pairs.
// Headers alternate name, value. All strings share one allocation.
func ParseHead(head []byte) (status string, headers []string, err error) {
	n := 0
	for _, c := range head {
		if c == 0 {
			n++
		}
	}
	if n%2 != 0 {
		return "", nil, fmt.Errorf("%w: START head with %d fields", ErrMalformed, n+1)
	}
	s := string(head)
	if n == 0 {
		return s, nil, nil
	}
	headers = make([]string, 0, n)
	i := strings.IndexByte(s, 0)
	status, s = s[:i], s[i+1:]
	for {
		i = strings.IndexByte(s, 0)
		if i < 0 {
			return status, append(headers, s), nil
		}
		headers = append(headers, s[:i])
		s = s[i+1:]
	}
}

// BanRequest is the payload of a BAN frame: the app asks for a client to
// be banned.
type BanRequest struct {
	Addr    string  `json:"addr"`
	Seconds float64 `json:"seconds"`
	Reason  string  `json:"reason"`
}

// ParseBan decodes a BAN payload.
func ParseBan(p []byte) (BanRequest, error) {
	var b BanRequest
	if err := json.Unmarshal(p, &b); err != nil {
		return b, fmt.Errorf("%w: BAN: %v", ErrMalformed, err)
	}
	if b.Addr == "" || !(b.Seconds > 0) {
		return b, fmt.Errorf("%w: BAN needs an address and a positive number of seconds", ErrMalformed)
	}
	return b, nil
}

// ParseFile decodes a FILE payload. A count of -1 means to the end of file.
func ParseFile(p []byte) (offset int64, count int64, err error) {
	offset = int64(binary.BigEndian.Uint64(p))
	count = int64(binary.BigEndian.Uint64(p[8:]))
	if offset < 0 || count < -1 {
		return 0, 0, fmt.Errorf("%w: FILE offset %d count %d", ErrMalformed, offset, count)
	}
	return offset, count, nil
}

// ParseRead decodes a READ payload.
func ParseRead(p []byte) (int, error) {
	n := binary.BigEndian.Uint32(p)
	if n == 0 || n > MaxPayload {
		return 0, fmt.Errorf("%w: READ of %d bytes", ErrMalformed, n)
	}
	return int(n), nil
}

// ParseReturned decodes the ids of a RETURNED payload.
func ParseReturned(p []byte) []uint32 {
	ids := make([]uint32, len(p)/4)
	for i := range ids {
		ids[i] = binary.BigEndian.Uint32(p[4*i:])
	}
	return ids
}

// requestPrefix is the header plus the u32 environ length of a REQUEST.
const requestPrefix = HeaderSize + 4

// BeginRequest starts a REQUEST frame in dst (which it resets). Add environ
// pairs with AddEnv, then complete it with FinishRequest.
func BeginRequest(dst []byte) []byte {
	return append(dst[:0], make([]byte, requestPrefix)...)
}

// AddEnv appends one environ pair. Neither k nor v may contain NUL; the
// caller checks values that come from clients.
func AddEnv(dst []byte, k, v string) []byte {
	if len(dst) > requestPrefix {
		dst = append(dst, 0)
	}
	dst = append(dst, k...)
	dst = append(dst, 0)
	return append(dst, v...)
}

// FinishRequest writes the header of a REQUEST frame built with
// BeginRequest/AddEnv and appends the inline body. It returns an error if
// the frame would exceed MaxPayload.
func FinishRequest(dst []byte, id uint32, flags uint8, body []byte) ([]byte, error) {
	envLen := len(dst) - requestPrefix
	n := 4 + envLen + len(body)
	if n > MaxPayload {
		return dst, fmt.Errorf("%w: REQUEST of %d bytes", ErrTooLarge, n)
	}
	PutHeader(dst, Header{Type: Request, Flags: flags, ID: id, Length: uint32(n)})
	binary.BigEndian.PutUint32(dst[HeaderSize:], uint32(envLen))
	return append(dst, body...), nil
}

// MaxCloseReason is the longest close reason a WebSocket close frame can
// carry (its payload is at most 125 bytes, two of them the code). A longer
// reason in a WS_CLOSE is not a protocol error: the master cuts it.
const MaxCloseReason = 123

// splitFields splits p at NUL bytes into fields, all sharing one string.
func splitFields(p []byte) []string {
	s := string(p)
	out := make([]string, 0, strings.Count(s, "\x00")+1)
	for {
		i := strings.IndexByte(s, 0)
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
}

// ParseHeaders splits a TRAILERS or EARLY_HINT payload,
// name\0value\0name\0value (latin-1), into alternating names and values.
// An empty payload is no headers.
func ParseHeaders(p []byte) ([]string, error) {
	if len(p) == 0 {
		return nil, nil
	}
	f := splitFields(p)
	if len(f)%2 != 0 {
		return nil, fmt.Errorf("%w: header list of %d fields", ErrMalformed, len(f))
	}
	return f, nil
}

// ParseAccept splits a WS_ACCEPT payload into the subprotocol ("" = none)
// and the extra response headers, alternating names and values.
func ParseAccept(p []byte) (subprotocol string, headers []string, err error) {
	if len(p) == 0 {
		return "", nil, nil
	}
	f := splitFields(p)
	if len(f)%2 != 1 {
		return "", nil, fmt.Errorf("%w: WS_ACCEPT of %d fields", ErrMalformed, len(f))
	}
	return f[0], f[1:], nil
}

// ParseWSClose decodes a WS_CLOSE payload: a close code and a reason. The
// code is returned as sent; whether it may go on the wire is the caller's
// concern (ValidCloseCode).
func ParseWSClose(p []byte) (code int, reason string, err error) {
	if len(p) < 2 {
		return 0, "", fmt.Errorf("%w: WS_CLOSE of %d bytes", ErrMalformed, len(p))
	}
	return int(binary.BigEndian.Uint16(p)), string(p[2:]), nil
}

// ParseWSAck decodes a WS_ACK payload: a byte count.
func ParseWSAck(p []byte) (int64, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("%w: WS_ACK of %d bytes", ErrMalformed, len(p))
	}
	return int64(binary.BigEndian.Uint32(p)), nil
}

// ValidCloseCode reports whether code may be sent in a WebSocket close
// frame (RFC 6455 section 7.4): 1000-1003, 1007-1014, 3000-4999.
func ValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// AppendWSClose appends a WS_CLOSE frame (master → worker) for request id.
func AppendWSClose(dst []byte, id uint32, code int, reason string) []byte {
	var c [2]byte
	binary.BigEndian.PutUint16(c[:], uint16(code))
	return AppendFrame(dst, WSClose, 0, id, c[:], []byte(reason))
}

// AddField appends one field of a REQUEST's scope block (ASGI): a NUL
// separator unless it is the block's first field, then v. The first field
// (the method) must not be empty. v may not contain NUL; the caller checks
// values that come from clients.
func AddField(dst []byte, v string) []byte {
	if len(dst) > requestPrefix {
		dst = append(dst, 0)
	}
	return append(dst, v...)
}

// ScopeFields is the number of fixed fields at the start of a scope block;
// header names and values follow.
const ScopeFields = 11

// ParseScope splits a scope block into its fixed fields and its headers
// (alternating names and values). It is the worker's reading of the block,
// for tests and tools.
func ParseScope(block []byte) (fixed []string, headers []string, err error) {
	f := splitFields(block)
	if len(f) < ScopeFields || (len(f)-ScopeFields)%2 != 0 {
		return nil, nil, fmt.Errorf("%w: scope block of %d fields", ErrMalformed, len(f))
	}
	return f[:ScopeFields], f[ScopeFields:], nil
}

// SplitRequest splits a REQUEST payload into its environ or scope block
// and its inline body.
func SplitRequest(p []byte) (block, body []byte, err error) {
	if len(p) < 4 {
		return nil, nil, fmt.Errorf("%w: REQUEST of %d bytes", ErrMalformed, len(p))
	}
	n := binary.BigEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return nil, nil, fmt.Errorf("%w: REQUEST block of %d bytes in %d", ErrMalformed, n, len(p))
	}
	return p[4 : 4+n], p[4+n:], nil
}
