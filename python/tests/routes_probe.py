"""Run in a fresh interpreter by test_routes.py: load an app as the worker
does, extract its routes, and ask the framework itself which of a list of
paths it routes.

Reads a JSON request on stdin:

    {"app": "module:name", "chdir": "", "pythonpath": [...],
     "verdict": "wsgi" | "werkzeug" | "django", "paths": ["/a", ...]}

and prints {"routes": <extract(app)>, "routed": [true, false, ...]}.

Verdicts:
- "wsgi": call the app; any status but 404 means routed (the test apps'
  views never answer 404 themselves).
- "werkzeug": the app's url_map; a match, a redirect or a 405 means routed.
- "django": resolve(), plus CommonMiddleware's APPEND_SLASH redirect.
- "asgi": call the ASGI app with a GET; any status but 404 means routed,
  and so does a WebSocket handshake the app accepts (the test apps'
  WebSocket endpoints accept every connection).
- "channels": "django" for HTTP, "asgi" for WebSockets.
"""

import asyncio

import io
import json
import os
import sys

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wsgi_routed(app, path):
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    status = []

    def start_response(s, headers, exc_info=None):
        status.append(s)

    result = app(environ, start_response)
    try:
        for _ in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return not status[0].startswith("404")


def asgi_scope(kind, path):
    scope = {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "http" if kind == "http" else "ws",
        "path": path,
        "raw_path": path.encode("utf-8"),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost"), (b"accept", b"*/*")],
        "server": ("localhost", 80),
        "client": ("127.0.0.1", 40000),
        "state": {},
    }
    if kind == "http":
        scope["method"] = "GET"
    else:
        scope["subprotocols"] = []
    return scope


async def asgi_call(app, kind, path):
    """The first message the app sends for one request."""
    sent = []
    if kind == "http":
        events = [{"type": "http.request", "body": b"", "more_body": False}]
        last = {"type": "http.disconnect"}
    else:
        events = [{"type": "websocket.connect"}]
        last = {"type": "websocket.disconnect", "code": 1000}

    async def receive():
        return events.pop(0) if events else last

    async def send(message):
        sent.append(message)

    try:
        await asyncio.wait_for(app(asgi_scope(kind, path), receive, send), 10)
    except BaseException:
        if not sent:
            return {"type": "error"}
    return sent[0] if sent else {"type": "nothing"}


def asgi_routed(app, paths, http=True, websocket=True):
    async def run():
        out = []
        for path in paths:
            if http:
                first = await asgi_call(app, "http", path)
                if first.get("type") == "error" or first.get("status") != 404:
                    out.append(True)
                    continue
            if not websocket:
                out.append(False)
                continue
            first = await asgi_call(app, "websocket", path)
            out.append(first.get("type") == "websocket.accept")
        return out

    return asyncio.run(run())


def werkzeug_routed(app, path):
    from werkzeug.exceptions import MethodNotAllowed, NotFound
    from werkzeug.routing import RequestRedirect

    adapter = app.url_map.bind("localhost")
    try:
        adapter.match(path, method="GET")
    except (RequestRedirect, MethodNotAllowed):
        return True
    except NotFound:
        return False
    return True


def django_routed(path):
    from django.conf import settings
    from django.urls import Resolver404, resolve
    from django.utils import translation

    def resolves(p, slash_added=False):
        try:
            match = resolve(p)
        except Resolver404:
            return False
        except Exception:
            return True  # the request reaches a view or fails with a 500
        return not slash_added or getattr(match.func, "should_append_slash", True)

    def candidates(lang):
        out = [(path, False)]
        if settings.APPEND_SLASH and not path.endswith("/"):
            out.append((path + "/", True))
        if lang is not None:
            # LocaleMiddleware redirects a path without a language prefix.
            out.append(("/%s%s" % (lang, path), False))
            if settings.APPEND_SLASH and not path.endswith("/"):
                out.append(("/%s%s/" % (lang, path), True))
        return out

    locale = "django.middleware.locale.LocaleMiddleware" in settings.MIDDLEWARE
    langs = [code for code, _ in settings.LANGUAGES] if locale else [None]
    for lang in langs:
        with translation.override(lang):
            if any(resolves(p, added) for p, added in candidates(lang)):
                return True
    return False


def main():
    req = json.load(sys.stdin)
    sys.path.insert(0, PYTHON_DIR)
    if req.get("chdir"):
        os.chdir(req["chdir"])
    sys.path[:0] = [os.path.abspath(p) for p in req.get("pythonpath", [])] + [
        os.getcwd()
    ]
    from corral._app import load_app
    from corral._routes import extract

    app = load_app(req["app"])
    routes = extract(app)
    verdict = req["verdict"]
    routed = []
    if verdict == "asgi":
        routed = asgi_routed(app, req["paths"])
    elif verdict == "channels":
        http = [django_routed(path) for path in req["paths"]]
        ws = asgi_routed(app.application_mapping["websocket"], req["paths"], http=False)
        routed = [a or b for a, b in zip(http, ws)]
    for path in req["paths"] if not routed else ():
        if verdict == "wsgi":
            routed.append(wsgi_routed(app, path))
        elif verdict == "werkzeug":
            routed.append(werkzeug_routed(app, path))
        else:
            routed.append(django_routed(path))
    json.dump({"routes": routes, "routed": routed}, sys.stdout)


if __name__ == "__main__":
    main()
