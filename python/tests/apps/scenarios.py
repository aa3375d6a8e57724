"""One WSGI app with a behaviour per path, for the worker tests.

Markers printed to stderr ("closed TAG", "started TAG") let the tests see
what happened inside the worker.
"""

import atexit
import hashlib
import io
import json
import sys
import threading
import time
from urllib.parse import parse_qs

import corral

TEXT = [("Content-Type", "text/plain")]


@atexit.register
def _goodbye():
    sys.stderr.write("atexit ran\n")
    sys.stderr.flush()


def mark(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class Tracked:
    """An iterable that reports close(); optionally raises or never ends."""

    def __init__(self, tag, chunks, fail=False, forever=False, close_fails=False):
        self.tag = tag
        self.chunks = chunks
        self.fail = fail
        self.forever = forever
        self.close_fails = close_fails

    def __iter__(self):
        for chunk in self.chunks:
            yield chunk
        if self.fail:
            raise RuntimeError("iteration failed")
        while self.forever:
            yield b"x" * 1024

    def close(self):
        mark("closed " + self.tag)
        if self.close_fails:
            raise OSError("close failed")


def app(environ, start_response):
    query = {k: v[-1] for k, v in parse_qs(environ["QUERY_STRING"], keep_blank_values=True).items()}
    handler = ROUTES[environ["PATH_INFO"].strip("/") or "hello"]
    return handler(environ, start_response, query)


def hello(environ, start_response, query):
    start_response("200 OK", TEXT)
    return [b"Hello, world!"]


def as_tuple(environ, start_response, query):
    start_response("200 OK", TEXT)
    return (b"Hello, ", b"tuple!")


def empty(environ, start_response, query):
    start_response("204 No Content", [])
    return []


def empty_generator(environ, start_response, query):
    start_response("200 OK", TEXT)
    return iter(())


def stream(environ, start_response, query):
    start_response("200 OK", TEXT)
    yield b"one"
    yield b""
    yield b"two"
    yield b"three"


def stream_then_read(environ, start_response, query):
    """The first chunk must leave before the body is read: proof that a
    generator is streamed, not collected."""
    start_response("200 OK", TEXT)
    yield b"first;"
    yield environ["wsgi.input"].read()


def big(environ, start_response, query):
    start_response("200 OK", TEXT)
    size = int(query["size"])
    data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    if query.get("generator"):
        return iter([data])
    return [data]


def many(environ, start_response, query):
    start_response("200 OK", TEXT)
    count = int(query.get("count", 20))
    delay = float(query.get("delay", 0))
    for i in range(count):
        if delay:
            time.sleep(delay)
        yield b"%04d;" % i


def write(environ, start_response, query):
    out = start_response("200 OK", TEXT)
    out(b"hello ")
    return [b"world"]


def write_empty(environ, start_response, query):
    out = start_response("200 OK", TEXT)
    out(b"")
    return Tracked("write_empty", [])


def exc_info_before(environ, start_response, query):
    start_response("200 OK", TEXT)
    try:
        raise ValueError("changed my mind")
    except ValueError:
        start_response("500 Internal Server Error", TEXT, sys.exc_info())
    return [b"recovered"]


def twice(environ, start_response, query):
    start_response("200 OK", TEXT)
    start_response("404 Not Found", TEXT)
    return [b"never"]


def exc_info_after(environ, start_response, query):
    start_response("200 OK", TEXT)
    yield b"partial"
    try:
        raise KeyError("late")
    except KeyError:
        start_response("500 Internal Server Error", TEXT, sys.exc_info())
    yield b"never"


def fail(environ, start_response, query):
    raise ValueError("boom")


def fail_in_iteration(environ, start_response, query):
    start_response("200 OK", TEXT)
    return Tracked("fail_in_iteration", [b"a"], fail=True)


def tracked(environ, start_response, query):
    start_response("200 OK", TEXT)
    return Tracked(query.get("tag", "tracked"), [b"a", b"b"],
                   close_fails=bool(query.get("close_fails")))


def infinite(environ, start_response, query):
    start_response("200 OK", TEXT)
    return Tracked(query.get("tag", "infinite"), [], forever=True)


def content_length(environ, start_response, query):
    start_response("200 OK", [("Content-Length", query["cl"])] + TEXT)
    chunks = [c.encode() for c in query["chunks"].split(",")]
    if query.get("generator"):
        return Tracked(query.get("tag", "content_length"), chunks,
                       close_fails=bool(query.get("close_fails")))
    return chunks


def bad_head(environ, start_response, query):
    kind = query["kind"]
    status = "200 OK"
    headers = list(TEXT)
    if kind == "status":
        status = query["status"]
    elif kind == "crlf":
        headers.append(("X-Evil", "a\r\nSet-Cookie: x=1"))
    elif kind == "lf":
        headers.append(("X-Evil", "a\nb"))
    elif kind == "nul":
        headers.append(("X-Evil", "a\0b"))
    elif kind == "name":
        headers.append((query["name"], "v"))
    elif kind == "unicode":
        headers.append(("X-Snow", "\u2603"))
    elif kind == "bytes":
        headers.append((b"X-Bytes", "v"))
    elif kind == "not_tuple":
        headers.append("X-Thing: v")
    elif kind == "cl":
        headers.append(("Content-Length", "12abc"))
    start_response(status, headers)
    return [b"should not be sent"]


def no_start_response(environ, start_response, query):
    return [b"x"]


def str_chunk(environ, start_response, query):
    start_response("200 OK", TEXT)
    return ["text, not bytes"]


def none_result(environ, start_response, query):
    start_response("200 OK", TEXT)
    return None


def file(environ, start_response, query):
    f = open(query["path"], "rb")
    f.seek(int(query.get("offset", 0)))
    headers = list(TEXT)
    if "cl" in query:
        headers.append(("Content-Length", query["cl"]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f)


def file_like(environ, start_response, query):
    start_response("200 OK", TEXT)
    data = b"0123456789" * 3
    return environ["wsgi.file_wrapper"](io.BytesIO(data), 4)


def slow(environ, start_response, query):
    mark("started " + query.get("tag", "slow"))
    time.sleep(float(query.get("seconds", 0.5)))
    start_response("200 OK", TEXT)
    return [b"slow " + query.get("tag", "").encode()]


def started(environ, start_response, query):
    mark("started " + query["tag"])
    start_response("200 OK", TEXT)
    return [query["tag"].encode()]


def print_line(environ, start_response, query):
    print("printed " + query["tag"])  # no flush: stdout must be line-buffered
    start_response("200 OK", TEXT)
    return [b"printed"]


def read(environ, start_response, query):
    """Exercise one wsgi.input method; the result comes back as JSON with
    bytes as latin-1 strings."""
    stream = environ["wsgi.input"]
    op = query["op"]
    n = int(query.get("n", 0))
    if op == "read":
        result = [stream.read()]
    elif op == "read_none":
        result = [stream.read(None)]
    elif op == "read_minus":
        result = [stream.read(-1), stream.read(-1)]
    elif op == "read_n":
        result = []
        while True:
            piece = stream.read(n)
            result.append(piece)
            if not piece:
                break
    elif op == "readline":
        result = []
        while True:
            line = stream.readline()
            result.append(line)
            if not line:
                break
    elif op == "readline_n":
        result = []
        while True:
            line = stream.readline(n)
            result.append(line)
            if not line:
                break
    elif op == "readlines":
        result = stream.readlines()
    elif op == "readlines_hint":
        result = stream.readlines(n) + [b"--"] + stream.readlines()
    elif op == "iter":
        result = list(stream)
    elif op == "mixed":
        result = [stream.readline(), stream.read(3), stream.readline(2),
                  stream.read(), stream.read(5), stream.readline()]
    elif op == "digest":
        data = stream.read() if not n else b"".join(iter(lambda: stream.read(n), b""))
        start_response("200 OK", TEXT)
        return [json.dumps({"size": len(data),
                            "sha256": hashlib.sha256(data).hexdigest()}).encode()]
    else:
        raise ValueError(op)
    time.sleep(float(query.get("sleep", 0)))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps([r.decode("latin-1") for r in result]).encode()]


def ban(environ, start_response, query):
    """corral.ban() with the query's arguments; the answer is its result or
    the exception it raised."""
    try:
        result = repr(corral.ban(query.get("addr"), query.get("seconds", "60"), query.get("reason", "")))
    except ValueError as exc:
        result = "ValueError: %s" % exc
    start_response("200 OK", TEXT)
    return [result.encode()]


def info(environ, start_response, query):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({
        "worker_id": corral.worker_id(),
        "version": corral.__version__,
        "corral_file": corral.__file__,
        "thread": threading.current_thread().name,
        "multithread": environ["wsgi.multithread"],
        "multiprocess": environ["wsgi.multiprocess"],
        "leak": environ.get("X_LEAK"),
        "errors_is_stderr": environ["wsgi.errors"] is sys.stderr,
        "server_software": environ.get("SERVER_SOFTWARE"),
    }).encode()]


def inheritable(environ, start_response, query):
    import os

    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps([os.get_inheritable(fd) for fd in (3, 4)]).encode()]


_stash = {}


def stash(environ, start_response, query):
    """Keeps write() and wsgi.input of a finished request for misuse later."""
    _stash["write"] = start_response("200 OK", TEXT)
    _stash["input"] = environ["wsgi.input"]
    return [b"stashed"]


def use_stash(environ, start_response, query):
    if query["what"] == "write":
        _stash["write"](b"too late")
    else:
        _stash["input"].read()
    start_response("200 OK", TEXT)
    return [b"unreachable"]


def leak(environ, start_response, query):
    environ["X_LEAK"] = "leaked"
    start_response("200 OK", TEXT)
    return [b"ok"]


ROUTES = {
    "ban": ban,
    "hello": hello,
    "tuple": as_tuple,
    "empty": empty,
    "empty_generator": empty_generator,
    "stream": stream,
    "stream_then_read": stream_then_read,
    "big": big,
    "many": many,
    "write": write,
    "write_empty": write_empty,
    "exc_info_before": exc_info_before,
    "twice": twice,
    "exc_info_after": exc_info_after,
    "fail": fail,
    "fail_in_iteration": fail_in_iteration,
    "tracked": tracked,
    "infinite": infinite,
    "content_length": content_length,
    "bad_head": bad_head,
    "no_start_response": no_start_response,
    "str_chunk": str_chunk,
    "none_result": none_result,
    "file": file,
    "file_like": file_like,
    "slow": slow,
    "started": started,
    "read": read,
    "print": print_line,
    "info": info,
    "leak": leak,
    "stash": stash,
    "use_stash": use_stash,
    "inheritable": inheritable,
}
