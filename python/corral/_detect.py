"""Which interface an app object speaks (docs/PROTOCOL.md, "BOOT and
HELLO" of version 2). Light on purpose: a WSGI worker imports this and
nothing of asyncio."""

import functools
import sys
import types

from . import AppImportError

CO_COROUTINE = 0x80  # inspect.CO_COROUTINE


def _unwrap(func):
    # type() checks, not isinstance(): isinstance may ask the object for
    # its __class__, and some app objects raise on any attribute access.
    while True:
        if issubclass(type(func), functools.partial):
            func = func.func
        elif type(func) is types.MethodType:
            func = func.__func__
        else:
            return func


def coroutine_function(func):
    """Like inspect.iscoroutinefunction, without importing inspect."""
    if func is None:
        return False
    func = _unwrap(func)
    if type(func) is not types.FunctionType:
        return False
    if func.__code__.co_flags & CO_COROUTINE:
        return True
    # Functions marked as coroutine functions: inspect.markcoroutinefunction
    # (3.12+) and asyncio's marker (asgiref's on older Pythons). Whoever
    # marked them imported the module already.
    inspect = sys.modules.get("inspect")
    if inspect is not None and inspect.iscoroutinefunction(func):
        return True
    coroutines = sys.modules.get("asyncio.coroutines")
    marker = getattr(coroutines, "_is_coroutine", None)
    return marker is not None and getattr(func, "_is_coroutine", None) is marker


def classify(app):
    """"asgi3", "asgi2" or "wsgi", after unwrapping functools.partial:

    - a coroutine function, or an object whose __call__ is one: ASGI 3;
    - a class whose instances' __call__ is a coroutine function: ASGI 2;
    - anything else: WSGI.
    """
    obj = app
    while issubclass(type(obj), functools.partial):
        obj = obj.func
    if issubclass(type(obj), type):
        # On a class, __call__ is its instances' (or type's own).
        return "asgi2" if coroutine_function(getattr(obj, "__call__", None)) else "wsgi"
    if coroutine_function(obj):
        return "asgi3"
    # The __call__ that calling the object runs: its type's, never looked
    # up on the object itself.
    if coroutine_function(getattr(type(obj), "__call__", None)):
        return "asgi3"
    return "wsgi"


class ASGI2:
    """An ASGI 2 double callable served as ASGI 3, as uvicorn does."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        instance = self.app(scope)
        await instance(receive, send)


def detect(app, interface, where):
    """``(interface, callable to serve)`` for the app and the configured
    interface: "auto" detects; "asgi" takes anything that is not ASGI 3 as
    an ASGI 2 double callable; "wsgi" refuses an ASGI app."""
    if interface not in ("auto", "asgi", "wsgi"):
        raise ValueError("unknown interface %r (expected auto, asgi or wsgi)" % (interface,))
    kind = classify(app)
    if interface == "wsgi":
        if kind != "wsgi":
            raise AppImportError(
                "%s is an ASGI application (%s), but the interface is wsgi; "
                "serve it with interface asgi or auto"
                % (where, "an ASGI 2 class" if kind == "asgi2" else "an async callable")
            )
        return "wsgi", app
    if kind == "asgi3":
        return "asgi", app
    if kind == "asgi2" or interface == "asgi":
        return "asgi", ASGI2(app)
    return "wsgi", app
