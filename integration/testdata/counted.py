"""Wraps a real app (COUNTED_APP, MODULE:NAME) so that every request that
reaches Python is counted: one line "REMOTE_ADDR METHOD PATH" appended to
CALLS_FILE. A Flask app is wrapped inside (its wsgi_app), so corral still
sees the Flask object; anything else is wrapped from outside."""

import importlib
import os

CALLS = os.environ["CALLS_FILE"]
_module, _, _name = os.environ["COUNTED_APP"].partition(":")
inner = getattr(importlib.import_module(_module), _name)


def _count(app):
    def counted(environ, start_response):
        with open(CALLS, "a") as f:
            f.write("%s %s %s\n" % (environ.get("REMOTE_ADDR"), environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        return app(environ, start_response)

    return counted


if hasattr(inner, "wsgi_app"):
    inner.wsgi_app = _count(inner.wsgi_app)
    app = inner
else:
    app = _count(inner)
