"""Route extraction: the URLs an app answers, for the master's route guard.

``extract(app)`` returns the ``routes`` object of HELLO (docs/PROTOCOL.md,
"Routes"), or None when the app's routes cannot be told (a plain WSGI
callable: the master then learns them from answers). It never raises.

The guard treats a request whose path matches no route as a probe, so
every regex here must match at least every path the framework would route
(or redirect, or answer 405): where a pattern cannot be expressed exactly
for Go's regexp it is relaxed to a wider one, and failing that replaced by
its literal prefix in ``prefixes``. Errors lean towards "known", never
towards banning a legitimate client.

Nothing here imports a framework the app has not imported already.

The work is split in modules: corral._routes_werkzeug walks the app
object (Flask, WSGI and ASGI wrappers and mounts, Channels),
corral._routes_django walks a Django project's resolver tree (WSGI or
ASGI), corral._routes_starlette a Starlette or FastAPI app,
corral._routes_litestar a Litestar app, and corral._re2 writes their
Python regexes for Go's regexp.
"""

import json
import sys

from ._routes_werkzeug import Extractor

# The routes object must fit in HELLO (1 MiB) next to the rest of it.
MAX_JSON = 768 * 1024


def _clean(obj):
    """Strings that encode as UTF-8 (no lone surrogates)."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
            return obj
        except UnicodeEncodeError:
            return obj.encode("utf-8", "replace").decode("utf-8")
    if isinstance(obj, list):
        return [_clean(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    return obj


def _say(message):
    try:
        sys.stderr.write("corral: routes: %s\n" % message)
        sys.stderr.flush()
    except Exception:
        pass


def extract(app, script_name=""):
    """The routes object for HELLO, or None. Never raises."""
    ex = Extractor(script_name)
    try:
        if not ex.visit(app, "", 0):
            for w in ex.warnings:
                _say(w + "; routes will be learned from traffic")
            return None
        result = _clean(ex.result())
        size = len(json.dumps(result, ensure_ascii=False).encode("utf-8"))
        if size > MAX_JSON:
            for route in result["routes"]:
                route["rule"] = ""
                route["endpoint"] = ""
            result["warnings"].append(
                "%d routes: too many to describe; rules and endpoints left out"
                % len(result["routes"])
            )
            size = len(json.dumps(result, ensure_ascii=False).encode("utf-8"))
            if size > MAX_JSON:
                _say(
                    "%d routes do not fit in the handshake; routes will be "
                    "learned from traffic" % len(result["routes"])
                )
                return None
        return result
    except BaseException as e:  # never let extraction break boot
        _say(
            "extraction failed (%s: %s); routes will be learned from traffic"
            % (type(e).__name__, e)
        )
        return None
