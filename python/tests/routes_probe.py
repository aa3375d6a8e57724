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
"""

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
    for path in req["paths"]:
        if verdict == "wsgi":
            routed.append(wsgi_routed(app, path))
        elif verdict == "werkzeug":
            routed.append(werkzeug_routed(app, path))
        else:
            routed.append(django_routed(path))
    json.dump({"routes": routes, "routed": routed}, sys.stdout)


if __name__ == "__main__":
    main()
