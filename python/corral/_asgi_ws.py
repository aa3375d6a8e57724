"""One ASGI WebSocket: its scope, ``receive`` and ``send`` over the
WebSocket frames of docs/PROTOCOL.md ("WebSocket frames").

The master owns the WebSocket protocol itself (handshake, pings, fragments,
UTF-8 checks, sizes); the worker sees whole messages, split into frames of
at most 1 MiB, and acknowledges each one (WS_ACK) when ``receive()`` hands
it to the app, which is the master's flow-control window.
"""

import collections
import struct

from . import ClientDisconnected
from ._asgi_http import (
    ASGI_VERSION,
    DONE,
    INIT,
    SPEC_VERSION,
    Base,
    _address,
    _server,
    parse_block,
)
from ._channel import protocol_error
from ._proto import (
    END,
    HEADER,
    MAX_PAYLOAD,
    U32,
    WS_ACCEPT,
    WS_ACK,
    WS_CLOSE,
    WS_MESSAGE,
    WS_MORE,
    WS_TEXT,
    frame,
)

U16 = struct.Struct("!H")

# States of the socket (the response phase of Base covers a denial).
CONNECTING = 0  # websocket.connect not handed to the app yet
HANDSHAKE = 1  # the app has the connect event and has not answered
OPEN = 2  # accepted
CLOSED = 3  # the app sent websocket.close
GONE = 4  # the client closed or went away

_SCHEMES = {"http": "ws", "https": "wss"}


class WebSocket(Base):
    """A ``websocket`` scope."""

    __slots__ = ("state", "messages", "parts", "text", "disconnect", "denying")

    def __init__(self, worker, rid, flags, block, body):
        Base.__init__(self, worker, rid)
        parts, headers = parse_block(block, rid)
        scheme = parts[1].decode("latin-1")
        subprotocols = []
        for name, value in headers:
            if name == b"sec-websocket-protocol":
                subprotocols.extend(
                    p.strip() for p in value.decode("latin-1").split(",") if p.strip()
                )
        self.scope = {
            "type": "websocket",
            "asgi": {"version": ASGI_VERSION, "spec_version": SPEC_VERSION},
            "http_version": parts[2].decode("latin-1"),
            "scheme": _SCHEMES.get(scheme, scheme),
            "path": parts[3].decode("utf-8", "surrogateescape"),
            "raw_path": parts[4],
            "query_string": parts[5],
            "root_path": parts[6].decode("utf-8", "surrogateescape"),
            "headers": headers,
            "client": _address(parts[7], parts[8], rid, 0) if parts[7] else None,
            "server": _server(parts[9], parts[10], rid),
            "subprotocols": subprotocols,
            "state": worker.state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        self.state = CONNECTING
        self.messages = collections.deque()  # (event, size)
        self.parts = None  # parts of a client message still coming
        self.text = False
        self.disconnect = None  # the websocket.disconnect event, once known
        self.denying = False

    def _describe_request(self):
        return "WEBSOCKET %s" % (self.scope.get("path"),)

    # -- master frames

    def on_message(self, flags, payload):
        if flags & ~(WS_TEXT | WS_MORE):
            protocol_error("malformed WS_MESSAGE for request %d" % self.id)
        if self.parts is None:
            self.parts = [payload]
            self.text = bool(flags & WS_TEXT)
        else:
            self.parts.append(payload)
        if flags & WS_MORE:
            return
        parts = self.parts
        self.parts = None
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if self.disconnect is not None:
            return  # after CANCEL: nobody will read it
        if self.text:
            try:
                event = {"type": "websocket.receive", "text": data.decode("utf-8")}
            except UnicodeDecodeError:
                protocol_error("WS_MESSAGE for request %d is not UTF-8" % self.id)
        else:
            event = {"type": "websocket.receive", "bytes": data}
        self.messages.append((event, len(data)))
        self._wake()

    def on_close(self, payload):
        if len(payload) >= 2:
            code = U16.unpack_from(payload)[0]
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                protocol_error("WS_CLOSE reason for request %d is not UTF-8" % self.id)
        elif not payload:
            code, reason = 1005, ""
        else:
            protocol_error("malformed WS_CLOSE for request %d" % self.id)
        if self.disconnect is None:
            self.disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        # The client is gone: a send() waiting for RESUME raises now.
        self.paused = False
        self._wake()

    def on_cancel(self, timeout):
        # The connection is gone: the app learns at once, messages not read
        # yet are lost with it.
        self.messages.clear()
        self.disconnect = {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        Base.on_cancel(self, timeout)

    def on_eof(self):
        if self.disconnect is None:
            self.messages.clear()
            self.disconnect = {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        self.cancelled = True
        self._wake()

    # -- receive

    async def receive(self):
        if self.state == CONNECTING:
            self.state = HANDSHAKE
            return {"type": "websocket.connect"}
        while True:
            messages = self.messages
            if messages:
                event, size = messages.popleft()
                self.w.write(frame(WS_ACK, self.id, U32.pack(size)))
                return event
            disconnect = self.disconnect
            if disconnect is not None:
                if self.state != CLOSED:
                    self.state = GONE
                return dict(disconnect)
            if self.phase == DONE:
                # Denied with an HTTP response: the connection ends there.
                return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
            await self._wait()

    # -- send

    async def send(self, message):
        kind = self._check_type(message)
        if kind == "websocket.send":
            await self._send_message(message)
        elif kind == "websocket.accept":
            self._accept(message)
        elif kind == "websocket.close":
            self._close(message)
        elif kind == "websocket.http.response.start":
            if self.state >= OPEN:
                raise self._violate("%s after websocket.accept" % kind)
            if self.cancelled and self.phase != DONE:
                raise ClientDisconnected("the client disconnected")
            self._response_start(message, kind)
            self.denying = True
        elif kind == "websocket.http.response.body":
            await self._response_body(message, kind)
        elif self.phase == DONE:
            raise self._after_done(repr(kind))
        else:
            raise self._violate("unexpected message type %r in a websocket scope" % (kind,))

    def _gone(self):
        if self.phase == DONE:
            raise self._after_done("a websocket message")
        raise ClientDisconnected("the WebSocket is closed")

    def _accept(self, message):
        state = self.state
        if self.cancelled or state == GONE or self.disconnect is not None:
            self._gone()
        if state >= OPEN:
            raise self._violate("websocket.accept on a WebSocket that is %s"
                                % ("open" if state == OPEN else "closed"))
        if self.phase != INIT:
            raise self._violate("websocket.accept after websocket.http.response.start")
        subprotocol = message.get("subprotocol")
        if subprotocol is None:
            subprotocol = b""
        elif type(subprotocol) is str:
            try:
                subprotocol = subprotocol.encode("latin-1")
            except UnicodeEncodeError:
                raise self._violate("websocket.accept subprotocol %r is not latin-1" % subprotocol)
        else:
            raise self._violate(
                "websocket.accept subprotocol must be a str, not %s" % type(subprotocol).__name__
            )
        payload = self._pairs(subprotocol, message.get("headers", ()), "header")
        if b"\0" in subprotocol or len(payload) > MAX_PAYLOAD:
            raise self._violate("websocket.accept: invalid subprotocol or headers")
        self.state = OPEN
        self.w.write(frame(WS_ACCEPT, self.id, payload))

    async def _send_message(self, message):
        state = self.state
        if state != OPEN or self.cancelled or self.disconnect is not None:
            if state < OPEN and not self.cancelled and self.disconnect is None:
                raise self._violate("websocket.send before websocket.accept")
            self._gone()
        data = message.get("bytes")
        text = message.get("text")
        if data is not None and text is None:
            if type(data) is not bytes:
                if not isinstance(data, (bytearray, memoryview)):
                    raise self._violate(
                        "websocket.send bytes must be bytes, not %s" % type(data).__name__
                    )
                data = bytes(data)
            flags = 0
        elif text is not None and data is None:
            if type(text) is not str:
                raise self._violate(
                    "websocket.send text must be a str, not %s" % type(text).__name__
                )
            data = text.encode("utf-8")
            flags = WS_TEXT
        else:
            raise self._violate("websocket.send needs exactly one of bytes and text")
        if self.paused:
            await self._may_send()
            if self.disconnect is not None:
                self._gone()
        w = self.w
        rid = self.id
        size = len(data)
        if size <= MAX_PAYLOAD:
            w.write(HEADER.pack(WS_MESSAGE, flags, 0, rid, size) + data)
        else:
            view = memoryview(data)
            for pos in range(0, size, MAX_PAYLOAD):
                if pos and (self.paused or self.cancelled or self.disconnect is not None):
                    # A message cannot be left unfinished: finish it unless
                    # the connection is gone.
                    await self._may_send()
                chunk = view[pos : pos + MAX_PAYLOAD]
                more = WS_MORE if pos + MAX_PAYLOAD < size else 0
                w.write(HEADER.pack(WS_MESSAGE, flags | more, 0, rid, len(chunk)))
                w.write(chunk)
        if w.out_size > w.high_water:
            await self._may_send()

    def _close(self, message):
        state = self.state
        if state == CLOSED:
            return  # closing twice: nothing more to say
        if self.cancelled or state == GONE or self.disconnect is not None:
            self._gone()
        if self.phase != INIT:
            raise self._violate("websocket.close after websocket.http.response.start")
        code = message.get("code", 1000)
        if code is None:
            code = 1000
        if type(code) is not int or not 1000 <= code <= 4999:
            raise self._violate("websocket.close code must be an int in 1000..4999, not %r" % (code,))
        reason = message.get("reason") or ""
        if type(reason) is not str:
            raise self._violate(
                "websocket.close reason must be a str, not %s" % type(reason).__name__
            )
        self.state = CLOSED
        # receive() now answers websocket.disconnect with the app's code.
        self.disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self.w.write(frame(WS_CLOSE, self.id, U16.pack(code) + reason.encode("utf-8")))
        self._wake()

    # -- completion

    def finished(self, exc):
        if (
            exc is None or isinstance(exc, ClientDisconnected)
        ) and self.phase == INIT and not self.cancelled and self.violation is None:
            # Returned (or stopped on a closed socket) without denying over
            # HTTP: END. Not accepted: the master answers 403; accepted and
            # not closed: the master closes with 1000.
            self._complete(frame(END, self.id))
            return
        Base.finished(self, exc)
