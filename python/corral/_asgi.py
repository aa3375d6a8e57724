"""The ASGI worker: an event loop that runs many requests at once over the
same data socket as a WSGI worker (docs/PROTOCOL.md, "Version 2: ASGI
workers").

Threads in an ASGI worker:

- main: runs the event loop (uvloop when importable, else asyncio's own).
  The loop reads the data socket (a reader callback that handles every
  complete frame it holds), answers PING itself (so a blocked loop misses
  its PONG), runs one task per request and writes frames from an output
  queue (gathered writes, with backpressure when the master does not read).
- control: sleeps in ``recv`` on the control socket and answers STEAL with
  an empty RETURNED: an ASGI worker starts every request it reads.

Besides these, the app may start its own (the default executor).
"""

import array
import asyncio
import os
import signal
import socket
import sys
import threading

import corral

from . import _proto as proto
from ._asgi_http import HTTP_EXTENSIONS, WS_EXTENSIONS, HttpRequest, _stderr
from ._asgi_ws import WebSocket
from ._channel import RECV_SIZE, keep_rest, protocol_error
from ._lifespan import Lifespan, StartupFailed
from ._proto import (
    BODY_PULL,
    CANCEL_TIMEOUT,
    HEADER,
    HEADER_SIZE,
    MAX_PAYLOAD,
    U32,
    WEBSOCKET,
    frame,
)
from ._request import to_json

DEFAULT_CONNECTIONS = 1000
# The output queue: send() of a streaming response waits while more than
# HIGH_WATER bytes are queued, until the queue is down to LOW_WATER.
HIGH_WATER = 1 << 20
LOW_WATER = 256 * 1024
# Buffers per sendmsg call (IOV_MAX is 1024 on Linux).
MAX_IOV = 512
_SCM_RIGHTS = getattr(socket, "SCM_RIGHTS", None)
_Task = asyncio.Task
_EAGER = sys.version_info >= (3, 12)
_REQUEST = proto.REQUEST
_NOT_REQUEST_FLAGS = ~(BODY_PULL | WEBSOCKET)
_unpack_u32 = U32.unpack_from
# The name of every request's task (asyncio.current_task().get_name()).
TASK_NAME = "corral-request"


# -- the worker


class _Fd:
    """A frame to send with a descriptor attached (SCM_RIGHTS); the worker
    closes the descriptor once it is sent."""

    __slots__ = ("data", "fd")

    def __init__(self, data, fd):
        self.data = data
        self.fd = fd

    def __len__(self):
        return len(self.data)


class Worker:
    """The data socket, the requests in flight and the output queue."""

    def __init__(self, app, sock, config, loop, state):
        self.app = app
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = loop
        self.state = state
        self.graceful = float(config.get("graceful_timeout") or 30.0)
        self.requests = {}  # id -> request not complete yet
        self.tasks = set()  # every request task still running
        self.thread_id = threading.get_ident()
        # input
        self.buf = bytearray(RECV_SIZE)
        self.view = memoryview(self.buf)
        self.start = 0
        self.end = 0
        self.eof = False
        self.stopping = False
        self.sigterm = False
        self.stopped = loop.create_future()  # set when the worker must stop
        # output
        self.out = []  # bytes, memoryviews and _Fd, in order
        self.out_size = 0
        self.high_water = HIGH_WATER
        self.flushing = False  # a flush is scheduled, or the writer is on
        self.writer_on = False
        self.partial = False  # out[0] is the rest of a frame partly sent
        self.urgent = None  # a frame from the control thread, sent first
        self.wlock = threading.Lock()  # the socket, between the loop and the control thread
        self.closed = False
        self.drain_waiters = []
        self.task_factory = loop.get_task_factory
        self.parsing = False  # in _parse: hold writes for one send after it

    # -- reading

    def on_readable(self):
        try:
            n = self.sock.recv_into(self.view[self.end :])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            n = 0  # reset by the peer: as good as EOF
        if not n:
            self.on_eof()
            return
        self.end += n
        self.parsing = True
        try:
            self._parse()
        finally:
            self.parsing = False
        if self.out and not self.writer_on:
            # Frames made while parsing (responses of requests that ran to
            # their end on an eager start, PONG) go out now, in one send,
            # rather than at the next loop iteration.
            self.flush()

    def _parse(self):
        buf = self.buf
        pos = self.start
        end = self.end
        unpack = HEADER.unpack_from
        length = 0
        while end - pos >= HEADER_SIZE:
            kind, flags, reserved, rid, length = unpack(buf, pos)
            if length > MAX_PAYLOAD:
                protocol_error("frame of %d bytes" % length)
            stop = pos + HEADER_SIZE + length
            if stop > end:
                break
            if reserved:
                protocol_error("reserved header bits set")
            if kind == _REQUEST:
                self._request(rid, flags, pos + HEADER_SIZE, stop)
            else:
                self._route(kind, flags, rid, pos + HEADER_SIZE, stop)
            pos = stop
        keep_rest(self, pos, end, length)

    def _request(self, rid, flags, begin, stop):
        if not rid or flags & _NOT_REQUEST_FLAGS or stop - begin < 4:
            protocol_error("malformed REQUEST %d" % rid)
        mid = begin + 4 + _unpack_u32(self.buf, begin)[0]
        if mid > stop:
            protocol_error("malformed REQUEST %d" % rid)
        requests = self.requests
        if rid in requests:
            protocol_error("REQUEST %d: that id is already in flight" % rid)
        if self.stopping:
            # Stopping: never started, so the master may send it elsewhere.
            self.write(frame(proto.RETURNED, 0, U32.pack(rid)))
            return
        view = self.view
        block = bytes(view[begin + 4 : mid])
        body = bytes(view[mid:stop]) if stop > mid else b""
        if flags & WEBSOCKET:
            req = WebSocket(self, rid, flags, block, body)
        else:
            req = HttpRequest(self, rid, flags, block, body)
        requests[rid] = req
        if self.task_factory() is None:
            # What loop.create_task does, less its checks, and with a name:
            # the default name, "Task-N", is formatted for every task. From
            # 3.12 on the task's first step runs at once (as under
            # asyncio.eager_task_factory): a request that needs no I/O ends
            # here, without a trip through the loop's ready queue.
            if _EAGER:
                task = _Task(req.run(), loop=self.loop, name=TASK_NAME, eager_start=True)
            else:
                task = _Task(req.run(), loop=self.loop, name=TASK_NAME)
        else:
            task = self.loop.create_task(req.run())
        req.task = task
        if not task.done():
            self.tasks.add(task)

    def _route(self, kind, flags, rid, begin, stop):
        if kind == proto.PING:
            if flags or rid or stop - begin > proto.MAX_PING:
                protocol_error("malformed PING")
            self.write(frame(proto.PONG, 0, bytes(self.view[begin:stop])))
            return
        if not rid:
            protocol_error("frame type 0x%02x without a request id" % kind)
        req = self.requests.get(rid)
        if kind == proto.DATA:
            if flags:
                protocol_error("malformed DATA")
            if req is not None and type(req) is HttpRequest:
                req.on_data(bytes(self.view[begin:stop]))
        elif kind == proto.CANCEL:
            if flags & ~CANCEL_TIMEOUT or stop != begin:
                protocol_error("malformed CANCEL")
            if req is not None:
                req.on_cancel(flags & CANCEL_TIMEOUT)
        elif kind == proto.PAUSE or kind == proto.RESUME:
            if flags or stop != begin:
                protocol_error("malformed frame type 0x%02x" % kind)
            if req is not None:
                req.on_pause(kind == proto.PAUSE)
        elif kind == proto.WS_MESSAGE_IN:
            if req is not None:
                if type(req) is not WebSocket:
                    protocol_error("WS_MESSAGE for request %d, which is not a WebSocket" % rid)
                req.on_message(flags, bytes(self.view[begin:stop]))
        elif kind == proto.WS_CLOSE_IN:
            if flags:
                protocol_error("malformed WS_CLOSE")
            if req is not None:
                if type(req) is not WebSocket:
                    protocol_error("WS_CLOSE for request %d, which is not a WebSocket" % rid)
                req.on_close(bytes(self.view[begin:stop]))
        else:
            protocol_error("unexpected frame type 0x%02x" % kind)

    def on_eof(self):
        if self.eof:
            return
        self.eof = True
        try:
            self.loop.remove_reader(self.fd)
        except Exception:
            pass
        for req in list(self.requests.values()):
            req.on_eof()
        self.stop()

    # -- stopping

    def stop(self):
        """Take no more requests; serve() winds down once those running end."""
        self.stopping = True
        if not self.stopped.done():
            self.stopped.set_result(None)

    def on_sigterm(self, signum, frame):
        # A plain signal handler, not the loop's: it runs in the main
        # thread even while the loop is blocked in app code, so a second
        # SIGTERM interrupts that code at once (SystemExit), as in a WSGI
        # worker.
        if self.sigterm:
            raise SystemExit(0)
        self.sigterm = True
        self.loop.call_soon_threadsafe(self.stop)

    def task_done(self, task):
        self.tasks.discard(task)

    async def serve(self, lifespan):
        """Until EOF or SIGTERM, then drain and run lifespan shutdown."""
        await self.stopped
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=self.graceful)
        if self.tasks:
            # Out of time: cancel what is left; requests still in flight end
            # with END ABORTED.
            for req in list(self.requests.values()):
                req.cancelled = True
                req._wake()
            for task in list(self.tasks):
                task.cancel()
            await asyncio.wait(set(self.tasks), timeout=1.0)
        await lifespan.shutdown(self.graceful, self.log)
        await self.flushed(self.graceful)

    # -- writing

    def write(self, data):
        """Queue bytes (whole frames, in order) for the data socket. Loop
        thread only.

        With at most one request in flight and nothing queued, the frame
        goes out at once (as an asyncio transport writes): one request at a
        time should not pay a loop iteration for its flush. Under
        concurrency, frames made in one loop iteration are gathered into
        one sendmsg by a flush at the next."""
        if self.closed:
            return
        if self.flushing:
            # A flush is due at the next loop iteration: join it.
            self.out.append(data)
            self.out_size += len(data)
            return
        if len(self.requests) <= 1 and not self.parsing:
            with self.wlock:
                if self.urgent is None:
                    try:
                        sent = self.sock.send(data)
                    except (BlockingIOError, InterruptedError):
                        sent = 0
                    except OSError:
                        self._lost()
                        return
                    if sent == len(data):
                        return
                    if sent:
                        data = memoryview(data)[sent:]
                        self.partial = True
        self._queue(data)

    def _queue(self, data):
        self.out.append(data)
        self.out_size += len(data)
        if not self.flushing:
            self.flushing = True
            self.loop.call_soon(self.flush)

    def write_fd(self, data, fd):
        """Queue a frame that carries a descriptor; closes ``fd`` once sent."""
        if self.closed or _SCM_RIGHTS is None:
            os.close(fd)
            if not self.closed:
                raise OSError("this platform cannot pass descriptors")
            return
        self._queue(_Fd(data, fd))

    def send(self, data):
        """For corral.ban(): queue a frame, from any thread."""
        if threading.get_ident() == self.thread_id:
            self.write(data)
        else:
            self.loop.call_soon_threadsafe(self.write, data)

    def log(self, level, message):
        """A LOG frame for the master's error log (not tied to a request)."""
        self.write(frame(proto.LOG, 0, to_json({"level": level, "message": message[:16000]})))

    def flush(self):
        with self.wlock:
            self._send_out()
        if self.out or self.urgent:
            if not self.writer_on and not self.closed:
                self.writer_on = True
                self.loop.add_writer(self.fd, self.flush)
        else:
            self.flushing = False
            if self.writer_on:
                self.writer_on = False
                self.loop.remove_writer(self.fd)
        if self.drain_waiters and (self.out_size <= LOW_WATER or self.closed):
            waiters = self.drain_waiters
            self.drain_waiters = []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def _send_out(self):
        """Send what the socket takes, without blocking. Under wlock."""
        sock = self.sock
        out = self.out
        try:
            if self.urgent is not None and not self.partial:
                sent = sock.send(self.urgent)
                self.urgent = self.urgent[sent:] or None
                if self.urgent is not None:
                    return
            while out:
                first = out[0]
                if type(first) is _Fd:
                    sent = sock.sendmsg(
                        [first.data],
                        [(socket.SOL_SOCKET, _SCM_RIGHTS, array.array("i", [first.fd]))],
                    )
                    os.close(first.fd)
                    self.out_size -= sent
                    if sent < len(first.data):
                        out[0] = memoryview(first.data)[sent:]
                        self.partial = True
                        return
                    del out[0]
                    self.partial = False
                    continue
                if len(out) == 1:
                    sent = sock.send(first)
                    count = 1
                else:
                    bufs = []
                    for item in out:
                        if type(item) is _Fd or len(bufs) == MAX_IOV:
                            break
                        bufs.append(item)
                    count = len(bufs)
                    sent = sock.sendmsg(bufs) if count > 1 else sock.send(first)
                self.out_size -= sent
                i = 0
                while i < count:
                    size = len(out[i])
                    if sent < size:
                        break
                    sent -= size
                    i += 1
                del out[:i]
                if i < count:
                    out[0] = memoryview(out[0])[sent:]
                    self.partial = True
                    return
                self.partial = False
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._lost()

    def _lost(self):
        """The master is gone (EPIPE, reset): drop the output and stop."""
        self.closed = True
        for item in self.out:
            if type(item) is _Fd:
                os.close(item.fd)
        self.out.clear()
        self.out_size = 0
        self.urgent = None
        self.loop.call_soon(self.on_eof)

    async def drain(self):
        """Wait until the output queue is down to LOW_WATER."""
        while self.out_size > LOW_WATER and not self.closed:
            fut = self.loop.create_future()
            self.drain_waiters.append(fut)
            await fut

    async def flushed(self, timeout):
        """Wait until everything queued is on the socket (bounded)."""
        deadline = self.loop.time() + timeout
        while (self.out or self.urgent) and not self.closed and self.loop.time() < deadline:
            await asyncio.sleep(0.005)

    def answer_steal(self):
        """Control thread: an empty RETURNED, at once if the socket is at a
        frame boundary, else through the loop."""
        data = frame(proto.RETURNED)
        with self.wlock:
            if not self.partial and self.urgent is None and not self.closed:
                try:
                    sent = self.sock.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    return
                if sent == len(data):
                    return
                self.urgent = data[sent:]
                data = None
        try:
            if data is None:
                self.loop.call_soon_threadsafe(self._kick)
            else:
                self.loop.call_soon_threadsafe(self.write, data)
        except RuntimeError:
            pass  # the loop is closed: the worker is on its way out

    def _kick(self):
        if not self.flushing:
            self.flushing = True
            self.flush()


def _control_loop(sock, worker):
    buf = b""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return
            buf += data
            while len(buf) >= HEADER_SIZE:
                kind, flags, reserved, rid, length = HEADER.unpack_from(buf)
                if kind != proto.STEAL or flags or reserved or rid or length:
                    protocol_error(
                        "unexpected frame type 0x%02x on the control channel" % kind
                    )
                buf = buf[HEADER_SIZE:]
                worker.answer_steal()
    except OSError:
        return


def new_loop():
    """uvloop's loop when it can be imported, else asyncio's."""
    try:
        import uvloop
    except Exception:
        return asyncio.new_event_loop(), "asyncio"
    return uvloop.new_event_loop(), "uvloop"


def hello_info(config, lifespan_status):
    return {
        "version": "3.0",
        "spec_version": "2.5",
        "lifespan": lifespan_status,
        "extensions": list(HTTP_EXTENSIONS + WS_EXTENSIONS),
    }


def serve(app, data_sock, control_sock, config, hello):
    """Run an ASGI worker: lifespan startup, HELLO (``hello(asgi_info)``
    gives its payload), requests until EOF or SIGTERM, lifespan shutdown.
    Returns the exit status."""
    loop, _name = new_loop()
    asyncio.set_event_loop(loop)
    mode = config.get("lifespan") or "auto"
    if mode not in ("auto", "on", "off"):
        mode = "auto"
    lifespan = Lifespan(app, mode)
    try:
        loop.run_until_complete(lifespan.startup())
    except StartupFailed as exc:
        data_sock.sendall(
            frame(proto.BOOTFAIL, 0, to_json({"error": exc.error, "traceback": exc.traceback}))
        )
        _close_loop(loop, 1.0)
        return 1
    worker = Worker(app, data_sock, config, loop, lifespan.state)
    # Our own wakeup fd: a signal that lands in another thread still wakes
    # the loop, so the main thread runs the handler at once.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    loop.add_reader(wake_r, _drain_pipe, wake_r)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    # Before HELLO: the master may send SIGTERM as soon as it has it.
    signal.signal(signal.SIGTERM, worker.on_sigterm)
    data_sock.sendall(frame(proto.HELLO, 0, hello(hello_info(config, lifespan.status))))
    data_sock.setblocking(False)
    corral._master = worker
    threading.Thread(
        target=_control_loop, args=(control_sock, worker), name="corral-control", daemon=True
    ).start()
    loop.add_reader(worker.fd, worker.on_readable)
    try:
        loop.run_until_complete(worker.serve(lifespan))
    finally:
        corral._master = None
    _close_loop(loop, 1.0)
    return 0


def _drain_pipe(fd):
    try:
        while os.read(fd, 512):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def _close_loop(loop, timeout):
    """Cancel what the app left running (background tasks), then close."""
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=timeout))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except Exception as exc:
        _stderr("corral: closing the event loop: %r" % (exc,))
    finally:
        loop.close()
