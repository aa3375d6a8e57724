"""App objects of every shape, for interface detection."""

import functools


async def _hello(send, text):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": text.encode()})


async def coro(scope, receive, send):
    if scope["type"] == "http":
        await _hello(send, "coroutine function")


async def _with_extra(scope, receive, send, extra):
    if scope["type"] == "http":
        await _hello(send, "partial " + extra)


partial = functools.partial(functools.partial(_with_extra, extra="x"))


class Handler:
    """Like Django's ASGIHandler, Starlette and FastAPI: an object whose
    __call__ is a coroutine function."""

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            await _hello(send, "object")


obj = Handler()


class Asgi2:
    """An ASGI 2 double callable."""

    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] == "http":
            await _hello(send, "asgi2 " + self.scope["path"])


def double(scope):
    """An ASGI 2 double callable as a plain function: ASGI only when forced."""

    async def instance(receive, send):
        if scope["type"] == "http":
            await _hello(send, "double function")

    return instance


def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi"]
