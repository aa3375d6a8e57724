"""A plain ASGI 3 app (no framework) for corral's integration tests: it
reports its scope with the types of every value, and uses the extensions
corral lists (trailers, early hints, pathsend)."""

import json
import os


def describe(v):
    if isinstance(v, bytes):
        return {"type": "bytes", "value": v.decode("latin-1")}
    if isinstance(v, (list, tuple)):
        return {"type": type(v).__name__, "value": [describe(x) for x in v]}
    if isinstance(v, dict):
        return {"type": "dict", "value": {k: describe(x) for k, x in v.items()}}
    return {"type": type(v).__name__, "value": v}


async def body_of(receive):
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            return body


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        raise RuntimeError("this app has no lifespan")  # lifespan auto: served without
    path = scope["path"]
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"x-scope", b"ws")]})
        await send({"type": "websocket.send", "text": json.dumps(describe(dict(scope, state=None)))})
        await send({"type": "websocket.close", "code": 1000})
        return
    if path.endswith("/trailers"):
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum")]})
        await send({"type": "http.response.body", "body": b"body with trailers", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"c0ffee")], "more_trailers": False})
        return
    if path.endswith("/hints"):
        await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload; as=style"]})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"hinted"})
        return
    if path.endswith("/pathsend"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.pathsend",
                    "path": os.path.join(os.path.dirname(os.path.abspath(__file__)), "asgi_file.txt")})
        return
    body = await body_of(receive)
    info = {k: describe(v) for k, v in scope.items() if k not in ("state", "app")}
    info["body"] = describe(body.decode("latin-1"))
    info["pid"] = describe(os.getpid())
    out = json.dumps(info).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
