"""One raw ASGI 3 app with a behaviour per path, for the ASGI worker tests.

Markers printed to stderr ("disconnected TAG", "cancelled TAG", ...) let the
tests see what happened inside the worker.
"""

import asyncio
import contextvars
import os
import sys
import time
from urllib.parse import parse_qs

import corral

TEXT = [(b"content-type", b"text/plain")]


def mark(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def query(scope):
    return {k: v[-1] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}


async def respond(send, body, status=200, headers=TEXT):
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive):
    chunks = []
    events = 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        events += 1
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), events


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        raise RuntimeError("this app does no lifespan")
    path = scope["path"]
    if scope["type"] == "websocket":
        handler = WS_ROUTES[path.strip("/").split("/", 1)[1] if path.startswith("/ws/") else path]
    else:
        handler = ROUTES[path.strip("/").split("/")[0] or "hello"]
    await handler(scope, receive, send, query(scope))


# -- HTTP


async def hello(scope, receive, send, q):
    await respond(send, b"Hello, world!")


def _plain(value):
    """The scope as literals, with each value's type name."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [type(value).__name__] + [_plain(v) for v in value]
    return value


async def scope_(scope, receive, send, q):
    await respond(send, repr(_plain(scope)).encode("utf-8"))


async def echo(scope, receive, send, q):
    body, events = await read_body(receive)
    await respond(send, body, headers=TEXT + [(b"x-events", str(events).encode())])


async def stream(scope, receive, send, q):
    n = int(q.get("n", "3"))
    size = int(q.get("size", "5"))
    await send({"type": "http.response.start", "status": 200, "headers": TEXT})
    for i in range(n):
        await send({"type": "http.response.body", "body": b"%d" % i * size, "more_body": True})
        if "sleep" in q:
            await asyncio.sleep(float(q["sleep"]))
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def big(scope, receive, send, q):
    size = int(q.get("size", str(3 << 20)))
    await respond(send, bytes(range(256)) * (size // 256))


async def pathsend(scope, receive, send, q):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
                "trailers": "trailers" in q})
    await send({"type": "http.response.pathsend", "path": q["file"]})
    if "trailers" in q:
        await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"1")]})


async def trailers(scope, receive, send, q):
    await send({"type": "http.response.start", "status": 200, "trailers": True,
                "headers": TEXT + [(b"trailer", b"x-checksum, x-count")]})
    await send({"type": "http.response.body", "body": b"part1,", "more_body": True})
    await send({"type": "http.response.body", "body": b"part2"})
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")],
                "more_trailers": True})
    await send({"type": "http.response.trailers", "headers": [(b"x-count", b"2")]})


async def early(scope, receive, send, q):
    await send({"type": "http.response.start", "status": 200, "headers": TEXT})
    await send({"type": "http.response.early_hint",
                "links": [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"]})
    await send({"type": "http.response.body", "body": b"hinted"})


async def wait_disconnect(scope, receive, send, q):
    tag = q.get("tag", "")
    await send({"type": "http.response.start", "status": 200, "headers": TEXT})
    await send({"type": "http.response.body", "body": b"waiting", "more_body": True})
    message = await receive()
    while message["type"] == "http.request":
        message = await receive()
    mark("received %s %s" % (message["type"], tag))
    try:
        await send({"type": "http.response.body", "body": b"more", "more_body": True})
    except corral.ClientDisconnected as exc:
        mark("send raised %s %s" % (type(exc).__name__, tag))
        if isinstance(exc, OSError):
            mark("it is an OSError %s" % tag)
        raise


async def disconnect_after(scope, receive, send, q):
    # receive() after the response completed: http.disconnect at once.
    await respond(send, b"done")
    message = await receive()
    mark("after response: %s" % message["type"])


async def sleep_async(scope, receive, send, q):
    await asyncio.sleep(float(q.get("s", "0.2")))
    await respond(send, q.get("tag", "slept").encode())


async def block(scope, receive, send, q):
    time.sleep(float(q.get("s", "1")))  # blocks the event loop
    await respond(send, b"unblocked")


async def forever(scope, receive, send, q):
    tag = q.get("tag", "")
    mark("started %s" % tag)
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        mark("cancelled %s" % tag)
        raise


async def raise_(scope, receive, send, q):
    if "after_start" in q:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
    raise RuntimeError("boom")


async def background(scope, receive, send, q):
    await respond(send, b"sent")
    await asyncio.sleep(float(q.get("s", "0.1")))
    mark("background done")
    if "send_after" in q:
        try:
            await send({"type": "http.response.body", "body": b"late"})
        except RuntimeError as exc:
            mark("late send raised: %s" % exc)


async def state(scope, receive, send, q):
    scope["state"]["mutated"] = True  # a copy: the next request does not see it
    await respond(send, repr(sorted(scope["state"].items())).encode())


async def ban(scope, receive, send, q):
    result = corral.ban(q["addr"], float(q.get("seconds", "60")), q.get("reason", ""))
    await respond(send, repr(result).encode())


async def ban_thread(scope, receive, send, q):
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(None, corral.ban, q["addr"], 30.0, "from a thread")
    await respond(send, repr(result).encode())


async def chunks(scope, receive, send, q):
    # Many chunks, for PAUSE/RESUME.
    n = int(q.get("n", "20"))
    await send({"type": "http.response.start", "status": 200, "headers": TEXT})
    for i in range(n):
        await send({"type": "http.response.body", "body": b"%03d" % i, "more_body": True})
        mark("sent chunk %d" % i)
    await send({"type": "http.response.body", "body": b""})


async def loop(scope, receive, send, q):
    await respond(send, type(asyncio.get_running_loop()).__module__.encode())


async def no_response(scope, receive, send, q):
    return


async def start_only(scope, receive, send, q):
    await send({"type": "http.response.start", "status": 200, "headers": TEXT})


async def empty(scope, receive, send, q):
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body"})


async def status(scope, receive, send, q):
    await respond(send, b"", status=int(q["code"]))


async def swallow(scope, receive, send, q):
    # Catches the violation and returns: still an ERROR.
    await send({"type": "http.response.start", "status": 200, "headers": TEXT})
    try:
        await send({"type": "http.response.start", "status": 200, "headers": TEXT})
    except RuntimeError:
        pass
    await send({"type": "http.response.body", "body": b"ok?"})


VIOLATIONS = {
    "body_before_start": [{"type": "http.response.body", "body": b"x"}],
    "second_start": [
        {"type": "http.response.start", "status": 200},
        {"type": "http.response.start", "status": 200},
    ],
    "wrong_type": [{"type": "websocket.accept"}],
    "not_a_dict": ["http.response.start"],
    "str_body": [
        {"type": "http.response.start", "status": 200},
        {"type": "http.response.body", "body": "text"},
    ],
    "str_status": [{"type": "http.response.start", "status": "200"}],
    "bad_status": [{"type": "http.response.start", "status": 1000}],
    "informational": [{"type": "http.response.start", "status": 101}],
    "str_headers": [{"type": "http.response.start", "status": 200,
                     "headers": [("content-type", "text/plain")]}],
    "newline_header": [{"type": "http.response.start", "status": 200,
                        "headers": [(b"x-a", b"1\r\nx-injected: 1")]}],
    "nul_header": [{"type": "http.response.start", "status": 200,
                    "headers": [(b"x-a\0x-b", b"1")]}],
    "bad_header_name": [{"type": "http.response.start", "status": 200,
                         "headers": [(b"bad name", b"1")]}],
    "headers_not_pairs": [{"type": "http.response.start", "status": 200,
                           "headers": [b"x-a"]}],
    "after_complete_in_order": [
        {"type": "http.response.start", "status": 200},
        {"type": "http.response.body", "body": b"x", "more_body": True},
        {"type": "http.response.start", "status": 200},
    ],
    "trailers_undeclared": [
        {"type": "http.response.start", "status": 200},
        {"type": "http.response.body", "body": b"x", "more_body": True},
        {"type": "http.response.trailers", "headers": []},
    ],
    "pathsend_after_body": [
        {"type": "http.response.start", "status": 200},
        {"type": "http.response.body", "body": b"x", "more_body": True},
        {"type": "http.response.pathsend", "path": "/etc/hostname"},
    ],
}


async def violation(scope, receive, send, q):
    for message in VIOLATIONS[scope["path"].rsplit("/", 1)[1]]:
        await send(message)


_tag = contextvars.ContextVar("tag", default=None)


async def task_info(scope, receive, send, q):
    """The request's task name, and the context variable as the request
    found it: each request runs in a task of its own, with its own context."""
    task = asyncio.current_task()
    before = _tag.get()
    _tag.set(q.get("tag"))
    await asyncio.sleep(0.05)
    body = "%s %s %s" % (task.get_name() if task is not None else None, before, _tag.get())
    await respond(send, body.encode())


ROUTES = {
    "hello": hello,
    "task": task_info,
    "scope": scope_,
    "echo": echo,
    "stream": stream,
    "big": big,
    "pathsend": pathsend,
    "trailers": trailers,
    "early": early,
    "wait_disconnect": wait_disconnect,
    "disconnect_after": disconnect_after,
    "sleep": sleep_async,
    "block": block,
    "forever": forever,
    "raise": raise_,
    "background": background,
    "state": state,
    "ban": ban,
    "ban_thread": ban_thread,
    "chunks": chunks,
    "loop": loop,
    "no_response": no_response,
    "start_only": start_only,
    "empty": empty,
    "status": status,
    "swallow": swallow,
    "violation": violation,
    "café": hello,
}


# -- WebSocket


async def ws_echo(scope, receive, send, q):
    tag = q.get("tag", "")
    message = await receive()
    assert message == {"type": "websocket.connect"}, message
    accept = {"type": "websocket.accept"}
    if scope["subprotocols"]:
        accept["subprotocol"] = scope["subprotocols"][-1]
    await send(accept)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            mark("ws disconnect %s %s %r" % (tag, message["code"], message.get("reason")))
            try:
                await send({"type": "websocket.send", "text": "too late"})
            except corral.ClientDisconnected:
                mark("ws send raised ClientDisconnected %s" % tag)
            return
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
            after = await receive()
            mark("after close: %s %s" % (after["type"], after.get("code")))
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def ws_scope(scope, receive, send, q):
    await receive()
    await send({"type": "websocket.accept", "headers": [(b"x-extra", b"1")]})
    await send({"type": "websocket.send", "text": repr(_plain(scope))})
    await send({"type": "websocket.close"})


async def ws_deny(scope, receive, send, q):
    await receive()
    await send({"type": "websocket.http.response.start", "status": 401,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"entry"})


async def ws_reject(scope, receive, send, q):
    await receive()
    await send({"type": "websocket.close", "code": 1008})


async def ws_noaccept(scope, receive, send, q):
    await receive()


async def ws_big(scope, receive, send, q):
    await receive()
    await send({"type": "websocket.accept"})
    size = int(q.get("size", str(3 << 20)))
    if "text" in q:
        await send({"type": "websocket.send", "text": "é" * (size // 2)})
    else:
        await send({"type": "websocket.send", "bytes": b"b" * size})
    await send({"type": "websocket.close"})


async def ws_slow(scope, receive, send, q):
    # Accepts, then reads one message each time the client asks with "next".
    await receive()
    await send({"type": "websocket.accept"})
    await asyncio.sleep(float(q.get("s", "0.5")))
    mark("slow reader reads")
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": "got %d" % len(message.get("bytes") or message.get("text"))})


async def ws_flood(scope, receive, send, q):
    await receive()
    await send({"type": "websocket.accept"})
    for i in range(int(q.get("n", "10"))):
        await send({"type": "websocket.send", "text": "m%d" % i})
        if "sleep" in q:
            await asyncio.sleep(float(q["sleep"]))
    await send({"type": "websocket.close"})


async def ws_violation(scope, receive, send, q):
    await receive()
    what = q.get("what")
    if what == "send_before_accept":
        await send({"type": "websocket.send", "text": "x"})
    elif what == "both":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "x", "bytes": b"x"})
    elif what == "accept_twice":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.accept"})
    elif what == "http_type":
        await send({"type": "http.response.start", "status": 200})
    elif what == "raise":
        await send({"type": "websocket.accept"})
        raise ValueError("ws boom")


WS_ROUTES = {
    "echo": ws_echo,
    "scope": ws_scope,
    "deny": ws_deny,
    "reject": ws_reject,
    "noaccept": ws_noaccept,
    "big": ws_big,
    "slow": ws_slow,
    "flood": ws_flood,
    "violation": ws_violation,
}
