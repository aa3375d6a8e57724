"""Route extraction, part four: Litestar apps, for corral._routes_werkzeug's
Extractor.

Litestar routes a path after normalising it (leading, trailing and
repeated slashes dropped), one segment at a time through a trie, and
parses path parameters with Python's int(), float(), UUID() and so on: a
value they refuse is a 404. Each parameter is written as a class of the
characters its parser may accept (wider than the parser, never narrower
for ASCII), the trailing slash is optional, and any path with ``//``
counts as known (as for Flask's merge_slashes).

Only called for an app that has imported Litestar already; nothing here
imports it.
"""

from ._re2 import class_regex, escape
from ._routes_starlette import not_found_handler
from ._routes_werkzeug import _class_names

_WS = [(0x09, 0x0D), (0x20, 0x20)]


def _chars(text):
    return [(ord(c), ord(c)) for c in text]


_DIGITS = [(0x30, 0x39)]
# What int(), float() and UUID() accept, as classes: signs, digits,
# underscores, surrounding white space, for floats the letters of inf,
# infinity and nan, for UUIDs braces and urn:uuid:. (Decimal() raises
# InvalidOperation, which Litestar does not take for a 404: any segment.)
_INT = class_regex(_WS + _DIGITS + _chars("+-_")) + "+"
_FLOAT = (
    class_regex(_WS + _DIGITS + _chars("+-_.eEiInNfFtTyYaA")) + "+"
)
_UUID = (
    class_regex(_WS + _DIGITS + _chars("+-_{}:abcdefABCDEFinruINRU")) + "+"
)
_SEGMENT = "[^/]+"

_PARAM_REGEX = {
    "int": _INT,
    "float": _FLOAT,
    "UUID": _UUID,
    "str": _SEGMENT,
    # date, datetime, time, timedelta: msgspec's ISO forms and more.
}


def _param_regex(param):
    typ = getattr(param, "type", None)
    name = getattr(typ, "__name__", "")
    if name in ("Path", "PurePath", "PosixPath"):
        return None
    return _PARAM_REGEX.get(name, _SEGMENT)


def _is_static(route):
    handlers = list(getattr(route, "route_handlers", None) or ())
    handler = getattr(route, "route_handler", None)
    if handler is not None:
        handlers.append(handler)
    if any(getattr(h, "is_static", False) for h in handlers):
        return True
    named = [str(h) for h in handlers]
    return bool(named) and all(
        n.startswith("litestar.static_files.") or "create_options_handler" in n
        for n in named
    )


def _endpoint(route):
    handler = getattr(route, "route_handler", None)
    handlers = [handler] if handler is not None else list(
        getattr(route, "route_handlers", None) or ()
    )
    names = []
    for h in handlers:
        text = getattr(h, "name", None) or str(h)
        if "create_options_handler" in text:
            continue  # the OPTIONS handler Litestar adds to every route
        if text not in names:
            names.append(text)
    return ", ".join(names) or "?"


def litestar(ex, app, prefix):
    ex.framework("litestar")
    why = not_found_handler(
        getattr(app, "exception_handlers", None),
        {
            "litestar.exceptions.http_exceptions.NotFoundException",
            "litestar.exceptions.http_exceptions.HTTPException",
        },
        ("litestar",),
    )
    if why:
        ex.warn(why)
        return False
    pre = escape(prefix)
    for route in list(getattr(app, "routes", None) or ()):
        try:
            _route(ex, route, prefix, pre)
        except Exception as e:
            path = str(getattr(route, "path", "/"))
            lit = prefix + (path.split("{", 1)[0] or "/")
            ex.warn(
                "route %r: %s: %s; every path under %r counts as a route"
                % (path, type(e).__name__, e, lit)
            )
            ex.add_prefix(lit)
    # Litestar drops repeated slashes before routing.
    ex.add_route(
        prefix + "/<path with //>",
        "^" + pre + "(?s:.*//.*)$",
        [],
        "(repeated slashes)",
    )
    return True


def _route(ex, route, prefix, pre):
    path = str(route.path)
    names = _class_names(route)
    handler = getattr(route, "route_handler", None)
    if getattr(handler, "is_mount", False):
        # A mount takes every path that starts with its path (even
        # /staticx for /static: Litestar matches the text).
        if getattr(handler, "is_static", False):
            ex.add_route(
                prefix + path + "/<path>",
                "^" + pre + escape(path.rstrip("/")) + "(?s:.*)$",
                ["GET", "HEAD"],
                _endpoint(route),
                True,
            )
        else:
            ex.add_prefix(prefix + path if path != "/" else prefix + "/")
        return
    parts = []
    rest = False
    for component in getattr(route, "path_components", None) or ():
        if isinstance(component, str):
            parts.append(escape(component))
            continue
        regex = _param_regex(component)
        if regex is None:
            # A path parameter takes the rest, one segment at least.
            parts.append("(?s:.+)")
            rest = True
            break
        parts.append(regex)
    body = "/" + "/".join(parts)
    regex = body if body == "/" or rest else body + "/?"
    if "litestar.routes.websocket.WebSocketRoute" in names:
        methods = ["GET"]
    elif "litestar.routes.asgi.ASGIRoute" in names:
        methods = []
    else:
        methods = sorted(getattr(route, "methods", None) or ())
    ex.add_route(
        prefix + path,
        "^" + pre + (regex if not prefix or body != "/" else "/?") + "$",
        methods,
        _endpoint(route),
        _is_static(route),
    )


