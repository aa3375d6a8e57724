"""Route extraction, part one: the walk of the app object.

``Extractor`` collects routes, prefixes and warnings while it walks the
app: Flask (Werkzeug's url_map), the wrappers and mounts around it
(Werkzeug's middleware, WhiteNoise, Sentry, ASGI middleware, and unknown
wrappers whose code leaves the path alone), and static directories. A
Django project (WSGI or ASGI) is handed to its resolver walker
(corral._routes_django), a Starlette or FastAPI app to
corral._routes_starlette, a Litestar app to corral._routes_litestar. See
corral._routes for what the result is for.

Nothing here imports a framework the app has not imported already.
"""

import re
import sys
import types

from ._re2 import Unsupported, escape, translate

# How deep to look through wrappers and mounts.
MAX_DEPTH = 16
# Longest warning kept (exception texts can be long).
MAX_WARNING = 300
# Files listed one by one for a static directory served at the root.
MAX_ROOT_FILES = 500


def _class_names(obj):
    try:
        mro = type(obj).__mro__
    except Exception:
        return set()
    return {"%s.%s" % (c.__module__, c.__qualname__) for c in mro}


_PATH_KEYS = frozenset(("PATH_INFO", "SCRIPT_NAME", "REQUEST_URI", "RAW_URI"))
_PATH_NAMES = frozenset(("path_info", "script_name", "script_root", "full_path"))


def code_mentions(code, names, keys, depth=0):
    """Whether ``code`` (or a function or class nested in it, 8 deep) uses
    an attribute or global in ``names`` or a string constant in ``keys``:
    how the walkers tell a wrapper that looks at the path."""
    if depth > 8:
        return False
    if names.intersection(code.co_names):
        return True
    for const in code.co_consts:
        if isinstance(const, str) and const in keys:
            return True
        if isinstance(const, types.CodeType) and code_mentions(const, names, keys, depth + 1):
            return True
    return False


def _code_touches_paths(code):
    return code_mentions(code, _PATH_NAMES, _PATH_KEYS)


def _touches_paths(obj, asgi=False):
    """Whether a wrapper's own code reads or rewrites the request path: such
    a wrapper may answer paths itself or move the app under a prefix, so the
    routes of what it wraps would not be its routes. An ASGI wrapper reads
    scope["path"] instead of PATH_INFO."""
    if asgi:
        from ._routes_starlette import reads_path

        return reads_path(obj)
    funcs = []
    if isinstance(obj, (types.FunctionType, types.MethodType)):
        funcs.append(getattr(obj, "__func__", obj))
    else:
        for klass in type(obj).__mro__:
            if klass is object:
                continue
            for value in vars(klass).values():
                if isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                if isinstance(value, property):
                    value = value.fget
                if isinstance(value, types.FunctionType):
                    funcs.append(value)
    for func in funcs:
        code = getattr(func, "__code__", None)
        if code is not None and _code_touches_paths(code):
            return True
    return False


class Extractor:
    def __init__(self, script_name=""):
        self.routes = []
        self.prefixes = []
        self.warnings = []
        self.frameworks = []
        self.script_name = (script_name or "").rstrip("/")
        self.django_done = set()
        self.seen = set()

    def warn(self, msg):
        if len(msg) > MAX_WARNING:
            msg = msg[: MAX_WARNING - 3] + "..."
        if msg not in self.warnings:
            self.warnings.append(msg)

    def add_prefix(self, prefix):
        if not prefix.startswith("/"):
            prefix = "/" + prefix
        if prefix == "/":
            self.warn("every path counts as a route: route checks are off for this app")
        if prefix not in self.prefixes:
            self.prefixes.append(prefix)

    def add_route(self, rule, regex, methods, endpoint, static=False):
        # A static directory seen twice (STATIC_URL and the handler serving
        # it) is one route.
        key = regex if static else (regex, endpoint)
        if key in self.seen:
            return
        self.seen.add(key)
        route = {
            "rule": rule,
            "regex": regex,
            "methods": methods,
            "endpoint": endpoint,
        }
        if static:
            route["static"] = True
        self.routes.append(route)

    def framework(self, name):
        if name not in self.frameworks:
            self.frameworks.append(name)

    def mount_fallback(self, prefix, what):
        """A sub-app under prefix whose routes are unknown: all of it."""
        self.add_prefix(prefix + "/")
        self.add_route(prefix, "^" + escape(prefix) + "$", [], what)

    # -- walking the app object

    def visit(self, obj, prefix, depth):
        """Add the routes of obj, served under prefix. False if they cannot
        be told."""
        if depth > MAX_DEPTH:
            self.warn("too many nested wrappers to follow")
            return False
        owner = getattr(obj, "__self__", None)
        if (
            owner is not None
            and getattr(obj, "__name__", "") == "wsgi_app"
            and self.url_map(owner) is not None
        ):
            # Flask's own wsgi_app, at the end of a chain of wrappers.
            self.werkzeug(owner, prefix)
            return True
        if self.url_map(obj) is not None:
            inner = None
            try:
                inner = vars(obj).get("wsgi_app")
            except TypeError:
                pass
            if inner is not None:
                # app.wsgi_app = Middleware(app.wsgi_app): follow the chain.
                return self.visit(inner, prefix, depth + 1)
            self.werkzeug(obj, prefix)
            return True
        names = _class_names(obj)
        if names & _DJANGO_HANDLERS:
            if names & _DJANGO_STATIC_HANDLERS:
                base = getattr(obj, "base_url", None)
                path = base[2] if base and not base[1] else ""
                if path:
                    self.static_prefix(prefix + self.strip_script(path), "staticfiles")
                inner = getattr(obj, "application", None)
                if inner is not None and inner is not obj:
                    return self.visit(inner, prefix, depth + 1)
            return self.django(prefix)
        if names & _STARLETTE_APPS:
            from ._routes_starlette import Base, Starlette

            return Starlette(self).visit(obj, Base.of(prefix), depth)
        if "litestar.app.Litestar" in names:
            from ._routes_litestar import litestar

            return litestar(self, obj, prefix)
        if "channels.routing.ProtocolTypeRouter" in names:
            return self.channels(obj, prefix, depth)
        if "werkzeug.exceptions.NotFound" in names:
            return True  # answers 404 to everything: no routes
        if "werkzeug.middleware.dispatcher.DispatcherMiddleware" in names:
            return self.dispatcher(obj, prefix, depth)
        if "werkzeug.middleware.shared_data.SharedDataMiddleware" in names:
            for export in self.exports(obj):
                self.static_prefix(prefix + export, "SharedDataMiddleware")
            return self.visit(obj.app, prefix, depth + 1)
        if "werkzeug.middleware.http_proxy.ProxyMiddleware" in names:
            for target in getattr(obj, "targets", {}) or {}:
                self.mount_fallback(prefix + "/" + target.strip("/"), "ProxyMiddleware")
            return self.visit(obj.app, prefix, depth + 1)
        if any(
            n.startswith("whitenoise.") and n.endswith(".WhiteNoise") for n in names
        ):
            self.whitenoise(obj, prefix)
            return self.visit(obj.application, prefix, depth + 1)
        for name, attr in _PASS_THROUGH:
            if name in names:
                inner = getattr(obj, attr, None)
                if inner is not None:
                    return self.visit(inner, prefix, depth + 1)
        return self.unknown_wrapper(obj, prefix, depth)

    def unknown_wrapper(self, obj, prefix, depth):
        for attr in ("wsgi_app", "application", "app", "_app", "__wrapped__"):
            try:
                inner = getattr(obj, attr, None)
            except Exception:
                continue
            if inner is None or inner is obj or not callable(inner):
                continue
            if not self.recognisable(inner):
                return False
            label = label_of(obj)
            if _touches_paths(obj, self.is_asgi(inner)):
                self.warn("%s reads or rewrites the request path itself" % label)
                return False
            self.warn(
                "assuming %s passes every request to %s unchanged"
                % (label, label_of(inner))
            )
            return self.visit(inner, prefix, depth + 1)
        return False

    def recognisable(self, obj):
        """Whether a chain of wrappers leads to a framework app: only then is
        an unknown wrapper worth a warning."""
        for _ in range(MAX_DEPTH):
            if obj is None:
                return False
            owner = getattr(obj, "__self__", None)
            if self.url_map(obj) is not None or (
                owner is not None and self.url_map(owner) is not None
            ):
                return True
            names = _class_names(obj)
            if names & _FRAMEWORK_APPS:
                return True
            nxt = None
            for attr in ("wsgi_app", "application", "app", "_app", "__wrapped__"):
                try:
                    cand = getattr(obj, attr, None)
                except Exception:
                    continue
                if cand is not None and cand is not obj and callable(cand):
                    nxt = cand
                    break
            obj = nxt
        return False

    def is_asgi(self, obj):
        """Whether a chain of wrappers leads to an ASGI framework's app."""
        for _ in range(MAX_DEPTH):
            if obj is None:
                return False
            names = _class_names(obj)
            if names & _ASGI_APPS:
                return True
            nxt = None
            for attr in ("application", "app", "_app", "__wrapped__"):
                try:
                    cand = getattr(obj, attr, None)
                except Exception:
                    continue
                if cand is not None and cand is not obj and callable(cand):
                    nxt = cand
                    break
            obj = nxt
        return False

    def strip_script(self, path):
        if self.script_name and (
            path == self.script_name or path.startswith(self.script_name + "/")
        ):
            return path[len(self.script_name) :] or "/"
        return path

    def static_prefix(self, path, endpoint):
        """A static directory served under path."""
        path = "/" + path.strip("/")
        if path == "/":
            self.add_prefix("/")
            return
        self.add_route(
            path + "/<path>",
            "^" + escape(path) + "/.+$",
            ["GET", "HEAD"],
            endpoint,
            True,
        )

    # -- Werkzeug / Flask

    def url_map(self, obj):
        routing = sys.modules.get("werkzeug.routing")
        cls = getattr(routing, "Map", None)
        if cls is None:
            return None
        try:
            url_map = getattr(obj, "url_map", None)
        except Exception:
            return None
        return url_map if isinstance(url_map, cls) else None

    def werkzeug(self, app, prefix):
        self.framework("flask")
        url_map = self.url_map(app)
        merges = False
        hosts = False
        for rule in url_map.iter_rules():
            try:
                if getattr(rule, "build_only", False):
                    continue
                if getattr(rule, "host", None) or getattr(rule, "subdomain", None):
                    hosts = True
                if getattr(rule, "merge_slashes", False):
                    merges = True
                self.werkzeug_rule(rule, prefix)
            except Exception as e:
                lit = prefix + _literal_head(getattr(rule, "rule", "/"))
                self.warn(
                    "rule %r: %s: %s; every path under %r counts as a route"
                    % (getattr(rule, "rule", "?"), type(e).__name__, e, lit)
                )
                self.add_prefix(lit)
        if hosts or getattr(url_map, "host_matching", False):
            self.warn(
                "host and subdomain matching ignored: every rule counts on every host"
            )
        # Werkzeug strips leading slashes, and redirects a path with
        # repeated slashes to the merged one when that matches a rule.
        if merges:
            self.add_route(
                prefix + "/<path with //>",
                "^" + escape(prefix) + "(?s:.*//.*)$",
                [],
                "(merge_slashes redirect)",
            )
        else:
            self.add_prefix(prefix + "//")

    def werkzeug_rule(self, rule, prefix):
        parts = _rule_parts(rule)
        body = []
        literal = []
        literal_open = True
        for dynamic, data in parts:
            if not dynamic:
                if getattr(rule, "merge_slashes", False):
                    data = re.sub("/{2,}", "/", data)
                body.append(escape(data))
                if literal_open:
                    literal.append(data)
                continue
            literal_open = False
            conv = rule._converters[data]
            try:
                regex, relaxed = self.converter_regex(conv)
                body.append(regex)
                for what in relaxed:
                    self.warn(
                        "rule %r: %s (matches more than Werkzeug does)"
                        % (rule.rule, what)
                    )
            except Unsupported as e:
                lit = prefix + "".join(literal)
                self.warn(
                    "rule %r: converter %s: %s; every path under %r counts as a route"
                    % (rule.rule, type(conv).__name__, e, lit)
                )
                self.add_prefix(lit)
                return
        regex = "".join(body) or "/"
        if regex == "/":
            # The root; under a mount, the mount point itself redirects to it.
            regex = "/?" if prefix else "/"
        elif regex.endswith("/"):
            # Strict slashes redirect the path without the slash; otherwise
            # it matches.
            regex = regex[:-1] + "/?"
        elif not getattr(rule, "strict_slashes", True):
            regex += "/?"
        methods = sorted(rule.methods) if rule.methods else []
        endpoint = str(rule.endpoint)
        static = endpoint == "static" or endpoint.endswith(".static")
        self.add_route(
            prefix + rule.rule,
            "^" + escape(prefix) + regex + "$",
            methods,
            endpoint,
            static,
        )

    def converter_regex(self, conv):
        names = _class_names(conv)
        regex = getattr(conv, "regex", None)
        if not isinstance(regex, str):
            raise Unsupported("no regex")
        if "werkzeug.routing.converters.PathConverter" in names and regex == "[^/].*?":
            return ".+", []
        if "werkzeug.routing.converters.IntegerConverter" in names and regex in (
            r"\d+",
            r"-?\d+",
        ):
            return _int_regex(conv), []
        piece = translate(regex)
        if piece.start or piece.end:
            raise Unsupported("anchors in a converter regex")
        return piece.concat(), piece.relaxed

    def dispatcher(self, obj, prefix, depth):
        mounts = getattr(obj, "mounts", {}) or {}
        for mount, sub in sorted(mounts.items()):
            where = prefix + "/" + mount.strip("/")
            if where.endswith("/"):
                where = where[:-1]
            if not self.visit(sub, where, depth + 1):
                self.warn(
                    "mount %r: routes unknown; every path under it counts as a route"
                    % where
                )
                self.mount_fallback(where, "(mount %s)" % label_of(sub))
        return self.visit(obj.app, prefix, depth + 1)

    def exports(self, obj):
        exports = getattr(obj, "exports", None) or ()
        if isinstance(exports, dict):
            exports = exports.items()
        return [path for path, _loader in exports]

    def whitenoise(self, obj, prefix):
        for _root, path in getattr(obj, "directories", None) or ():
            path = "/" + (path or "").strip("/")
            if path != "/":
                self.static_prefix(prefix + path, "WhiteNoise")
                continue
            files = sorted(getattr(obj, "files", None) or ())
            if files and len(files) <= MAX_ROOT_FILES:
                for url in files:
                    if "/" not in url.strip("/"):
                        self.add_route(
                            url,
                            "^" + escape(prefix + url) + "$",
                            ["GET", "HEAD"],
                            "WhiteNoise",
                            True,
                        )
                    else:
                        self.static_prefix(
                            prefix + "/" + url.strip("/").split("/")[0], "WhiteNoise"
                        )
            else:
                self.warn("WhiteNoise serves a directory at the root")
                self.add_prefix(prefix + "/")

    # -- Django

    def django(self, prefix):
        self.framework("django")
        if prefix in self.django_done:
            return True
        self.django_done.add(prefix)
        # Imported here: corral._routes_django builds on this module.
        from ._routes_django import Django

        project = Django(self, prefix)
        why = project.unknowable()
        if why:
            self.warn(why)
            return False
        project.run()
        return True

    # -- Django Channels

    def channels(self, obj, prefix, depth):
        """Channels' ProtocolTypeRouter: the HTTP app's routes, and the
        patterns of the WebSocket app's URLRouter."""
        mapping = getattr(obj, "application_mapping", None) or {}
        ws = mapping.get("websocket")
        router = None
        if ws is not None:
            router = ws
            for _ in range(MAX_DEPTH):
                names = _class_names(router)
                if "channels.routing.URLRouter" in names:
                    break
                inner = None
                for attr in ("inner", "application", "app"):
                    cand = getattr(router, attr, None)
                    if cand is not None and cand is not router:
                        inner = cand
                        break
                if inner is None or not _CHANNELS_WRAPPER.search(" ".join(names)):
                    self.warn("the WebSocket app %s may accept any path" % label_of(ws))
                    return False
                router = inner
            else:
                self.warn("too many nested wrappers to follow")
                return False
        http = mapping.get("http")
        if http is not None and not self.visit(http, prefix, depth + 1):
            return False
        if router is None:
            return True
        self.framework("django")
        from ._re2 import translate
        from ._routes_django import Django, _literal_head_of_pattern

        project = Django(self, prefix)
        project.append_slash = False  # CommonMiddleware is HTTP only
        root = [translate("^/")]  # URLRouter strips the leading slash
        for route in list(getattr(router, "routes", None) or ()):
            try:
                project.node(route, root, ["/"], [])
            except Exception as e:
                pattern = getattr(route, "pattern", None)
                project.fallback(
                    root,
                    ["/", str(pattern)],
                    _literal_head_of_pattern(pattern),
                    "%s: %s" % (type(e).__name__, e),
                )
        return True

    # -- result

    def result(self):
        kinds = set(self.frameworks)
        if kinds == {"fastapi", "starlette"}:
            kinds = {"fastapi"}  # a FastAPI app is a Starlette app
        if len(kinds) == 1:
            framework = kinds.pop()
        elif kinds & {"starlette", "fastapi", "litestar"}:
            framework = "asgi"
        else:
            framework = "wsgi"
        # Static prefixes and catch-alls are best checked last by a guard
        # that goes in order; the order carries no meaning in the protocol.
        return {
            "framework": framework,
            "routes": self.routes,
            "prefixes": self.prefixes,
            "warnings": self.warnings,
        }


_PASS_THROUGH = (
    ("werkzeug.middleware.proxy_fix.ProxyFix", "app"),
    ("werkzeug.middleware.lint.LintMiddleware", "app"),
    ("werkzeug.middleware.profiler.ProfilerMiddleware", "_app"),
    ("werkzeug.debug.DebuggedApplication", "app"),
    ("sentry_sdk.integrations.wsgi.SentryWsgiMiddleware", "app"),
    # ASGI middleware that answers no path itself, around any ASGI app.
    ("starlette.middleware.cors.CORSMiddleware", "app"),
    ("starlette.middleware.gzip.GZipMiddleware", "app"),
    ("starlette.middleware.trustedhost.TrustedHostMiddleware", "app"),
    ("starlette.middleware.httpsredirect.HTTPSRedirectMiddleware", "app"),
    ("starlette.middleware.sessions.SessionMiddleware", "app"),
    ("starlette.middleware.errors.ServerErrorMiddleware", "app"),
    ("starlette.middleware.exceptions.ExceptionMiddleware", "app"),
    ("uvicorn.middleware.proxy_headers.ProxyHeadersMiddleware", "app"),
    ("sentry_sdk.integrations.asgi.SentryAsgiMiddleware", "app"),
    # A WSGI app served as ASGI.
    ("starlette.middleware.wsgi.WSGIMiddleware", "app"),
    ("a2wsgi.wsgi.WSGIMiddleware", "app"),
    ("asgiref.wsgi.WsgiToAsgi", "wsgi_application"),
)

_DJANGO_HANDLERS = frozenset(
    ("django.core.handlers.wsgi.WSGIHandler", "django.core.handlers.asgi.ASGIHandler")
)
_DJANGO_STATIC_HANDLERS = frozenset(
    (
        "django.contrib.staticfiles.handlers.StaticFilesHandler",
        "django.contrib.staticfiles.handlers.ASGIStaticFilesHandler",
    )
)
_STARLETTE_APPS = frozenset(
    (
        "starlette.applications.Starlette",
        "starlette.routing.Router",
        "starlette.staticfiles.StaticFiles",
    )
)
_ASGI_APPS = _STARLETTE_APPS | {
    "litestar.app.Litestar",
    "django.core.handlers.asgi.ASGIHandler",
    "channels.routing.ProtocolTypeRouter",
}
_FRAMEWORK_APPS = _ASGI_APPS | {"django.core.handlers.wsgi.WSGIHandler"}
# Channels' middleware around a URLRouter: auth, sessions, cookies, origin
# checks (each keeps the inner app in .inner or .application).
_CHANNELS_WRAPPER = re.compile(r"\bchannels\.(auth|sessions|security|middleware)\.")


def label_of(obj):
    if isinstance(obj, (types.FunctionType, types.MethodType)):
        return "%s.%s" % (
            getattr(obj, "__module__", "?"),
            getattr(obj, "__qualname__", "?"),
        )
    t = type(obj)
    return "%s.%s" % (t.__module__, t.__qualname__)


_RULE_VAR = re.compile(
    r"<(?:([a-zA-Z_][a-zA-Z0-9_]*)(?:\((.*?)\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>"
)


def _rule_parts(rule):
    """(is_dynamic, text or variable name) of the path part of a rule."""
    trace = getattr(rule, "_trace", None)
    if trace:
        for i, (dynamic, data) in enumerate(trace):
            if not dynamic and data == "|":
                return trace[i + 1 :]
    parts = []
    pos = 0
    for m in _RULE_VAR.finditer(rule.rule):
        if m.start() > pos:
            parts.append((False, rule.rule[pos : m.start()]))
        parts.append((True, m.group(3)))
        pos = m.end()
    if pos < len(rule.rule):
        parts.append((False, rule.rule[pos:]))
    return parts


def _literal_head(rule_text):
    head = rule_text.split("<", 1)[0]
    return head or "/"


def _int_regex(conv):
    """Werkzeug's int converter matches \\d+ and then checks fixed_digits,
    min and max on the value: approximated by the number of digits, leading
    zeros allowed (int("007") is 7)."""
    fixed = getattr(conv, "fixed_digits", 0) or 0
    signed = bool(getattr(conv, "signed", False))
    lo = getattr(conv, "min", None)
    hi = getattr(conv, "max", None)
    negative = signed and not (lo is not None and lo >= 0)
    sign = "-?" if negative else ""
    if fixed:
        if negative and fixed > 1:
            return "-?[0-9]{%d,%d}" % (fixed - 1, fixed)
        return "[0-9]{%d}" % fixed
    if hi is not None and (lo is not None or not negative):
        bounds = [abs(hi)] + ([abs(lo)] if negative and lo is not None else [])
        digits = max(len(str(b)) for b in bounds)
        if digits == 1:
            return sign + "0*[0-9]"
        return sign + "0*[0-9]{1,%d}" % digits
    return sign + "[0-9]+"
