"""A plain WSGI app for the integration tests, wrapped in
wsgiref.validate.validator so every environ corral builds and every
response it handles is checked against PEP 3333."""

import hashlib
import json
import os
import time
from wsgiref.validate import validator

CALLS = os.environ.get("CALLS_FILE")  # one line appended per request, to count what reached Python


def record(environ):
    if CALLS:
        with open(CALLS, "a") as f:
            f.write(environ["REQUEST_METHOD"] + " " + environ["PATH_INFO"] + "\n")


def wait_for(path, timeout=10):
    deadline = time.time() + timeout
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.01)


def app(environ, start_response):
    record(environ)
    path = environ["PATH_INFO"]
    if path.startswith("/env"):
        keys = {k: v for k, v in environ.items() if isinstance(v, str)}
        keys["wsgi.multithread"] = environ["wsgi.multithread"]
        keys["wsgi.multiprocess"] = environ["wsgi.multiprocess"]
        keys["wsgi.input_terminated"] = environ.get("wsgi.input_terminated")
        keys["path_bytes"] = list(environ["PATH_INFO"].encode("latin-1"))
        body = json.dumps(keys).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/echo":
        # The validator insists on read(size), as PEP 3333 allows servers to.
        data = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [data]
    if path == "/digest":
        inp = environ["wsgi.input"]
        h = hashlib.sha256()
        n = 0
        while True:
            chunk = inp.read(65536)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        body = json.dumps({"length": n, "sha256": h.hexdigest(),
                           "content_length": environ.get("CONTENT_LENGTH")}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/lines":
        lines = environ["wsgi.input"].readlines()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(len(lines)).encode()]
    if path == "/stream":
        # Yields one chunk, then waits until the test has seen it (it
        # creates the marker file) before the second: proof of streaming.
        marker = environ["QUERY_STRING"]
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"first\n"
            wait_for(marker)
            yield b"second\n"
        return gen()
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]
    if path == "/repeat":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        return [b"ok"]
    if path == "/length":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello"]
    if path == "/error":
        raise RuntimeError("boom from the test app")
    if path == "/crash":
        os._exit(3)
    if path == "/slow":
        time.sleep(float(environ["QUERY_STRING"] or "1"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    if path == "/ban-me":
        # corral.ban() of the client itself, from the app.
        import corral
        ok = corral.ban(environ["REMOTE_ADDR"], 60, "the test app bans")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(ok).encode()]
    if path == "/ban-header":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Corral-Ban", "60")])
        return [b"banned by header"]
    if path == "/pid":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


application = validator(app)
