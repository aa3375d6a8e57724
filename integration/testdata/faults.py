"""A WSGI app that misbehaves on request, for the resilience tests.

/exit      os._exit(1) mid-request
/segv      a segmentation fault (ctypes reads address 0)
/loop      an infinite Python loop
/blocked   a call blocked in C (pause(2) through ctypes)
/sleep?S   time.sleep(S)
/grow?MB   keeps MB more megabytes alive on every call
/pid       the worker's pid
/version   VERSION below (the reload tests rewrite it)
"""

import ctypes
import os
import time

VERSION = "v1"

_hoard = []
CALLS = os.environ.get("CALLS_FILE")
if os.environ.get("IMPORTS_FILE"):  # one line per process that imported the app
    with open(os.environ["IMPORTS_FILE"], "a") as f:
        f.write("%d\n" % os.getpid())


def spin_forever():
    n = 0
    while True:
        n += 1


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if CALLS:
        with open(CALLS, "a") as f:
            f.write("%s %s %s\n" % (path, os.getpid(), query))
    if path == "/exit":
        os._exit(1)
    if path == "/segv":
        ctypes.string_at(0)
    if path == "/loop":
        spin_forever()
    if path == "/blocked":
        ctypes.CDLL(None).pause()
    if path == "/sleep":
        time.sleep(float(query or "1"))
    if path == "/grow":
        _hoard.append(bytearray(int(float(query or "10") * 1024 * 1024)))
    if path == "/echo":  # the query back, to prove answers reach their own request
        body = ("%s %d %s" % (query, os.getpid(), VERSION)).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    body = {"/version": VERSION}.get(path, str(os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
