"""A stand-in for the Go master: starts a real worker through boot.py and
speaks the protocol to it over socketpairs, with the frames the spec
defines."""

import collections
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest
import zipfile

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")
with open(os.path.join(PYTHON_DIR, "boot.py")) as _f:
    BOOT_SOURCE = _f.read()

HEADER = struct.Struct("!BBHII")
MiB = 1 << 20

BOOT, REQUEST, DATA, CANCEL, PAUSE, RESUME, PING, STEAL = (
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x30)
HELLO, BOOTFAIL, START, BODY, FILE, END, ERROR, READ, RETURNED, PONG, LOG = (
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A)
BODY_PULL = START_END = ABORTED = 0x01

TIMEOUT = 10.0

# The worker expects its sockets on fds 3 and 4. subprocess cannot map
# descriptors, so a tiny launcher moves them there and execs the real
# `python -c BOOTSTRAP`, as the master does.
LAUNCHER = """
import fcntl, os, sys
fds = [int(sys.argv[1]), int(sys.argv[2])]
high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds]
for fd in fds:
    os.close(fd)
os.dup2(high[0], 3)
os.dup2(high[1], 4)
os.execv(sys.executable, [sys.executable, "-c", sys.argv[3]])
"""

_zip_cache = []


def package_zip():
    """The corral package as the master ships it in BOOT."""
    if not _zip_cache:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            root = os.path.join(PYTHON_DIR, "corral")
            for name in sorted(os.listdir(root)):
                if name.endswith(".py"):
                    archive.write(os.path.join(root, name), "corral/" + name)
        _zip_cache.append(out.getvalue())
    return _zip_cache[0]


def encode(kind, rid=0, payload=b"", flags=0):
    return HEADER.pack(kind, flags, 0, rid, len(payload)) + payload


def environ_payload(pairs, body=b""):
    text = "\0".join(k + "\0" + v for k, v in pairs).encode("latin-1")
    return struct.pack("!I", len(text)) + text + body


class Frame(collections.namedtuple("Frame", "kind flags id payload fd")):
    def json(self):
        return json.loads(self.payload.decode("utf-8"))

    @property
    def completes(self):
        return (
            (self.kind == START and self.flags & START_END)
            or self.kind in (END, ERROR)
        )


class Response:
    """The frames of one request, decoded."""

    def __init__(self, frames):
        self.frames = frames
        self.kinds = [f.kind for f in frames]
        self.status = None
        self.headers = []
        self.error = None
        self.aborted = False
        self.logs = []
        body = []
        for f in frames:
            if f.kind == START:
                n = struct.unpack("!I", f.payload[:4])[0]
                parts = f.payload[4 : 4 + n].decode("latin-1").split("\0")
                self.status = parts[0]
                self.headers = list(zip(parts[1::2], parts[2::2]))
                body.append(f.payload[4 + n :])
            elif f.kind == BODY:
                body.append(f.payload)
            elif f.kind == FILE:
                offset, count = struct.unpack("!Qq", f.payload)
                body.append(read_fd(f.fd, offset, count))
            elif f.kind == END:
                self.aborted = bool(f.flags & ABORTED)
            elif f.kind == ERROR:
                self.error = f.json()
            elif f.kind == LOG:
                self.logs.append(f.json())
        self.body = b"".join(body)

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def read_fd(fd, offset, count):
    chunks = []
    while count:
        data = os.pread(fd, MiB if count < 0 else min(count, MiB), offset)
        if not data:
            break
        chunks.append(data)
        offset += len(data)
        if count > 0:
            count -= len(data)
    return b"".join(chunks)


class Master:
    """One worker process and the master's ends of its sockets."""

    def __init__(self, app, threads=1, mode="serve", pythonpath=(APPS_DIR,),
                 chdir="", environ=None, worker_id=1, multiprocess=True,
                 config=None, boot=True):
        self.data, child_data = socket.socketpair()
        self.control, child_control = socket.socketpair()
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(child_data.fileno()),
             str(child_control.fileno()), BOOT_SOURCE],
            pass_fds=(child_data.fileno(), child_control.fileno()),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        child_data.close()
        child_control.close()
        self.data.settimeout(TIMEOUT)
        self.output_lines = []
        self._output_cond = threading.Condition()
        self._output_thread = threading.Thread(target=self._read_output, daemon=True)
        self._output_thread.start()
        self.buf = bytearray()
        self.fds = collections.deque()
        self.backlog = []
        self.bodies = {}  # id -> body not sent yet, for BODY_PULL requests
        self.reads = []  # (id, size) of every READ answered
        self.hello = None
        self.config = {
            "protocol": 1,
            "mode": mode,
            "app": app,
            "worker_id": worker_id,
            "threads": threads,
            "multiprocess": multiprocess,
            "chdir": chdir,
            "pythonpath": list(pythonpath),
            "environ": environ if environ is not None else {
                "SERVER_SOFTWARE": "corral/0.1.0", "SCRIPT_NAME": ""},
        }
        self.config.update(config or {})
        if boot:
            self.boot()

    # -- process

    def _read_output(self):
        for line in iter(self.proc.stdout.readline, b""):
            with self._output_cond:
                self.output_lines.append(line.decode("utf-8", "replace"))
                self._output_cond.notify_all()

    @property
    def output(self):
        with self._output_cond:
            return "".join(self.output_lines)

    def wait_output(self, text, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        with self._output_cond:
            while text not in "".join(self.output_lines):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "worker never printed %r; output:\n%s"
                        % (text, "".join(self.output_lines)))
                self._output_cond.wait(left)

    def wait_exit(self, timeout=TIMEOUT):
        code = self.proc.wait(timeout)
        self._output_thread.join(timeout)
        return code

    def close(self):
        for sock in (self.data, self.control):
            sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._output_thread.join(TIMEOUT)
        self.proc.stdout.close()
        while self.fds:
            os.close(self.fds.popleft())

    def signal(self, signum):
        os.kill(self.proc.pid, signum)

    # -- frames

    def boot(self):
        config = json.dumps(self.config).encode()
        self.send(BOOT, 0, struct.pack("!I", len(config)) + config + package_zip())
        self.hello = self.recv()
        return self.hello

    def send(self, kind, rid=0, payload=b"", flags=0):
        self.data.sendall(encode(kind, rid, payload, flags))

    def steal(self):
        self.control.sendall(encode(STEAL))

    def request(self, rid, path="/", query="", method="GET", body=b"",
                pull=False, headers=(), extra=()):
        self.data.sendall(self.request_frame(
            rid, path, query, method, body, pull, headers, extra))

    def request_frame(self, rid, path="/", query="", method="GET", body=b"",
                      pull=False, headers=(), extra=()):
        pairs = [
            ("REQUEST_METHOD", method), ("PATH_INFO", path),
            ("QUERY_STRING", query), ("SERVER_NAME", "localhost"),
            ("SERVER_PORT", "8000"), ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REMOTE_ADDR", "127.0.0.1"), ("REMOTE_PORT", "40000"),
            ("RAW_URI", path + ("?" + query if query else "")),
            ("REQUEST_URI", path + ("?" + query if query else "")),
            ("wsgi.url_scheme", "http"),
        ]
        if body or method in ("POST", "PUT"):
            pairs.append(("CONTENT_LENGTH", str(len(body))))
            pairs.append(("CONTENT_TYPE", "application/octet-stream"))
        for name, value in headers:
            pairs.append(("HTTP_" + name.upper().replace("-", "_"), value))
        pairs.extend(extra)
        if pull:
            self.bodies[rid] = body
            return encode(REQUEST, rid, environ_payload(pairs), BODY_PULL)
        return encode(REQUEST, rid, environ_payload(pairs, body))

    def _read_more(self, timeout):
        self.data.settimeout(timeout)
        data, ancdata, _flags, _addr = self.data.recvmsg(
            1 << 18, socket.CMSG_SPACE(16 * 4))
        for level, kind, cdata in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(cdata) - len(cdata) % 4
                self.fds.extend(struct.unpack("%di" % (usable // 4), cdata[:usable]))
        if not data:
            raise EOFError("the worker closed the data socket")
        self.buf += data

    def _next_raw(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= HEADER.size:
                kind, flags, reserved, rid, length = HEADER.unpack_from(self.buf)
                assert reserved == 0, "reserved bits set"
                assert length <= MiB, "frame of %d bytes" % length
                if len(self.buf) >= HEADER.size + length:
                    payload = bytes(self.buf[HEADER.size : HEADER.size + length])
                    del self.buf[: HEADER.size + length]
                    fd = self.fds.popleft() if kind == FILE else None
                    return Frame(kind, flags, rid, payload, fd)
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no frame from the worker")
            self._read_more(left)

    def recv(self, match=None, timeout=TIMEOUT, answer_reads=True):
        """The next frame (matching ``match`` if given; others are kept for
        later calls). READs of pulled bodies are answered on the way."""
        for i, f in enumerate(self.backlog):
            if match is None or match(f):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            f = self._next_raw(max(deadline - time.monotonic(), 0.001))
            if f.kind == READ and answer_reads and f.id in self.bodies:
                self.answer_read(f)
                continue
            if match is None or match(f):
                return f
            self.backlog.append(f)

    def answer_read(self, f):
        (size,) = struct.unpack("!I", f.payload)
        assert 1 <= size <= MiB, "READ of %d bytes" % size
        self.reads.append((f.id, size))
        body = self.bodies[f.id]
        chunk, self.bodies[f.id] = body[:size], body[size:]
        self.send(DATA, f.id, chunk)

    def collect(self, rid, timeout=TIMEOUT):
        """Every frame of request ``rid`` up to the one that completes it."""
        frames = []
        while True:
            f = self.recv(lambda f: f.id == rid, timeout)
            frames.append(f)
            if f.completes:
                return Response(frames)

    def get(self, rid, path="/", **kwargs):
        self.request(rid, path, **kwargs)
        return self.collect(rid)

    def assert_quiet(self, seconds):
        """Nothing arrives for a while."""
        try:
            f = self.recv(timeout=seconds)
        except socket.timeout:
            return
        raise AssertionError("unexpected frame %r" % (f,))


class WorkerTestCase(unittest.TestCase):
    def start(self, app, **kwargs):
        master = Master(app, **kwargs)
        self.addCleanup(master.close)
        return master

    def serve(self, app="scenarios:app", **kwargs):
        """A worker that booted and said HELLO."""
        master = self.start(app, **kwargs)
        self.assertEqual(master.hello.kind, HELLO, master.hello.payload)
        return master


# -- ASGI workers (protocol version 2)

WS_MESSAGE_IN, WS_CLOSE_IN = 0x09, 0x0A
TRAILERS, EARLY_HINT = 0x1E, 0x1F
WS_ACCEPT, WS_MESSAGE, WS_CLOSE, WS_ACK = 0x20, 0x21, 0x22, 0x23
WEBSOCKET = 0x04
CANCEL_TIMEOUT = 0x01
START_TRAILERS = 0x02
WS_TEXT, WS_MORE = 0x01, 0x02

DEFAULT_HEADERS = (("host", "localhost:8000"), ("user-agent", "test/1.0"))


def scope_block(method="GET", scheme="http", version="1.1", path=b"/",
                raw_path=None, query=b"", root_path=b"",
                client=(b"127.0.0.1", b"40000"), server=(b"127.0.0.1", b"8000"),
                headers=DEFAULT_HEADERS):
    """The scope block of an ASGI REQUEST (PROTOCOL.md, version 2)."""

    def b(value):
        return value if isinstance(value, bytes) else value.encode("utf-8")

    path = b(path)
    fields = [b(method), b(scheme), b(version), path,
              b(raw_path) if raw_path is not None else path, b(query),
              b(root_path), b(client[0]), b(client[1]), b(server[0]), b(server[1])]
    for name, value in headers:
        fields.append(b(name))
        fields.append(b(value))
    return b"\0".join(fields)


class AsgiMaster(Master):
    """A master that boots a worker with protocol 2."""

    def __init__(self, app, interface="auto", lifespan="auto", connections=100,
                 graceful=5.0, config=None, **kwargs):
        cfg = {"protocol": 2, "interface": interface, "lifespan": lifespan,
               "worker_connections": connections, "graceful_timeout": graceful,
               "root_path": ""}
        cfg.update(config or {})
        Master.__init__(self, app, config=cfg, **kwargs)

    def asgi_frame(self, rid, path="/", body=b"", pull=False, websocket=False, **scope):
        block = scope_block(path=path, **scope)
        flags = (BODY_PULL if pull else 0) | (WEBSOCKET if websocket else 0)
        if pull:
            self.bodies[rid] = body
            body = b""
        return encode(REQUEST, rid, struct.pack("!I", len(block)) + block + body, flags)

    def asgi(self, rid, path="/", **kwargs):
        self.data.sendall(self.asgi_frame(rid, path, **kwargs))

    def asgi_get(self, rid, path="/", **kwargs):
        self.asgi(rid, path, **kwargs)
        return self.collect(rid)

    def websocket(self, rid, path="/", **kwargs):
        kwargs.setdefault("scheme", "http")
        self.asgi(rid, path, websocket=True, **kwargs)

    def ws_send(self, rid, data, more=False):
        flags = (WS_TEXT if isinstance(data, str) else 0) | (WS_MORE if more else 0)
        payload = data.encode("utf-8") if isinstance(data, str) else data
        self.send(WS_MESSAGE_IN, rid, payload, flags)

    def ws_close(self, rid, code=1000, reason=""):
        self.send(WS_CLOSE_IN, rid, struct.pack("!H", code) + reason.encode("utf-8"))


class AsgiTestCase(WorkerTestCase):
    def asgi(self, app="asgi_scenarios:app", **kwargs):
        master = AsgiMaster(app, **kwargs)
        self.addCleanup(master.close)
        self.assertEqual(master.hello.kind, HELLO, master.hello.payload)
        return master
