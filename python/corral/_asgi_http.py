"""One ASGI request: its scope, ``receive`` and ``send``, and the frames of
its response (docs/PROTOCOL.md, "Version 2: ASGI workers").

Every request runs as one task on the worker's event loop. ``send`` turns
ASGI messages into frames in the worker's output queue, which keeps the
frames of one request in the order they were made. Completing a request
(START|END, END or ERROR) removes it from the worker's table first: the
master may reuse the id as soon as it has read that frame, while the app's
coroutine may still run (background work after the response).
"""

import asyncio
import os
import re
import stat
import sys

from . import ClientDisconnected
from ._proto import (
    ABORTED,
    BODY,
    BODY_PULL,
    EARLY_HINT,
    END,
    ERROR,
    FILE,
    FILE_PAYLOAD,
    HEADER,
    MAX_PAYLOAD,
    READ,
    START,
    START_END,
    START_HEADER,
    START_TRAILERS,
    TRAILERS,
    U32,
    frame,
)
from ._request import _describe, _format_traceback, to_json

try:
    from http import HTTPStatus

    _REASONS = {int(s): s.phrase for s in HTTPStatus}
except Exception:  # pragma: no cover
    _REASONS = {}

# Bodies up to this size are copied behind their frame header so the frame
# is one buffer; larger ones go out as two (header, body) without a copy.
SMALL_BODY = 64 * 1024

# Phases of a response.
INIT = 0  # nothing sent by the app yet
STARTED = 1  # http.response.start received; START is held until the first body
STREAMING = 2  # START is on the wire, more body to come
TRAILING = 3  # the body is complete, http.response.trailers to come
DONE = 4  # the frame that completes the request is in the output queue

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_CACHE_LIMIT = 1024
_known_names = set()
_status_lines = {}

ASGI_VERSION = "3.0"
SPEC_VERSION = "2.5"
HTTP_EXTENSIONS = (
    "http.response.pathsend",
    "http.response.trailers",
    "http.response.early_hint",
)
WS_EXTENSIONS = ("websocket.http.response",)


class ProtocolViolation(RuntimeError):
    """The app broke the ASGI protocol; raised from ``send()``."""


def _status_line(status):
    line = _status_lines.get(status)
    if line is None:
        line = ("%d %s" % (status, _REASONS.get(status, ""))).encode("latin-1")
        if len(_status_lines) < _CACHE_LIMIT:
            _status_lines[status] = line
    return line


def _as_bytes(value, what):
    if type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise ProtocolViolation(
        "ASGI protocol violation: %s must be bytes, not %s" % (what, type(value).__name__)
    )


def encode_pairs(first, headers, what):
    """``first\\0name\\0value...`` (``first`` None: no leading field) from an
    iterable of ``[name, value]`` byte-string pairs, checked: names are
    RFC 9110 tokens, nothing contains CR, LF or NUL."""
    parts = [] if first is None else [first]
    append = parts.append
    known = _known_names
    try:
        for name, value in headers:
            if type(name) is not bytes:
                name = _as_bytes(name, "%s name %r" % (what, name))
            if type(value) is not bytes:
                value = _as_bytes(value, "value of %s %r" % (what, name))
            if name not in known:
                if not _TOKEN(name):
                    raise ProtocolViolation(
                        "ASGI protocol violation: invalid %s name %r" % (what, name)
                    )
                if len(known) < _CACHE_LIMIT:
                    known.add(name)
            append(name)
            append(value)
    except ProtocolViolation:
        raise
    except (TypeError, ValueError):
        raise ProtocolViolation(
            "ASGI protocol violation: %ss must be an iterable of [name, value] "
            "byte string pairs, not %r" % (what, headers)
        ) from None
    data = b"\0".join(parts)
    # find(), not ``in``: bytes.__contains__ first tries its argument as an
    # int and formats (then drops) a TypeError, which costs more than the scan.
    if (
        data.find(b"\r") != -1
        or data.find(b"\n") != -1
        or data.count(b"\0") != len(parts) - 1
    ):
        raise ProtocolViolation(
            "ASGI protocol violation: a %s contains CR, LF or NUL" % what
        )
    return data


def parse_block(block, rid):
    """The fields of a scope block: (fields list, headers list)."""
    parts = block.split(b"\0")
    if len(parts) < 11 or not len(parts) & 1:
        from ._channel import protocol_error

        protocol_error("malformed scope block in REQUEST %d" % rid)
    it = iter(parts[11:])
    return parts, list(zip(it, it))


# Short fields that take few values, decoded once.
_METHODS = {
    m.encode(): m
    for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE")
}
_VERSIONS = {b"1.0": "1.0", b"1.1": "1.1", b"2": "2"}
_SCHEMES = {b"http": "http", b"https": "https"}


def _malformed(rid):
    from ._channel import protocol_error

    protocol_error("malformed scope block in REQUEST %d" % rid)


def _bad_port(port, rid):
    from ._channel import protocol_error

    protocol_error("bad port %r in REQUEST %d" % (port, rid))


_servers = {}


def _address(host, port, rid, default_port):
    if not host:
        return None
    try:
        return (host.decode("utf-8", "surrogateescape"), int(port) if port else default_port)
    except ValueError:
        from ._channel import protocol_error

        protocol_error("bad port %r in REQUEST %d" % (port, rid))


def _server(host, port, rid):
    """The server address: a handful per worker, so cached."""
    key = (host, port)
    server = _servers.get(key)
    if server is None:
        server = _address(host, port, rid, None)
        if len(_servers) < 64:
            _servers[key] = server
    return server


class Base:
    """What HTTP requests and WebSockets share: identity, waiting, the
    HTTP response machinery (a WebSocket uses it to deny the handshake),
    and completing the request."""

    __slots__ = (
        "w",
        "id",
        "scope",
        "task",
        "phase",
        "head",
        "trailers",
        "trailer_parts",
        "cancelled",
        "timed_out",
        "paused",
        "waiters",
        "violation",
    )

    def __init__(self, worker, rid):
        self.w = worker
        self.id = rid
        self.task = None
        self.phase = INIT
        self.head = None
        self.trailers = False
        self.trailer_parts = None
        self.cancelled = False
        self.timed_out = False
        self.paused = False
        self.waiters = None
        self.violation = None

    # -- waiting (receive, PAUSE)

    async def _wait(self):
        """Until the next _wake(): DATA, CANCEL, RESUME, a message, the end."""
        fut = self.w.loop.create_future()
        if self.waiters is None:
            self.waiters = [fut]
        else:
            self.waiters.append(fut)
        await fut

    def _wake(self):
        waiters = self.waiters
        if waiters:
            self.waiters = None
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def _may_send(self):
        """Honour PAUSE and the output queue's high-water mark; raise
        ClientDisconnected once the client is gone."""
        while self.paused and not self.cancelled:
            await self._wait()
        if self.cancelled:
            raise ClientDisconnected("the client disconnected")
        w = self.w
        if w.out_size > w.high_water:
            await w.drain()

    # -- master frames

    def on_cancel(self, timeout):
        self.cancelled = True
        if timeout:
            self.timed_out = True
            task = self.task
            if task is not None:
                task.cancel()
        self._wake()

    def on_pause(self, paused):
        self.paused = paused
        if not paused:
            self._wake()

    def on_eof(self):
        """The master closed the channel: nothing more will come in, and a
        paused response will never be resumed."""
        if self.paused:
            self.cancelled = True
        self._wake()

    # -- violations

    def _violate(self, what):
        message = "ASGI protocol violation: " + what
        if self.violation is None:
            self.violation = message
        return ProtocolViolation(message)

    def _pairs(self, first, headers, what):
        try:
            return encode_pairs(first, headers, what)
        except ProtocolViolation as exc:
            if self.violation is None:
                self.violation = str(exc)
            raise

    def _bytes(self, value, what):
        try:
            return _as_bytes(value, what)
        except ProtocolViolation as exc:
            if self.violation is None:
                self.violation = str(exc)
            raise

    def _check_type(self, message):
        if self.violation is not None:
            # Once broken, the request stays broken: it ends with ERROR.
            raise ProtocolViolation(self.violation)
        try:
            return message["type"]
        except (TypeError, KeyError, IndexError):
            raise self._violate(
                "send() takes a dict with a 'type' key, not %r" % (message,)
            ) from None

    def _after_done(self, kind):
        """A message after the request completed: the master may already
        use the id for another request, so nothing can be sent; the app
        gets an exception and the error log a line."""
        text = "ASGI protocol violation: %s after the response completed" % kind
        self.w.log("error", "%s (request %s)" % (text, self._describe_request()))
        return ProtocolViolation(text)

    def _describe_request(self):
        scope = self.scope
        return "%s %s" % (scope.get("method", "WEBSOCKET"), scope.get("path"))

    # -- the HTTP response (also a WebSocket's denial response)

    def _response_start(self, message, kind):
        phase = self.phase
        if phase != INIT:
            if phase == DONE:
                raise self._after_done(kind)
            raise self._violate("a second %s" % kind)
        try:
            status = message["status"]
        except KeyError:
            raise self._violate("%s without a status" % kind) from None
        if type(status) is not int and (not isinstance(status, int) or isinstance(status, bool)):
            raise self._violate(
                "%s status must be an int, not %s" % (kind, type(status).__name__)
            )
        status = int(status)
        if not 200 <= status <= 599:
            raise self._violate(
                "%s status %d is out of range (200..599)" % (kind, status)
            )
        try:
            head = encode_pairs(
                _status_lines.get(status) or _status_line(status),
                message.get("headers", ()),
                "header",
            )
        except ProtocolViolation as exc:
            if self.violation is None:
                self.violation = str(exc)
            raise
        if len(head) > MAX_PAYLOAD - 4:
            raise self._violate("response headers larger than 1 MiB")
        self.head = head
        if message.get("trailers", False):
            self.trailers = True
        self.phase = STARTED

    async def _response_body(self, message, kind):
        phase = self.phase
        if phase != STARTED and phase != STREAMING:
            if phase == INIT:
                raise self._violate("%s before %s.start" % (kind, kind[:-5]))
            if phase == DONE:
                raise self._after_done(kind)
            raise self._violate("%s after the last body" % kind)
        body = message.get("body", b"")
        if type(body) is not bytes:
            body = self._bytes(body, "%s body" % kind)
        more = message.get("more_body", False)
        if self.cancelled:
            raise ClientDisconnected("the client disconnected")
        w = self.w
        rid = self.id
        if phase == STARTED:
            head = self.head
            self.head = None
            size = 4 + len(head) + len(body)
            if not more and not self.trailers and size <= MAX_PAYLOAD:
                # The common case: the whole response in one frame.
                self._complete(
                    START_HEADER.pack(START, START_END, 0, rid, size, len(head))
                    + head
                    + body
                )
                return
            room = MAX_PAYLOAD - 4 - len(head)
            first = body if len(body) <= room else body[:room]
            flags = START_TRAILERS if self.trailers else 0
            w.write(
                START_HEADER.pack(
                    START, flags, 0, rid, 4 + len(head) + len(first), len(head)
                )
                + head
                + first
            )
            self.phase = STREAMING
            body = body[len(first) :]
        if body:
            await self._send_body(body)
        if not more:
            if self.trailers:
                self.phase = TRAILING
            else:
                self._complete(frame(END, rid))
        elif w.out_size > w.high_water:
            await self._may_send()

    async def _send_body(self, body):
        w = self.w
        rid = self.id
        size = len(body)
        if size > SMALL_BODY:
            body = memoryview(body)
        pos = 0
        while pos < size:
            if self.paused or self.cancelled:
                await self._may_send()
            chunk = body[pos : pos + MAX_PAYLOAD]
            pos += len(chunk)
            if len(chunk) <= SMALL_BODY:
                w.write(HEADER.pack(BODY, 0, 0, rid, len(chunk)) + chunk)
            else:
                w.write(HEADER.pack(BODY, 0, 0, rid, len(chunk)))
                w.write(chunk)
                if pos < size and w.out_size > w.high_water:
                    await w.drain()

    async def _response_pathsend(self, message):
        kind = "http.response.pathsend"
        phase = self.phase
        if phase != STARTED:
            if phase == INIT:
                raise self._violate("%s before http.response.start" % kind)
            if phase == DONE:
                raise self._after_done(kind)
            raise self._violate("%s after http.response.body" % kind)
        path = message.get("path")
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise self._violate("%s path must be a str, not %s" % (kind, type(path).__name__))
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise IsADirectoryError(
                    "http.response.pathsend: %r is not a regular file" % (path,)
                )
            if self.cancelled:
                raise ClientDisconnected("the client disconnected")
            head = self.head
            self.head = None
            flags = START_TRAILERS if self.trailers else 0
            self.w.write(
                START_HEADER.pack(START, flags, 0, self.id, 4 + len(head), len(head)) + head
            )
            self.phase = STREAMING
            if self.paused:
                await self._may_send()
        except BaseException:
            os.close(fd)
            raise
        # The worker closes its copy once the descriptor is on its way.
        self.w.write_fd(frame(FILE, self.id, FILE_PAYLOAD.pack(0, -1)), fd)
        if self.trailers:
            self.phase = TRAILING
        else:
            self._complete(frame(END, self.id))

    def _response_trailers(self, message):
        kind = "http.response.trailers"
        phase = self.phase
        if phase == DONE:
            raise self._after_done(kind)
        if not self.trailers:
            raise self._violate("%s without \"trailers\": true in http.response.start" % kind)
        if phase != TRAILING:
            raise self._violate("%s before the last http.response.body" % kind)
        data = self._pairs(None, message.get("headers", ()), "trailer")
        if data:
            if self.trailer_parts is None:
                self.trailer_parts = [data]
            else:
                self.trailer_parts.append(data)
        if not message.get("more_trailers", False):
            payload = b"\0".join(self.trailer_parts or ())
            if len(payload) > MAX_PAYLOAD:
                raise self._violate("trailers larger than 1 MiB")
            self.w.write(frame(TRAILERS, self.id, payload))
            self._complete(frame(END, self.id))

    def _early_hint(self, message):
        kind = "http.response.early_hint"
        phase = self.phase
        if phase == DONE:
            raise self._after_done(kind)
        if phase >= STREAMING:
            return  # the final head is on the wire: too late for a 103
        links = message.get("links", ())
        if isinstance(links, (bytes, str)):
            raise self._violate("%s links must be an iterable of bytes" % kind)
        try:
            pairs = [(b"link", link) for link in links]
        except TypeError:
            raise self._violate("%s links must be an iterable of bytes" % kind) from None
        if pairs:
            payload = self._pairs(None, pairs, "link")
            if len(payload) > MAX_PAYLOAD:
                raise self._violate("early hints larger than 1 MiB")
            self.w.write(frame(EARLY_HINT, self.id, payload))

    # -- completing the request

    def _complete(self, data):
        """Queue the frame that completes the request and forget the id."""
        self.phase = DONE
        w = self.w
        requests = w.requests
        if requests.get(self.id) is self:
            del requests[self.id]
        w.write(data)
        if self.waiters:
            self._wake()

    def _error(self, etype, value, tb):
        violation = self.violation
        if violation is not None:
            payload = to_json(
                {"error": violation, "traceback": _format_traceback(etype, value, tb) if tb else ""}
            )
        else:
            payload = to_json(
                {"error": _describe(etype, value), "traceback": _format_traceback(etype, value, tb)}
            )
        self._complete(frame(ERROR, self.id, payload))

    def _incomplete(self):
        """What to say when the app returned: None if complete."""
        phase = self.phase
        if phase == INIT:
            return "the app returned without sending http.response.start"
        if phase == TRAILING:
            return "the app returned without sending http.response.trailers"
        return "the app returned without completing the response"

    def finished(self, exc):
        """The app's coroutine ended (``exc`` None: it returned)."""
        if self.phase == DONE:
            if exc is not None and not isinstance(
                exc, (ClientDisconnected, ProtocolViolation, asyncio.CancelledError)
            ):
                _stderr(
                    "corral: request %d (%s) raised after its response was complete:\n%s"
                    % (self.id, self._describe_request(), _format_traceback(type(exc), exc, exc.__traceback__))
                )
            return
        if self.cancelled:
            if exc is not None and not isinstance(
                exc, (ClientDisconnected, asyncio.CancelledError)
            ):
                _stderr(
                    "corral: request %d (%s) failed after it was cancelled:\n%s"
                    % (self.id, self._describe_request(), _format_traceback(type(exc), exc, exc.__traceback__))
                )
            self._complete(frame(END, self.id, flags=ABORTED))
            return
        if exc is None:
            if self.violation is None:
                self.violation = "ASGI protocol violation: " + self._incomplete()
            self._error(None, None, None)
        else:
            self._error(type(exc), exc, exc.__traceback__)

    async def run(self):
        w = self.w
        try:
            await w.app(self.scope, self.receive, self.send)
        except (Exception, asyncio.CancelledError) as exc:
            self.finished(exc)
        except BaseException as exc:
            # SystemExit, KeyboardInterrupt: the worker ends; say so first.
            self.finished(exc)
            raise
        else:
            if self.phase != DONE:
                self.finished(None)
        finally:
            # (None when the task ran to its end while being created: an
            # eager start, which never entered w.tasks.)
            w.tasks.discard(self.task)


def _stderr(text):
    try:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()
    except Exception:
        pass


class HttpRequest(Base):
    """An ``http`` scope."""

    __slots__ = ("body", "pull", "read_out", "chunk", "body_done")

    def __init__(self, worker, rid, flags, block, body):
        # Base.__init__ and parse_block inlined: this runs for every request.
        self.w = worker
        self.id = rid
        self.task = None
        self.phase = INIT
        self.head = None
        self.trailers = False
        self.trailer_parts = None
        self.cancelled = False
        self.timed_out = False
        self.paused = False
        self.waiters = None
        self.violation = None
        parts = block.split(b"\0")
        n = len(parts)
        if n < 11 or not n & 1:
            _malformed(rid)
        host = parts[7]
        if host:
            port = parts[8]
            try:
                client = (host.decode("utf-8", "surrogateescape"), int(port) if port else 0)
            except ValueError:
                _bad_port(port, rid)
        else:
            client = None
        server = _servers.get((parts[9], parts[10]))
        if server is None:
            server = _server(parts[9], parts[10], rid)
        root = parts[6]
        self.scope = {
            "type": "http",
            "asgi": {"version": ASGI_VERSION, "spec_version": SPEC_VERSION},
            "http_version": _VERSIONS.get(parts[2]) or parts[2].decode("latin-1"),
            "method": _METHODS.get(parts[0]) or parts[0].decode("latin-1"),
            "scheme": _SCHEMES.get(parts[1]) or parts[1].decode("latin-1"),
            "path": parts[3].decode("utf-8", "surrogateescape"),
            "raw_path": parts[4],
            "query_string": parts[5],
            "root_path": root.decode("utf-8", "surrogateescape") if root else "",
            "headers": list(zip(parts[11::2], parts[12::2])) if n > 11 else [],
            "client": client,
            "server": server,
            "state": worker.state.copy(),
            "extensions": {
                "http.response.pathsend": {},
                "http.response.trailers": {},
                "http.response.early_hint": {},
            },
        }
        pull = self.pull = bool(flags & BODY_PULL)
        # The inline bytes: the whole body, or the start of a pulled one.
        self.body = body if (body or not pull) else None
        self.read_out = False
        self.chunk = None
        self.body_done = not pull

    # -- receive

    async def receive(self):
        if self.cancelled or self.phase == DONE:
            return {"type": "http.disconnect"}
        body = self.body
        if body is not None:
            self.body = None
            return {"type": "http.request", "body": body, "more_body": self.pull}
        while True:
            if self.cancelled or self.phase == DONE:
                return {"type": "http.disconnect"}
            if not self.body_done:
                chunk = self.chunk
                if chunk is not None:
                    self.chunk = None
                    if not chunk:
                        self.body_done = True
                    return {"type": "http.request", "body": chunk, "more_body": bool(chunk)}
                if not self.read_out:
                    if self.w.eof:
                        return {"type": "http.disconnect"}
                    self.read_out = True
                    self.w.write(frame(READ, self.id, U32.pack(MAX_PAYLOAD)))
            await self._wait()

    def on_data(self, payload):
        if self.read_out:
            self.read_out = False
            self.chunk = payload
            self._wake()
        # else: the answer to a READ abandoned at CANCEL: dropped

    def on_eof(self):
        Base.on_eof(self)
        if self.read_out:
            # The DATA will never come.
            self.cancelled = True
            self._wake()

    # -- send

    async def send(self, message):
        # _check_type inlined: this runs for every message.
        if self.violation is not None:
            # Once broken, the request stays broken: it ends with ERROR.
            raise ProtocolViolation(self.violation)
        try:
            kind = message["type"]
        except (TypeError, KeyError, IndexError):
            raise self._violate(
                "send() takes a dict with a 'type' key, not %r" % (message,)
            ) from None
        if kind == "http.response.body":
            if self.phase == STARTED and not self.trailers and not self.cancelled:
                # The common case, the whole body in one message, in one
                # frame with the head; _response_body does the rest.
                get = message.get
                body = get("body", b"")
                if type(body) is bytes and not get("more_body", False):
                    head = self.head
                    size = 4 + len(head) + len(body)
                    if size <= MAX_PAYLOAD:
                        self.head = None
                        self._complete(
                            START_HEADER.pack(START, START_END, 0, self.id, size, len(head))
                            + head
                            + body
                        )
                        return
            await self._response_body(message, kind)
        elif kind == "http.response.start":
            if self.cancelled and self.phase != DONE:
                raise ClientDisconnected("the client disconnected")
            self._response_start(message, kind)
        elif kind == "http.response.pathsend":
            await self._response_pathsend(message)
        elif kind == "http.response.trailers":
            if self.cancelled and self.phase != DONE:
                raise ClientDisconnected("the client disconnected")
            self._response_trailers(message)
        elif kind == "http.response.early_hint":
            if self.cancelled and self.phase != DONE:
                raise ClientDisconnected("the client disconnected")
            self._early_hint(message)
        elif self.phase == DONE:
            raise self._after_done(repr(kind))
        else:
            raise self._violate("unexpected message type %r in an http scope" % (kind,))
