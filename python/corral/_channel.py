"""The worker end of the data socket: framing, queues, locks.

Threads in a worker:

- main: with ``threads == 1`` it reads the data socket between requests and
  runs the app itself; with ``threads > 1`` it only reads and routes frames.
- control: sleeps in ``recv`` on the control socket and answers STEAL.
- app threads (``threads > 1`` only): take requests in order and run them.

Every read of the data socket and all parsing happen under the channel's
input lock, so the control thread can drain the socket to answer STEAL
without racing the main thread. Nobody blocks while holding that lock:
waits are a ``poll`` outside it, then a non-blocking ``recv`` under it.
"""

import collections
import os
import select
import socket
import sys
import threading

from . import _proto as proto
from ._proto import (
    ABORTED,
    BODY,
    BODY_PULL,
    END,
    HEADER,
    HEADER_SIZE,
    MAX_PAYLOAD,
    U32,
    ChannelClosed,
    frame,
)
from ._request import Request

EXIT_PROTOCOL = 70

RECV_SIZE = 256 * 1024
# Below this much free space after the data, the next recv would be short:
# move the partial frame to the front first.
MIN_ROOM = 16 * 1024


def keep_rest(reader, pos, end, length):
    """After parsing up to ``pos`` of ``reader.buf[:end]``: keep the
    incomplete frame that starts at ``pos`` (``length``: its payload size,
    if its header is in) where the next recv can complete it. The buffer is
    compacted when the frame would not fit after ``pos`` or fewer than
    MIN_ROOM bytes are free, and grown when the frame is larger than the
    buffer. ``reader`` has ``buf``, ``view``, ``start`` and ``end``."""
    buf = reader.buf
    reader.start = pos
    have = end - pos
    if not have:
        reader.start = reader.end = 0
        return
    need = HEADER_SIZE + length if have >= HEADER_SIZE else HEADER_SIZE
    if pos + need > len(buf) or len(buf) - end < MIN_ROOM:
        if need > len(buf):
            grown = bytearray(max(need, RECV_SIZE))
            grown[:have] = buf[pos:end]
            reader.buf = grown
            reader.view = memoryview(grown)
        else:
            buf[:have] = buf[pos:end]
        reader.start = 0
        reader.end = have
# Idle waits wake up this often to look at the stop flag, in case the app
# took the signal wakeup fd for itself.
IDLE_POLL_MS = 1000
STOP_POLL_MS = 50
STEAL_LOCK_TIMEOUT = 0.05
# Chunks up to this size are copied behind their frame header so the frame
# goes out in one send; larger ones are sent from where they are.
SMALL_SEND = 64 * 1024


def protocol_error(message):
    """The master broke the protocol, so the channel cannot be trusted: exit
    at once with status 70, from whichever thread noticed."""
    try:
        sys.stderr.write("corral worker: protocol error: %s\n" % message)
        sys.stderr.flush()
    finally:
        os._exit(EXIT_PROTOCOL)


def _noop():
    pass


class Channel:
    """The worker end of the data socket.

    Owns the receive buffer, the queue of requests not yet started
    (``pending``), the running requests (``running``, for routing DATA,
    CANCEL, PAUSE and RESUME to them) and the locks.
    """

    def __init__(self, sock, threaded):
        self.sock = sock
        self.threaded = threaded
        self.lock = threading.Lock()  # the input lock
        # Threaded mode: app threads wait on `work` for requests; a request
        # waits on `changed` for its DATA, RESUME or CANCEL.
        self.work = threading.Condition(self.lock)
        self.changed = threading.Condition(self.lock)
        self.wlock = threading.Lock()  # one frame at a time on the wire
        self.buf = bytearray(RECV_SIZE)
        self.view = memoryview(self.buf)
        self.start = 0
        self.end = 0
        self.pending = collections.deque()  # (id, flags, payload)
        self.running = {}  # id -> Request
        self.eof = False
        self.stopping = False
        # Written by the C signal handler (set_wakeup_fd) and by the control
        # thread, so that the main thread's poll returns.
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.poller = select.poll()
        self.poller.register(sock.fileno(), select.POLLIN)
        self.poller.register(self.wake_r, select.POLLIN)
        self.quick = select.poll()
        self.quick.register(sock.fileno(), select.POLLIN)
        # In threaded mode the main thread routes frames as they come, so
        # app threads have nothing to look at between chunks.
        self.check = _noop if threaded else self._check

    # -- writing

    def send(self, data):
        with self.wlock:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None

    def send_body(self, rid, data):
        header = HEADER.pack(BODY, 0, 0, rid, len(data))
        if len(data) <= SMALL_SEND:
            self.send(header + data)
            return
        with self.wlock:
            try:
                self.sock.sendall(header)
                self.sock.sendall(data)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None

    def send_fd(self, data, fd):
        with self.wlock:
            try:
                sent = socket.send_fds(self.sock, [data], [fd])
                if sent < len(data):
                    self.sock.sendall(data[sent:])
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None

    def finish(self, req, data):
        """Send the frame that completes ``req``. It leaves ``running``
        first: once the master has the frame it may reuse the id."""
        self.running.pop(req.id, None)
        self.send(data)

    # -- reading (all under self.lock)

    def _recv(self):
        """Read what the socket holds, without blocking, and handle every
        complete frame. False when there was nothing to read."""
        if self.eof:
            return False
        try:
            n = self.sock.recv_into(
                self.view[self.end :], 0, socket.MSG_DONTWAIT
            )
        except BlockingIOError:
            return False
        except OSError:
            n = 0  # reset by the peer: as good as EOF
        if not n:
            self.eof = True
            if self.threaded:
                self.work.notify_all()
                self.changed.notify_all()
            return True
        self.end += n
        self._parse()
        return True

    def _parse(self):
        buf = self.buf
        view = self.view
        pos = self.start
        end = self.end
        unpack = HEADER.unpack_from
        length = 0
        added = 0
        routed = False
        while end - pos >= HEADER_SIZE:
            kind, flags, reserved, rid, length = unpack(buf, pos)
            if length > MAX_PAYLOAD:
                protocol_error("frame of %d bytes" % length)
            stop = pos + HEADER_SIZE + length
            if stop > end:
                break
            if reserved:
                protocol_error("reserved header bits set")
            if kind == proto.REQUEST:
                if (
                    not rid
                    or flags & ~BODY_PULL
                    or length < 4
                    or U32.unpack_from(buf, pos + HEADER_SIZE)[0] > length - 4
                ):
                    protocol_error("malformed REQUEST %d" % rid)
                self.pending.append(
                    (rid, flags, view[pos + HEADER_SIZE : stop].tobytes())
                )
                added += 1
            else:
                self._route(
                    kind, flags, rid, view[pos + HEADER_SIZE : stop].tobytes()
                )
                routed = True
            pos = stop
        keep_rest(self, pos, end, length)
        if self.threaded:
            if added:
                self.work.notify(added)
            if routed:
                self.changed.notify_all()

    def _route(self, kind, flags, rid, payload):
        if kind == proto.DATA:
            if flags or not rid:
                protocol_error("malformed DATA")
            req = self.running.get(rid)
            # A DATA nobody waits for answers a READ that was abandoned when
            # the request was cancelled: dropped.
            if req is not None and req.read_pending:
                req.data = payload
                req.read_pending = False
        elif kind in (proto.CANCEL, proto.PAUSE, proto.RESUME):
            if flags or not rid or payload:
                protocol_error("malformed frame type 0x%02x" % kind)
            req = self.running.get(rid)
            if kind == proto.CANCEL:
                if req is not None:
                    req.cancelled = True
                else:
                    self._drop_pending(rid)
            elif req is not None:
                req.paused = kind == proto.PAUSE
        elif kind == proto.PING:
            if flags or rid or len(payload) > proto.MAX_PING:
                protocol_error("malformed PING")
            self.send(frame(proto.PONG, 0, payload))
        else:
            protocol_error("unexpected frame type 0x%02x" % kind)

    def _drop_pending(self, rid):
        for entry in self.pending:
            if entry[0] == rid:
                self.pending.remove(entry)
                self.send(frame(END, rid, flags=ABORTED))
                return

    def _start(self):
        rid, flags, payload = self.pending.popleft()
        req = self.running[rid] = Request(self, rid, flags, payload)
        return req

    def _sleep(self, timeout_ms):
        """Wait, without the lock, until the socket is readable, the wake
        pipe was written, or the timeout passed."""
        for fd, _ in self.poller.poll(timeout_ms):
            if fd == self.wake_r:
                try:
                    while os.read(self.wake_r, 512):
                        pass
                except BlockingIOError:
                    pass

    def wake(self):
        try:
            os.write(self.wake_w, b"\0")
        except BlockingIOError:
            pass  # full: a wake-up is pending anyway

    # -- single-thread mode (main thread only)

    def take(self):
        """Start the oldest pending request; None when the worker stops."""
        lock = self.lock
        pending = self.pending
        while True:
            with lock:
                if self.stopping or self.eof:
                    return None
                if pending:
                    return self._start()
                if self._recv():
                    continue
            self._sleep(IDLE_POLL_MS)

    def _check(self):
        """Between response chunks: pick up CANCEL, PAUSE and PING without
        blocking (one poll call when nothing arrived)."""
        if self.quick.poll(0):
            with self.lock:
                self._recv()

    def wait(self, ready):
        """Block until ``ready()`` (evaluated under the lock) or EOF."""
        if self.threaded:
            with self.changed:
                while not (ready() or self.eof):
                    self.changed.wait()
            return
        while True:
            with self.lock:
                if ready() or self.eof:
                    return
                if self._recv():
                    continue
            self._sleep(IDLE_POLL_MS)

    # -- threaded mode

    def take_threaded(self):
        """App threads: start the oldest pending request, waiting for one;
        None when the worker stops."""
        with self.work:
            while not (self.pending or self.stopping or self.eof):
                self.work.wait()
            if self.stopping or self.eof:
                return None
            return self._start()

    def pump(self):
        """Main thread in threaded mode: read and route frames until EOF, or
        until a stop was asked for and no request is running any more."""
        while True:
            with self.lock:
                got = self._recv()
                if self.eof:
                    return
                if self.stopping:
                    self.work.notify_all()
                    if not self.running:
                        return
            if not got:
                self._sleep(STOP_POLL_MS if self.stopping else IDLE_POLL_MS)

    # -- both modes

    def steal(self):
        """Control thread: give back every request not started yet."""
        ids = []
        if self.lock.acquire(timeout=STEAL_LOCK_TIMEOUT):
            try:
                while self._recv() and not self.eof:
                    pass
                ids = [entry[0] for entry in self.pending]
                self.pending.clear()
            finally:
                self.lock.release()
            # The drain may have consumed frames the main thread is polling
            # for (DATA, CANCEL, RESUME).
            if not self.threaded:
                self.wake()
        self.send(_returned(ids))

    def return_unstarted(self):
        """On the way out: hand back the requests that will never start, so
        the master re-dispatches them instead of counting them as lost."""
        with self.lock:
            while self._recv() and not self.eof:
                pass
            ids = [entry[0] for entry in self.pending]
            self.pending.clear()
        if ids:
            try:
                self.send(_returned(ids))
            except ChannelClosed:
                pass


def _returned(ids):
    return frame(proto.RETURNED, 0, b"".join([U32.pack(i) for i in ids]))
