"""One running request: the WSGI callables and sending its response."""

import json
import sys
import traceback

from . import ClientDisconnected
from . import _proto as proto
from ._proto import (
    ABORTED,
    END,
    ERROR,
    MAX_PAYLOAD,
    START,
    START_END,
    START_HEADER,
    U32,
    ChannelClosed,
    frame,
)
from ._response import FileWrapper, build_head

# Bounds on what an ERROR or BOOTFAIL carries (characters; even fully
# escaped, the JSON stays under MAX_PAYLOAD).
MAX_TRACEBACK = 128 * 1024
MAX_ERROR_LINE = 8 * 1024


def _to_bytes(data):
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(
        "response body chunks must be bytes, not %s" % type(data).__name__
    )


class Request:
    """One request from the moment it starts: ``start_response``, ``write``,
    the body source for ``wsgi.input``, and sending the response."""

    __slots__ = (
        "chan",
        "id",
        "flags",
        "payload",
        "head",
        "limit",
        "sent",
        "cancelled",
        "paused",
        "read_pending",
        "data",
        "warned",
    )

    def __init__(self, chan, rid, flags, payload):
        self.chan = chan
        self.id = rid
        self.flags = flags
        self.payload = payload
        self.head = None  # encoded status and headers, once start_response ran
        self.limit = None  # body bytes the app's Content-Length still allows
        self.sent = False  # START is on the wire
        self.cancelled = False
        self.paused = False
        self.read_pending = False
        self.data = None
        self.warned = False

    # -- the WSGI callables

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.sent:
                    # Too late to change the response: PEP 3333 says re-raise.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.head is not None:
            raise AssertionError(
                "start_response() called a second time without exc_info"
            )
        self.head, self.limit = build_head(status, headers)
        return self.write

    def write(self, data):
        if self.head is None:
            raise AssertionError("write() called before start_response()")
        if self.chan.running.get(self.id) is not self:
            # The master would take a frame for a finished request as a
            # protocol violation and kill the worker.
            raise AssertionError("write() called after the response was complete")
        self.chan.check()
        if self.cancelled:
            raise ClientDisconnected("the request was cancelled")
        if not data:
            self._send_start()
            return
        if not self._emit(data) and self.cancelled:
            raise ClientDisconnected("the request was cancelled")

    def pull(self, size):
        """Body source for PulledInput: one READ, then wait for its DATA."""
        chan = self.chan
        if chan.running.get(self.id) is not self:
            raise ValueError("wsgi.input read after the response was complete")
        if self.cancelled or chan.eof:
            raise ClientDisconnected("the request was cancelled")
        self.read_pending = True
        chan.send(frame(proto.READ, self.id, U32.pack(size)))
        chan.wait(self._read_done)
        if self.read_pending:
            # Cancelled (or the master went away) while waiting.
            self.read_pending = False
            raise ClientDisconnected("the request was cancelled")
        data = self.data
        self.data = None
        return data

    def _read_done(self):
        return not self.read_pending or self.cancelled

    # -- sending the response

    def respond(self, result):
        """Send the app's response and complete the request."""
        cls = type(result)
        if (
            (cls is list or cls is tuple)
            and not self.sent
            and self.head is not None
            and not self.cancelled
        ):
            try:
                body = b"".join(result)
            except TypeError:
                pass  # not all bytes: the streaming path names the culprit
            else:
                if self.limit is not None and len(body) > self.limit:
                    body = body[: self.limit]
                    self._warn_cut()
                head = self.head
                size = 4 + len(head) + len(body)
                if size <= MAX_PAYLOAD:
                    # The common case: one frame, one send.
                    self.sent = True
                    chan = self.chan
                    chan.running.pop(self.id, None)  # as in Channel.finish
                    chan.send(
                        START_HEADER.pack(
                            START, START_END, 0, self.id, size, len(head)
                        )
                        + head
                        + body
                    )
                    return
                result = (body,)
        self._stream(result)

    def _stream(self, result):
        done = False  # completed with one START|END frame, see _whole
        try:
            try:
                if not (type(result) is FileWrapper and self._send_file(result)):
                    check = self.chan.check
                    for chunk in result:
                        check()
                        if self.cancelled:
                            break
                        if not chunk:
                            continue
                        if self._whole(chunk):
                            done = True
                            break
                        if not self._emit(chunk):
                            break
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    if done:
                        _close_quietly(close, self.id)
                    else:
                        close()
            if done:
                return
            if not self.cancelled and not self.sent:
                head = self._require_head()
        except Exception:
            if done:
                return
            self.fail()
            return
        if self.cancelled:
            self.chan.finish(self, frame(END, self.id, flags=ABORTED))
        elif self.sent:
            self.chan.finish(self, frame(END, self.id))
        else:
            self.sent = True
            self.chan.finish(
                self,
                START_HEADER.pack(
                    START, START_END, 0, self.id, 4 + len(head), len(head)
                )
                + head,
            )

    def _whole(self, chunk):
        """Send the response as one START|END frame when this first chunk
        holds all the body the app's Content-Length declares. Frameworks
        (Flask, Django) return iterables, not lists, but set Content-Length:
        one frame and one send instead of START, BODY and END. The iterable
        is not read further (a server may stop at Content-Length) and the
        request is complete: nothing more is sent for it."""
        limit = self.limit
        if self.sent or limit is None or type(chunk) is not bytes or len(chunk) < limit:
            return False
        head = self._require_head()
        size = 4 + len(head) + limit
        if size > MAX_PAYLOAD:
            return False
        if len(chunk) > limit:
            self._warn_cut()
            chunk = chunk[:limit]
        self.limit = 0
        self.sent = True
        self.chan.finish(
            self,
            START_HEADER.pack(START, START_END, 0, self.id, size, len(head)) + head + chunk,
        )
        return True

    def _require_head(self):
        if self.head is None:
            raise AssertionError(
                "the app returned a response without calling start_response()"
            )
        return self.head

    def _send_start(self):
        if not self.sent:
            head = self._require_head()
            self.chan.send(
                START_HEADER.pack(START, 0, 0, self.id, 4 + len(head), len(head))
                + head
            )
            self.sent = True

    def _emit(self, data):
        """Send one non-empty body chunk, START first if needed. False when
        the response must stop: cancelled, or cut at Content-Length."""
        if type(data) is not bytes:
            data = _to_bytes(data)
        more = True
        if self.limit is not None:
            if len(data) > self.limit:
                data = data[: self.limit]
                self._warn_cut()
                more = False
            self.limit -= len(data)
            if not data:
                return more
        if not self.sent:
            head = self._require_head()
            room = MAX_PAYLOAD - 4 - len(head)
            first = data if len(data) <= room else data[:room]
            self.chan.send(
                START_HEADER.pack(
                    START, 0, 0, self.id, 4 + len(head) + len(first), len(head)
                )
                + head
                + first
            )
            self.sent = True
            if len(first) == len(data):
                return more
            data = memoryview(data)[len(first) :]
        return self._send_body(data) and more

    def _send_body(self, data):
        for pos in range(0, len(data), MAX_PAYLOAD):
            if not self._may_send():
                return False
            self.chan.send_body(self.id, data[pos : pos + MAX_PAYLOAD])
        return True

    def _may_send(self):
        """Honour PAUSE: block until RESUME. False once cancelled."""
        if self.paused and not self.cancelled:
            self.chan.wait(self._resumed)
            if self.paused and self.chan.eof:
                # Nobody is left to send RESUME.
                self.cancelled = True
        return not self.cancelled

    def _resumed(self):
        return not self.paused or self.cancelled

    def _send_file(self, wrapper):
        """FILE frame for a wrapped regular file; False when the wrapper must
        be iterated instead."""
        info = wrapper.regular_file()
        if info is None:
            return False
        fd, offset, size = info
        count = -1  # to end of file
        if self.limit is not None:
            available = max(size - offset, 0)
            count = min(self.limit, available)
            if available > self.limit:
                self._warn_cut()
            self.limit -= count
        self._send_start()
        self.chan.check()
        if count and self._may_send():
            self.chan.send_fd(
                frame(proto.FILE, self.id, proto.FILE_PAYLOAD.pack(offset, count)),
                fd,
            )
        return True

    def _warn_cut(self):
        if not self.warned:
            self.warned = True
            self.chan.send(
                frame(
                    proto.LOG,
                    self.id,
                    to_json(
                        {
                            "level": "warning",
                            "message": "the app sent more body than its "
                            "Content-Length; the response was cut there",
                        }
                    ),
                )
            )

    def fail(self):
        """Complete the request after the exception being handled: ERROR,
        or END ABORTED when the request was cancelled anyway."""
        etype, value, tb = sys.exc_info()
        try:
            if isinstance(value, ChannelClosed):
                raise value
            if self.cancelled:
                if not isinstance(value, ClientDisconnected):
                    sys.stderr.write(
                        "corral: request %d failed after it was cancelled:\n%s"
                        % (self.id, _format_traceback(etype, value, tb))
                    )
                self.chan.finish(self, frame(END, self.id, flags=ABORTED))
            else:
                self.chan.finish(
                    self, frame(ERROR, self.id, error_payload(etype, value, tb))
                )
        finally:
            etype = value = tb = None


def _close_quietly(close, rid):
    """close() of a response that is already complete: its failure can only
    be logged (a frame for a finished request would break the protocol)."""
    try:
        close()
    except Exception:
        sys.stderr.write(
            "corral: close() of the response to request %d failed after it was sent:\n%s"
            % (rid, _format_traceback(*sys.exc_info()))
        )


def _describe(etype, value):
    """``Type: message`` as the last line of a traceback says it."""
    name = etype.__qualname__
    module = etype.__module__
    if module not in ("builtins", "__main__"):
        name = module + "." + name
    try:
        message = str(value)
    except Exception:
        message = "<exception str() failed>"
    line = "%s: %s" % (name, message) if message else name
    if len(line) > MAX_ERROR_LINE:
        line = line[:MAX_ERROR_LINE] + "..."
    return line


def _format_traceback(etype, value, tb):
    # The runtime's own frames above the app's say nothing useful.
    while tb is not None and tb.tb_next is not None and (
        tb.tb_frame.f_code.co_filename.startswith("<corral>/")
    ):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(etype, value, tb))
    if len(text) > MAX_TRACEBACK:
        text = "(traceback truncated)\n..." + text[-MAX_TRACEBACK:]
    return text


def error_payload(etype, value, tb):
    return to_json(
        {
            "error": _describe(etype, value),
            "traceback": _format_traceback(etype, value, tb),
        }
    )


def to_json(obj):
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")
