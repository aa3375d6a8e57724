// Package h1 owns corral's HTTP/1.x fast path: it parses the request
// heads it fully understands (parseHead), answers them with a response
// writer that puts net/http's bytes on the wire (response), and hands
// every other connection, with the bytes already read, to net/http for
// the rest of its life (Server.Listener).
//
// The package's rule is that it never answers differently from
// net/http's server: whatever it does not serve exactly as net/http
// would, it declines, and net/http then reads the same bytes. The tests
// hold it to that rule by comparison with net/http (FuzzParseHead,
// FuzzServer, TestResponseMatchesNetHTTP, TestServerCorpus and the other
// TestServer tests).
//
// What it serves: plain HTTP/1.1 and HTTP/1.0 requests without a body
// (no Content-Length other than "0", no Transfer-Encoding, no Expect, no
// upgrade), with an origin-form target, a valid Host, CRLF line ends, no
// obs-fold, and a head of at most 16 KiB. Connections with a TLS state
// go to net/http at once.
//
// Where it knowingly differs from net/http:
//   - Header and idle timeouts are enforced by a sweeper, so they fire up
//     to a quarter of the shorter timeout late (at most a second), and a
//     connection handed to net/http gets net/http's full ReadHeaderTimeout
//     again from the handover.
//   - A handler's Write or Flush after it returned gets an error; net/http
//     writes into a buffer it has already pooled.
//   - A read error while a handler runs cancels its request only if no
//     bytes of a next request were read first; net/http's one-byte
//     background read decides the same way, but by what it read itself.
//   - A connection handed over is a new connection to net/http: its
//     ConnState hook sees http.StateHijacked for the fast path's net.Conn,
//     then http.StateNew for the one net/http gets; with unencrypted
//     HTTP/2 enabled on the http.Server, a handed-over connection whose
//     next bytes are the HTTP/2 preface would be served as HTTP/2 (corral
//     does not enable it).
//   - http.Server's ReadTimeout and WriteTimeout have no counterpart (corral
//     sets neither); the response has no Hijack and no CloseNotify.
package h1
