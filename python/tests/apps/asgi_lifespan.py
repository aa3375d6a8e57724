"""ASGI apps with lifespan behaviours, for the lifespan tests."""

import asyncio
import os
import sys


def mark(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


async def http(scope, receive, send):
    body = repr(sorted(scope["state"].items())).encode()
    scope["state"]["leak"] = True  # a copy: later requests must not see it
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def lifespan_app(on_startup=None, on_shutdown=None):
    async def app(scope, receive, send):
        if scope["type"] != "lifespan":
            return await http(scope, receive, send)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                mark("startup in %d" % os.getpid())
                if on_startup is not None:
                    await on_startup(scope, send)
                else:
                    scope["state"]["db"] = "ready"
                    await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                mark("shutdown in %d" % os.getpid())
                if on_shutdown is not None:
                    await on_shutdown(scope, send)
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return
    return app


ok = lifespan_app()


async def _fail_startup(scope, send):
    await send({"type": "lifespan.startup.failed", "message": "database unreachable"})


failing = lifespan_app(on_startup=_fail_startup)


async def _raise_startup(scope, send):
    raise RuntimeError("startup exploded")


raise_in_startup = lifespan_app(on_startup=_raise_startup)


async def raising(scope, receive, send):
    # Django's ASGIHandler does this for lifespan scopes.
    if scope["type"] == "lifespan":
        raise ValueError("only http here")
    await http(scope, receive, send)


async def _fail_shutdown(scope, send):
    await send({"type": "lifespan.shutdown.failed", "message": "cleanup failed"})


shutdown_failed = lifespan_app(on_shutdown=_fail_shutdown)


async def _slow_shutdown(scope, send):
    await asyncio.sleep(30)


slow_shutdown = lifespan_app(on_shutdown=_slow_shutdown)
