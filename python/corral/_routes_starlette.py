"""Route extraction, part three: Starlette and FastAPI apps, walked for
corral._routes_werkzeug's Extractor (which finds the app and hands it
here).

A Starlette router tries its routes in order and, when none matches an
HTTP request, redirects /x/ to /x (or /x to /x/) if that form matches
(``redirect_slashes``). So a route's regex covers its own paths plus the
paths redirected to it. Mounts, hosts and FastAPI's included routers are
walked with the mount path as a prefix, which may hold converters, so the
prefix travels as a regex (``Base``), with its literal text when it is
all literal.

Only called for an app that has imported Starlette already; nothing here
imports it.
"""

import os
import re
import types

from . import _re2
from ._re2 import Unsupported, escape, translate
from ._routes_werkzeug import MAX_DEPTH, MAX_ROOT_FILES, _class_names, code_mentions, label_of

# Starlette's {name} / {name:type} in paths.
PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(:[a-zA-Z_][a-zA-Z0-9_]*)?}")

_STARLETTE_APP = "starlette.applications.Starlette"
_FASTAPI_APP = "fastapi.applications.FastAPI"
_ROUTER = "starlette.routing.Router"
_ROUTE = "starlette.routing.Route"
_WS_ROUTE = "starlette.routing.WebSocketRoute"
_MOUNT = "starlette.routing.Mount"
_HOST = "starlette.routing.Host"
_STATIC = "starlette.staticfiles.StaticFiles"
_BASE_HTTP = "starlette.middleware.base.BaseHTTPMiddleware"

# Middleware that answers no path of its own and leaves the path alone.
# (CORSMiddleware answers preflight requests on any path, and
# HTTPSRedirectMiddleware redirects any plain-HTTP path: neither makes a
# path a route.)
KNOWN_MIDDLEWARE = frozenset(
    (
        "starlette.middleware.cors.CORSMiddleware",
        "starlette.middleware.gzip.GZipMiddleware",
        "starlette.middleware.trustedhost.TrustedHostMiddleware",
        "starlette.middleware.httpsredirect.HTTPSRedirectMiddleware",
        "starlette.middleware.sessions.SessionMiddleware",
        "starlette.middleware.authentication.AuthenticationMiddleware",
        "starlette.middleware.errors.ServerErrorMiddleware",
        "starlette.middleware.exceptions.ExceptionMiddleware",
        "starlette.middleware.body_limit.RequestBodyLimitMiddleware",
        "fastapi.middleware.asyncexitstack.AsyncExitStackMiddleware",
        "uvicorn.middleware.proxy_headers.ProxyHeadersMiddleware",
        "sentry_sdk.integrations.asgi.SentryAsgiMiddleware",
    )
)

# What the code of an ASGI middleware names when it reads the request
# path: scope["path"], request.url, ...
_ASGI_PATH_KEYS = frozenset(
    ("path", "raw_path", "root_path", "PATH_INFO", "SCRIPT_NAME", "REQUEST_URI", "RAW_URI")
)
_ASGI_PATH_NAMES = frozenset(
    ("url", "raw_path", "root_path", "path_info", "script_name", "full_path")
)


def _cls_names(cls):
    try:
        return {"%s.%s" % (c.__module__, c.__qualname__) for c in cls.__mro__}
    except Exception:
        return set()


def _code_reads_path(code):
    return code_mentions(code, _ASGI_PATH_NAMES, _ASGI_PATH_KEYS)


def _functions(obj, stop=()):
    """The Python functions of a function, or of a class (its own and its
    bases' up to the classes named in stop)."""
    if isinstance(obj, (types.FunctionType, types.MethodType)):
        return [getattr(obj, "__func__", obj)]
    funcs = []
    klasses = obj.__mro__ if isinstance(obj, type) else type(obj).__mro__
    for klass in klasses:
        if klass is object or "%s.%s" % (klass.__module__, klass.__qualname__) in stop:
            break
        for value in vars(klass).values():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                value = value.fget
            if isinstance(value, types.FunctionType):
                funcs.append(value)
    call = getattr(obj, "__call__", None) if not isinstance(obj, type) else None
    if isinstance(call, types.MethodType) and call.__func__ not in funcs:
        funcs.append(call.__func__)
    return funcs


def reads_path(obj, stop=()):
    """Whether the code of a middleware (function or class) reads the
    request path: it may answer some paths itself, or move the app."""
    for func in _functions(obj, stop):
        code = getattr(func, "__code__", None)
        if code is not None and _code_reads_path(code):
            return True
    return False


def _mentions_status(code, depth=0):
    if depth > 8:
        return False
    if "status_code" in code.co_names or "status_code" in code.co_varnames:
        return True
    for const in code.co_consts:
        if const == 404 and type(const) is int:
            return True
        if isinstance(const, types.CodeType) and _mentions_status(const, depth + 1):
            return True
    return False


def not_found_handler(handlers, exception_classes, own_packages):
    """Why an app's 404 handler may answer paths outside its routes (an SPA
    serving its index page for any path), or None. A handler that names a
    status code, as a custom 404 page does, is taken to keep the 404."""
    try:
        items = list((handlers or {}).items())
    except Exception:
        return None
    for key, handler in items:
        if not (
            key == 404
            or (isinstance(key, type) and _cls_names(key) & exception_classes)
        ):
            continue
        module = str(getattr(handler, "__module__", "") or "")
        if module.split(".")[0] in own_packages:
            continue
        funcs = _functions(handler) if not isinstance(handler, type) else []
        codes = [f.__code__ for f in funcs if hasattr(f, "__code__")]
        if codes and not any(_mentions_status(c) for c in codes):
            return (
                "the handler %s for %s answers without naming a status code: "
                "it may answer any path"
                % (label_of(handler), getattr(key, "__name__", key))
            )
    return None


# -- regexes


_SLASH = 0x2F


def _may_contain_slash(items, groups):
    """Whether a parsed regex may match a string holding a slash (an
    over-estimate)."""
    for op, av in items:
        if op is _re2.LITERAL:
            if av == _SLASH:
                return True
        elif op is _re2.NOT_LITERAL:
            if av != _SLASH:
                return True
        elif op is _re2.ANY:
            return True
        elif op is _re2.IN:
            try:
                ranges = _re2._Writer().charset(av, False)
            except Unsupported:
                return True
            if any(lo <= _SLASH <= hi for lo, hi in ranges):
                return True
        elif op is _re2.CATEGORY:
            if "_NOT_" in av.name:
                return True
        elif op is _re2.BRANCH:
            if any(_may_contain_slash(sub.data, groups) for sub in av[1]):
                return True
        elif op is _re2.SUBPATTERN:
            if _may_contain_slash(av[-1].data, groups):
                return True
        elif op in (_re2.MAX_REPEAT, _re2.MIN_REPEAT) or (
            _re2.POSSESSIVE_REPEAT is not None and op is _re2.POSSESSIVE_REPEAT
        ):
            if av[1] > 0 and _may_contain_slash(av[2].data, groups):
                return True
        elif _re2.ATOMIC_GROUP is not None and op is _re2.ATOMIC_GROUP:
            if _may_contain_slash(av.data, groups):
                return True
        elif op in (_re2.AT, _re2.ASSERT, _re2.ASSERT_NOT):
            continue
        else:
            return True  # backreferences, conditionals: assume so
    return False


class Param:
    """A converter in a path: its regex for Go, and whether it may match a
    slash or nothing (then the slash redirects are harder to tell)."""

    def __init__(self, rule, convertor):
        self.rule = rule
        self.text = None
        regex = getattr(convertor, "regex", None)
        if not isinstance(regex, str):
            raise Unsupported("convertor %s has no regex" % label_of(convertor))
        piece = translate(regex)
        if piece.start or piece.end:
            raise Unsupported("anchors in the regex of convertor %s" % label_of(convertor))
        self.regex = piece.concat()
        self.relaxed = piece.relaxed
        self.is_path = regex == ".*"
        try:
            parsed = _re2._sre_parse.parse(regex)
            self.slashy = _may_contain_slash(parsed.data, {})
            self.empty = re.fullmatch(regex, "") is not None
        except Exception:
            self.slashy = self.empty = True


class Lit:
    def __init__(self, text):
        self.text = text
        self.rule = text
        self.regex = escape(text)
        self.relaxed = []


def tokens_of(path, convertors):
    """The literal parts and converters of a Starlette path."""
    out = []
    pos = 0
    for m in PARAM.finditer(path):
        if m.start() > pos:
            out.append(Lit(path[pos : m.start()]))
        conv = (convertors or {}).get(m.group(1))
        if conv is None:
            raise Unsupported("no convertor for {%s}" % m.group(1))
        out.append(Param(m.group(0), conv))
        pos = m.end()
    if pos < len(path):
        out.append(Lit(path[pos:]))
    return out


def literal_head(tokens):
    head = []
    for t in tokens:
        if t.text is None:
            break
        head.append(t.text)
    return "".join(head)


def known_regex(tokens, redirect):
    """The regex (unanchored) of the paths that reach or redirect to an
    HTTP route: with redirect_slashes, /x/ when only /x exists (any number
    of trailing slashes is stripped) and /x when only /x/ exists."""
    body = "".join(t.regex for t in tokens)
    if not redirect or not tokens or body == "/":
        return body  # the router never redirects "/"
    last = tokens[-1]
    if last.text is not None:
        if last.text.endswith("/"):
            return body[:-1] + "/?"
        return body + "/*"
    if not (last.slashy or last.empty):
        return body + "/*"
    head = "".join(t.regex for t in tokens[:-1])
    if last.is_path:
        # {p:path} matches anything, even nothing: /files redirects to
        # /files/ when the route is /files/{p:path}.
        if head.endswith("/"):
            return head[:-1] + "(?:/.*)?"
        return body
    # A custom converter that may match a slash or nothing: everything
    # from its place on.
    if head.endswith("/"):
        return head[:-1] + "(?:/(?s:.*))?"
    return head + "(?s:.*)"


class Base:
    """Where a router is mounted: its regex (unanchored), its text for
    people, its literal text when it has no converter, and the mount names
    before endpoints."""

    def __init__(self, regex, rule, literal, names=()):
        self.regex = regex
        self.rule = rule
        self.literal = literal
        self.names = tuple(names)

    @classmethod
    def of(cls, prefix):
        return cls(escape(prefix), prefix, prefix)

    def child(self, tokens, name=None):
        regex = "".join(t.regex for t in tokens)
        rule = "".join(t.rule for t in tokens)
        literal = None
        if self.literal is not None and all(t.text is not None for t in tokens):
            literal = self.literal + "".join(t.text for t in tokens)
        names = self.names + ((name,) if name else ())
        return Base(self.regex + regex, self.rule + rule, literal, names)

    def endpoint(self, name):
        return ":".join(self.names + (str(name),))


class Starlette:
    """Walks a Starlette or FastAPI app (or a bare Router) for the
    Extractor ``ex``."""

    def __init__(self, ex):
        self.ex = ex

    # -- entry points from Extractor.visit

    def visit(self, obj, base, depth):
        """A Starlette app, router or StaticFiles under base. False if its
        routes cannot be told."""
        if depth > MAX_DEPTH:
            self.ex.warn("too many nested mounts to follow")
            return False
        names = _class_names(obj)
        if _STARLETTE_APP in names:
            return self.application(obj, names, base, depth)
        if _ROUTER in names:
            self.ex.framework("fastapi" if "fastapi.routing.APIRouter" in names else "starlette")
            return self.router(obj, base, depth)
        if _STATIC in names:
            self.ex.framework("starlette")
            self.static_files(obj, base, "StaticFiles")
            return True
        return False

    def application(self, app, names, base, depth):
        self.ex.framework("fastapi" if _FASTAPI_APP in names else "starlette")
        why = self.middleware_problem(app)
        if why:
            self.ex.warn(why)
            return False
        why = not_found_handler(
            getattr(app, "exception_handlers", None),
            {"starlette.exceptions.HTTPException"},
            ("starlette", "fastapi"),
        )
        if why:
            self.ex.warn(why)
            return False
        router = getattr(app, "router", None)
        if router is None:
            self.ex.warn("%s has no router" % label_of(app))
            return False
        if not self.router(router, base, depth + 1):
            return False
        root = str(getattr(app, "root_path", "") or "").rstrip("/")
        if root.startswith("/"):
            # FastAPI(root_path="/api") sets the scope's root_path, and
            # Starlette then routes /api/items as /items: both count.
            under = base.child([Lit(root)])
            self.ex.add_route(under.rule, "^" + under.regex + "$", [], "(root_path)")
            return self.router(router, under, depth + 1)
        return True

    def middleware_problem(self, app):
        """Why the app's middleware makes its routes unknowable, or None."""
        for entry in list(getattr(app, "user_middleware", None) or ()):
            try:
                cls, args, kwargs = entry
            except Exception:  # Starlette before 0.35: (cls, options)
                cls = getattr(entry, "cls", entry)
                args = ()
                kwargs = getattr(entry, "options", None) or {}
            names = _cls_names(cls) if isinstance(cls, type) else set()
            if names & KNOWN_MIDDLEWARE:
                continue
            label = label_of(cls) if not isinstance(cls, type) else (
                "%s.%s" % (cls.__module__, cls.__qualname__)
            )
            if _BASE_HTTP in names:
                dispatch = (kwargs or {}).get("dispatch")
                if dispatch is None and args:
                    dispatch = args[0]
                if dispatch is not None:
                    label = label_of(dispatch)
                    touches = reads_path(dispatch)
                else:
                    touches = reads_path(cls, stop=(_BASE_HTTP,))
            else:
                touches = reads_path(cls)
            if touches:
                return "middleware %s reads or rewrites the request path itself" % label
            self.ex.warn(
                "assuming middleware %s answers no path itself and leaves "
                "the path unchanged" % label
            )
        return None

    # -- routers

    def router(self, router, base, depth):
        if depth > MAX_DEPTH:
            self.ex.warn("too many nested mounts to follow")
            return False
        redirect = bool(getattr(router, "redirect_slashes", True))
        for route in list(getattr(router, "routes", None) or ()):
            if not self.route(route, base, redirect, depth):
                return False
        # FastAPI's frontend() routes, tried after everything else.
        for route in list(getattr(router, "_low_priority_routes", None) or ()):
            if not self.low_priority(route, "", base, redirect, depth):
                return False
        default = getattr(router, "default", None)
        if default is not None and not (
            getattr(default, "__self__", None) is router
            and getattr(default, "__name__", "") == "not_found"
        ):
            # Unmatched requests go to another app, path unchanged.
            self.sub_app(default, base, "(default %s)" % label_of(default), depth)
        return True

    def route(self, route, base, redirect, depth):
        names = _class_names(route)
        try:
            if callable(getattr(route, "effective_route_contexts", None)):
                return self.included(route, base, redirect, depth)
            if _MOUNT in names:
                self.mount(route, base, redirect, depth)
            elif _HOST in names:
                self.host(route, base, depth)
            elif _WS_ROUTE in names:
                self.endpoint(route.path, route.param_convertors, ["GET"],
                              getattr(route, "name", None), base, redirect, False)
            elif _ROUTE in names:
                self.endpoint(route.path, route.param_convertors,
                              sorted(getattr(route, "methods", None) or ()),
                              getattr(route, "name", None), base, redirect, True)
            else:
                self.ex.warn(
                    "route %s: an unknown kind of route, which may match any path"
                    % label_of(route)
                )
                return False
        except Unsupported as e:
            self.fallback(base, getattr(route, "path", "") or "", str(e))
        return True

    def endpoint(self, path, convertors, methods, name, base, redirect, http):
        try:
            tokens = tokens_of(path, convertors)
        except Unsupported as e:
            self.fallback(base, path, str(e))
            return
        for t in tokens:
            for what in t.relaxed:
                self.ex.warn(
                    "route %r: %s (matches more than Starlette does)"
                    % (base.rule + path, what)
                )
        regex = known_regex(tokens, redirect and http)
        self.ex.add_route(
            base.rule + path,
            "^" + base.regex + regex + "$",
            list(methods),
            base.endpoint(name or "?"),
        )

    def fallback(self, base, path, why):
        """A route that cannot be written: everything under its literal
        head."""
        head = path.split("{", 1)[0]
        if base.literal is not None:
            lit = base.literal + head
            lit = lit or "/"
            self.ex.warn(
                "route %r: %s; every path under %r counts as a route"
                % (base.rule + path, why, lit)
            )
            self.ex.add_prefix(lit)
            return
        self.ex.warn(
            "route %r: %s; every path under %r counts as a route"
            % (base.rule + path, why, base.rule + head)
        )
        self.ex.add_route(
            base.rule + head + "...",
            "^" + base.regex + escape(head) + "(?s:.*)$",
            [],
            "(unreadable route)",
        )

    # -- mounts

    def mount(self, route, base, redirect, depth):
        path = getattr(route, "path", "") or ""
        tokens = tokens_of(path, getattr(route, "param_convertors", {}))
        sub = base.child(tokens, getattr(route, "name", None))
        app = getattr(route, "_base_app", None) or getattr(route, "app", None)
        # The mount point itself: the router redirects it to mount/ (a
        # mount at "" takes every path as it is).
        if path and redirect:
            self.ex.add_route(
                sub.rule,
                "^" + sub.regex + "$",
                [],
                "(redirect to %s/)" % sub.rule,
            )
        self.sub_app(app, sub, "(mount %s)" % label_of(app), depth)

    def sub_app(self, app, base, what, depth):
        """An app under base (a mount: its paths start with base/; or a
        router's default: base and every path under it)."""
        names = _class_names(app)
        if _STATIC in names:
            self.static_files(app, base, ":".join(base.names) or "StaticFiles")
            return
        if _STARLETTE_APP in names or _ROUTER in names:
            if self.visit(app, base, depth + 1):
                return
        elif base.literal is not None:
            if self.ex.visit(app, base.literal, depth + 1):
                return
        else:
            self.ex.warn(
                "%s under %r: only Starlette apps are read under a mount "
                "path with converters" % (label_of(app), base.rule)
            )
        self.mount_fallback(base, what)

    def mount_fallback(self, base, what):
        self.ex.warn(
            "mount %r: routes unknown; every path under it counts as a route"
            % (base.rule or "/")
        )
        if base.literal is not None:
            self.ex.add_prefix(base.literal + "/")
            return
        self.ex.add_route(
            base.rule + "/...", "^" + base.regex + "/(?s:.*)$", [], what
        )

    def static_files(self, app, base, endpoint):
        """StaticFiles under base: every path below it (at the root, its
        files and directories)."""
        if base.regex == "":
            self.root_files(app)
            return
        self.ex.add_route(
            base.rule + "/{path:path}",
            "^" + base.regex + "/.*$",
            ["GET", "HEAD"],
            endpoint,
            True,
        )

    def root_files(self, app):
        """StaticFiles (or a frontend) at the root: each file and directory
        at the top of its directories, as WhiteNoise's root files."""
        dirs = []
        for d in list(getattr(app, "all_directories", None) or ()) or [
            getattr(app, "directory", None)
        ]:
            if d is not None:
                dirs.append(os.fspath(d))
        entries = set()
        for d in dirs:
            try:
                entries.update(os.listdir(d))
            except OSError:
                continue
        if len(entries) > MAX_ROOT_FILES:
            self.ex.warn(
                "static files at the root: more than %d files, every path "
                "counts as a route" % MAX_ROOT_FILES
            )
            self.ex.add_prefix("/")
            return
        html = bool(getattr(app, "html", False))
        if html:
            self.ex.add_route("/", "^/$", ["GET", "HEAD"], "StaticFiles", True)
        for name in sorted(entries):
            isdir = any(os.path.isdir(os.path.join(d, name)) for d in dirs)
            if isdir:
                # In html mode, dir redirects to dir/ when it has an index.
                index = html and any(
                    os.path.isfile(os.path.join(d, name, "index.html")) for d in dirs
                )
                self.ex.add_route(
                    "/" + name + "/{path:path}",
                    "^/" + escape(name) + ("(?:/.*)?$" if index else "/.*$"),
                    ["GET", "HEAD"],
                    "StaticFiles",
                    True,
                )
            else:
                self.ex.add_route(
                    "/" + name, "^/" + escape(name) + "$", ["GET", "HEAD"], "StaticFiles", True
                )

    def host(self, route, base, depth):
        self.ex.warn(
            "Host(%r): its routes count on every host (corral does not match hosts)"
            % getattr(route, "host", "?")
        )
        app = getattr(route, "app", None)
        self.sub_app(app, base, "(host %s)" % getattr(route, "host", "?"), depth)

    # -- FastAPI

    def included(self, route, base, redirect, depth):
        """FastAPI's include_router() (recent versions keep the router and
        its prefix as a route of its own, where older ones copied its
        routes): every route with its prefix, as the including router
        tries them."""
        for ctx in list(route.effective_route_contexts()):
            starlette_route = getattr(ctx, "starlette_route", None)
            if starlette_route is not None:
                if not self.route(starlette_route, base, redirect, depth):
                    return False
                continue
            original = getattr(ctx, "original_route", None)
            if _ROUTE in _class_names(original):
                self.endpoint(
                    ctx.path,
                    ctx.param_convertors,
                    sorted(getattr(ctx, "methods", None) or ()),
                    getattr(ctx, "name", None),
                    base,
                    redirect,
                    True,
                )
            elif not self.low_priority(
                original, getattr(ctx, "frontend_prefix", ""), base, redirect, depth
            ):
                return False
        lows = getattr(route, "effective_low_priority_routes", None)
        if callable(lows):
            for ctx in list(lows()):
                original = getattr(ctx, "original_route", None)
                starlette_route = getattr(ctx, "starlette_route", None)
                if starlette_route is not None:
                    if not self.route(starlette_route, base, redirect, depth):
                        return False
                elif not self.low_priority(
                    original, getattr(ctx, "frontend_prefix", ""), base, redirect, depth
                ):
                    return False
        return True

    def low_priority(self, group, prefix, base, redirect, depth):
        """FastAPI's frontend(): a static build served at a path and below
        it (index.html for a browser's navigation to any path below)."""
        subs = getattr(group, "routes", None)
        if subs is None or not all(
            hasattr(r, "path") and _STATIC in _class_names(getattr(r, "app", None))
            for r in subs
        ):
            return self.route(group, base, redirect, depth)
        for r in subs:
            path = r.path if not prefix else (prefix if r.path == "/" else prefix + r.path)
            if path == "/":
                fallback = getattr(r.app, "fallback", "auto")
                if base.regex == "" and fallback in (None, "404.html"):
                    self.root_files(r.app)
                    continue
                self.ex.warn(
                    "frontend at %r answers any path below it with its index page"
                    % (base.rule or "/")
                )
                self.mount_fallback_here(base)
                continue
            self.ex.add_route(
                base.rule + path + "/{path:path}",
                "^" + base.regex + escape(path) + "(?:/(?s:.*))?$",
                ["GET", "HEAD"],
                "(frontend)",
                True,
            )
        return True

    def mount_fallback_here(self, base):
        """Every path under base, base itself included."""
        if base.literal is not None:
            self.ex.add_prefix(base.literal + "/")
            if base.literal:
                self.ex.add_route(base.literal, "^" + escape(base.literal) + "$", [], "(frontend)")
            return
        self.ex.add_route(base.rule + "/...", "^" + base.regex + "(?:/(?s:.*))?$", [], "(frontend)")
