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
"""

import json
import os
import re
import sys
import types

try:  # Python 3.11+
    from re import _constants as _sre_c
    from re import _parser as _sre_parse
except ImportError:  # Python 3.9, 3.10
    import sre_constants as _sre_c
    import sre_parse as _sre_parse

# The routes object must fit in HELLO (1 MiB) next to the rest of it.
MAX_JSON = 768 * 1024
# Go's regexp refuses counted repetitions above 1000, nested ones included
# (the product along any path of {n,m} counts).
GO_MAX_REPEAT = 1000
MAX_UNICODE = 0x10FFFF
# How deep to look through wrappers and mounts.
MAX_DEPTH = 16
# Longest warning kept (exception texts can be long).
MAX_WARNING = 300
# Files listed one by one for a static directory served at the root.
MAX_ROOT_FILES = 500


class Unsupported(Exception):
    """A pattern that cannot be written for Go's regexp, even relaxed."""


# ---------------------------------------------------------------------------
# Python regex -> RE2 (Go regexp) syntax
#
# The pattern is parsed with the re module's own parser and written back in
# a subset of the syntax both engines read alike: no capturing groups (the
# guard only asks "does it match"), \xHH escapes, explicit classes instead
# of \d \w \s (whose meaning differs between the two).


def _op(name):
    return getattr(_sre_c, name, None)


LITERAL = _op("LITERAL")
NOT_LITERAL = _op("NOT_LITERAL")
ANY = _op("ANY")
IN = _op("IN")
BRANCH = _op("BRANCH")
SUBPATTERN = _op("SUBPATTERN")
MAX_REPEAT = _op("MAX_REPEAT")
MIN_REPEAT = _op("MIN_REPEAT")
POSSESSIVE_REPEAT = _op("POSSESSIVE_REPEAT")  # 3.11+
ATOMIC_GROUP = _op("ATOMIC_GROUP")  # 3.11+
AT = _op("AT")
ASSERT = _op("ASSERT")
ASSERT_NOT = _op("ASSERT_NOT")
GROUPREF = _op("GROUPREF")
GROUPREF_EXISTS = _op("GROUPREF_EXISTS")
CATEGORY = _op("CATEGORY")
NEGATE = _op("NEGATE")
RANGE = _op("RANGE")
MAXREPEAT = _sre_c.MAXREPEAT

_AT_START = {"AT_BEGINNING", "AT_BEGINNING_STRING"}
_AT_END = {"AT_END", "AT_END_STRING"}

_ASCII_DIGIT = [(0x30, 0x39)]
_ASCII_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_ASCII_SPACE = [(0x09, 0x0D), (0x20, 0x20)]
_UNI_SPACE_ASCII_PART = [(0x09, 0x0D), (0x1C, 0x20)]
_NON_ASCII = [(0x80, MAX_UNICODE)]


def _norm(ranges):
    """Sorted, merged, clipped to the code point space."""
    out = []
    for lo, hi in sorted(ranges):
        lo, hi = max(lo, 0), min(hi, MAX_UNICODE)
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _complement(ranges):
    out, nxt = [], 0
    for lo, hi in _norm(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_UNICODE:
        out.append((nxt, MAX_UNICODE))
    return out


def _category(name, ascii_only):
    """(narrowest, widest) sets for a class escape.

    Python's \\d, \\w and \\s are Unicode-aware, Go's are ASCII only. The
    widest set is used in positive classes and the narrowest under
    negation, so the result is never narrower than Python's: \\w and \\s
    take every non-ASCII character. \\d stays [0-9] (a path with
    non-ASCII digits is one only a scanner sends)."""
    if name.endswith("DIGIT"):
        lo = hi = _ASCII_DIGIT
    elif name.endswith("WORD"):
        lo = _ASCII_WORD
        hi = lo if ascii_only else lo + _NON_ASCII
    elif name.endswith("SPACE"):
        if ascii_only:
            lo = hi = _ASCII_SPACE
        else:
            lo, hi = _UNI_SPACE_ASCII_PART, _UNI_SPACE_ASCII_PART + _NON_ASCII
    else:
        raise Unsupported("class escape %s" % name)
    if "_NOT_" in name:
        return _complement(hi), _complement(lo)
    return _norm(lo), _norm(hi)


_META = frozenset("\\.^$|?*+()[]{}")
_CLASS_META = frozenset("\\]^-[")


def _char(cp, in_class=False):
    """One code point as a literal: metacharacters escaped, printable
    characters as they are (both engines read a pattern as code points),
    the rest of Latin-1 as \\xHH."""
    c = chr(cp)
    if c in (_CLASS_META if in_class else _META):
        return "\\" + c
    if 0x21 <= cp <= 0x7E:
        return c
    if 0xD800 <= cp <= 0xDFFF:
        raise Unsupported("surrogate code point in a pattern")
    if cp < 0x80 or (cp < 0x100 and not c.isprintable()):
        return "\\x%02x" % cp
    return c


def _clip_surrogates(ranges):
    out = []
    for lo, hi in ranges:
        if lo <= 0xDFFF and hi >= 0xD800:
            if lo < 0xD800:
                out.append((lo, 0xD7FF))
            if hi > 0xDFFF:
                out.append((0xE000, hi))
        else:
            out.append((lo, hi))
    return out


def _class_items(ranges):
    parts = []
    if (0x2D, 0x2D) in ranges:
        # A lone '-' first in a class needs no escape in either engine.
        parts.append("-")
        ranges = [r for r in ranges if r != (0x2D, 0x2D)]
    for lo, hi in ranges:
        if lo == hi:
            parts.append(_char(lo, True))
        elif hi == lo + 1:
            parts.append(_char(lo, True) + _char(hi, True))
        else:
            parts.append(_char(lo, True) + "-" + _char(hi, True))
    return "".join(parts)


def class_regex(ranges):
    """A character class for a set of code point ranges, written so that
    both engines read it alike (non-ASCII bounds only as raw characters,
    never as \\u or \\x{} escapes)."""
    ranges = _norm(ranges)
    if not ranges:
        raise Unsupported("a character class that matches nothing")
    if ranges == [(0, MAX_UNICODE)]:
        return "(?s:.)"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _char(ranges[0][0])
    comp = _complement(ranges)
    if comp and comp[-1][1] < 0x100:
        return "[^" + _class_items(comp) + "]"
    return "[" + _class_items(_clip_surrogates(ranges)) + "]"


class Piece:
    """One Python regex translated: ``body`` in RE2 syntax without the
    anchors, whether it was anchored at the start and at the end, the
    literal text it starts with, and how it was relaxed."""

    def __init__(self, body, kind, start, end, literal, whole, relaxed):
        self.body = body
        self.kind = kind  # "empty" | "atom" | "rep" | "seq" | "alt"
        self.start = start
        self.end = end
        self.literal = literal
        self.whole = whole  # the body is exactly the literal text
        self.relaxed = relaxed

    def concat(self):
        """body, safe to concatenate with others."""
        return "(?:%s)" % self.body if self.kind == "alt" else self.body


class _Writer:
    """Writes parsed regex items back in RE2 syntax. ``budget`` is what is
    left of Go's limit on nested counted repeats."""

    def __init__(self):
        self.relaxed = []
        self.groups = {}  # group number -> emitted text, for backreferences

    def relax(self, what):
        if what not in self.relaxed:
            self.relaxed.append(what)

    # Every emitter returns (text, kind).

    def seq(self, items, flags, budget):
        parts = []
        for op, av in items:
            text, kind = self.item(op, av, flags, budget)
            if kind == "empty":
                continue
            parts.append((text, kind))
        if not parts:
            return "", "empty"
        if len(parts) == 1:
            return parts[0]
        return "".join("(?:%s)" % t if k == "alt" else t for t, k in parts), "seq"

    def item(self, op, av, flags, budget):
        ascii_only = bool(flags & re.ASCII)
        if op is LITERAL:
            return _char(av), "atom"
        if op is NOT_LITERAL:
            return class_regex(_complement([(av, av)])), "atom"
        if op is ANY:
            return ("(?s:.)" if flags & re.DOTALL else "."), "atom"
        if op is IN:
            return class_regex(self.charset(av, ascii_only)), "atom"
        if op is CATEGORY:
            return class_regex(_category(av.name, ascii_only)[1]), "atom"
        if op is BRANCH:
            alts = []
            for sub in av[1]:
                text, kind = self.seq(sub.data, flags, budget)
                alts.append(text)
            return "|".join(alts), "alt"
        if op is SUBPATTERN:
            group, add, delete, sub = av
            inner = (flags | add) & ~delete
            text, kind = self.seq(sub.data, inner, budget)
            if group is not None:
                self.groups[group] = (text, kind)
            if (inner ^ flags) & re.IGNORECASE:
                text = "(?%s:%s)" % ("i" if inner & re.IGNORECASE else "-i", text)
                kind = "atom"
            return text, kind
        if ATOMIC_GROUP is not None and op is ATOMIC_GROUP:
            self.relax("atomic group as a plain group")
            return self.seq(av.data, flags, budget)
        if (
            op is MAX_REPEAT
            or op is MIN_REPEAT
            or (POSSESSIVE_REPEAT is not None and op is POSSESSIVE_REPEAT)
        ):
            if op is not MAX_REPEAT and op is not MIN_REPEAT:
                self.relax("possessive repeat as a greedy one")
            return self.repeat(av, flags, budget, lazy=op is MIN_REPEAT)
        if op is AT:
            name = av.name
            if name in _AT_START or name in _AT_END:
                self.relax("anchor inside the pattern dropped")
            else:
                self.relax("word boundary dropped")
            return "", "empty"
        if op is ASSERT or op is ASSERT_NOT:
            self.relax("lookaround dropped")
            return "", "empty"
        if op is GROUPREF:
            self.relax("backreference as a copy of its group")
            if av in self.groups:
                text, kind = self.groups[av]
                return ("(?:%s)" % text if kind != "atom" else text), "atom"
            return "(?s:.*)", "rep"
        if op is GROUPREF_EXISTS:
            self.relax("conditional group as an alternation")
            yes = self.seq(av[1].data, flags, budget)[0]
            no = self.seq(av[2].data, flags, budget)[0] if av[2] is not None else ""
            return "%s|%s" % (yes, no), "alt"
        raise Unsupported("regex construct %s" % getattr(op, "name", op))

    def charset(self, items, ascii_only):
        negate = False
        exact = []  # literals and ranges
        narrow = []  # categories, at their narrowest
        wide = []  # and at their widest
        for op, av in items:
            if op is NEGATE:
                negate = True
            elif op is LITERAL:
                exact.append((av, av))
            elif op is RANGE:
                exact.append(av)
            elif op is CATEGORY:
                lo, hi = _category(av.name, ascii_only)
                narrow.extend(lo)
                wide.extend(hi)
            else:
                raise Unsupported("class item %s" % getattr(op, "name", op))
        # Never narrower than Python's class: under negation the
        # categories count at their narrowest.
        if negate:
            return _complement(exact + narrow)
        return _norm(exact + wide)

    def repeat(self, av, flags, budget, lazy):
        lo, hi, sub = av
        unbounded = hi >= MAXREPEAT
        if lo > GO_MAX_REPEAT:
            self.relax("repeat count above %d" % GO_MAX_REPEAT)
            lo, hi, unbounded = GO_MAX_REPEAT, MAXREPEAT, True
        if not unbounded and hi > GO_MAX_REPEAT:
            self.relax("repeat count above %d" % GO_MAX_REPEAT)
            unbounded = True
        # Go checks the product of nested counted repeats against 1000.
        counted = not ((lo, unbounded) in ((0, True), (1, True)) or (lo, hi) == (0, 1))
        factor = (lo if unbounded else hi) if counted else 1
        if counted and factor > budget:
            self.relax("nested repeat counts too large for Go")
            counted = False
            unbounded = True
            lo = min(lo, 1)
            factor = 1
        inner_budget = budget // factor if factor > 0 else budget
        text, kind = self.seq(sub.data, flags, inner_budget)
        if kind == "empty":
            return "", "empty"
        if kind != "atom":
            text = "(?:%s)" % text
        if unbounded:
            q = {0: "*", 1: "+"}.get(lo, "{%d,}" % lo)
        elif (lo, hi) == (0, 1):
            q = "?"
        elif lo == hi:
            q = "{%d}" % lo
        else:
            q = "{%d,%d}" % (lo, hi)
        if lazy:
            q += "?"
        return text + q, "rep"


class _Seq:
    """A stand-in for the parser's SubPattern: a list of items in .data."""

    def __init__(self, data):
        self.data = data


def _is_at(item, names):
    return item[0] is AT and item[1].name in names


def _split_anchors(items):
    """(anchored start, items, anchored end) of a top-level sequence. An
    alternation whose every branch is anchored counts as anchored."""
    start = end = False
    items = list(items)
    if items and _is_at(items[0], _AT_START):
        start, items = True, items[1:]
    if items and _is_at(items[-1], _AT_END):
        end, items = True, items[:-1]
    if len(items) == 1 and items[0][0] is BRANCH:
        alts = [list(sub.data) for sub in items[0][1][1]]
        if not start and all(a and _is_at(a[0], _AT_START) for a in alts):
            start, alts = True, [a[1:] for a in alts]
        if not end and all(a and _is_at(a[-1], _AT_END) for a in alts):
            end, alts = True, [a[:-1] for a in alts]
        items = [(BRANCH, (None, [_Seq(a) for a in alts]))]
    return start, items, end


def translate(pattern, flags=0):
    """Translate one Python regex (as Django or a converter wrote it) to a
    Piece. Raises Unsupported when it cannot be expressed for Go."""
    try:
        parsed = _sre_parse.parse(pattern, flags)
    except Exception as e:  # re.error, RecursionError, ...
        raise Unsupported("not a valid regex: %s" % e)
    state = parsed.state
    gflags = state.flags
    if gflags & re.LOCALE:
        raise Unsupported("the LOCALE flag")
    w = _Writer()
    items = parsed.data
    start, items, end = _split_anchors(items)
    if gflags & re.MULTILINE:
        # ^ and $ also match at newlines: as if unanchored.
        start = end = False
    literal = []
    whole = not gflags & re.IGNORECASE
    for op, av in items:
        if op is LITERAL and whole:
            literal.append(chr(av))
        else:
            whole = False
            break
    literal = "".join(literal)
    # A final slash stays last and outside any (?i:...), so that
    # APPEND_SLASH can make it optional.
    tail = ""
    if items and items[-1][0] is LITERAL and items[-1][1] == 0x2F:
        tail, items = "/", items[:-1]
    body, kind = w.seq(items, gflags, GO_MAX_REPEAT)
    if gflags & re.IGNORECASE and body:
        body, kind = "(?i:%s)" % body, "atom"
    if tail:
        body = ("(?:%s)" % body if kind == "alt" else body) + tail
        kind = "seq" if body != tail else "atom"
    try:
        re.compile(body)
    except Exception as e:
        raise Unsupported("translation %r does not compile: %s" % (body, e))
    return Piece(body, kind, start, end, literal, whole, w.relaxed)


def escape(text):
    """A literal for both engines."""
    return "".join(_char(ord(c)) for c in text)


# ---------------------------------------------------------------------------
# The extractor


def _class_names(obj):
    try:
        mro = type(obj).__mro__
    except Exception:
        return set()
    return {"%s.%s" % (c.__module__, c.__qualname__) for c in mro}


_PATH_KEYS = frozenset(("PATH_INFO", "SCRIPT_NAME", "REQUEST_URI", "RAW_URI"))
_PATH_NAMES = frozenset(("path_info", "script_name", "script_root", "full_path"))


def _code_touches_paths(code, depth=0):
    if depth > 8:
        return False
    if _PATH_NAMES.intersection(code.co_names):
        return True
    for const in code.co_consts:
        if isinstance(const, str) and const in _PATH_KEYS:
            return True
        if isinstance(const, types.CodeType) and _code_touches_paths(const, depth + 1):
            return True
    return False


def _touches_paths(obj):
    """Whether a wrapper's own code reads or rewrites the request path: such
    a wrapper may answer paths itself or move the app under a prefix, so the
    routes of what it wraps would not be its routes."""
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


def _sets_urlconf(cls):
    """Whether a middleware class's code names request.urlconf (django-hosts
    and the like choose the URLconf per request)."""
    for klass in cls.__mro__:
        if klass is object:
            continue
        for value in vars(klass).values():
            code = getattr(value, "__code__", None)
            if code is not None and "urlconf" in code.co_names:
                return True
    return False


class _Extractor:
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
        if "django.core.handlers.wsgi.WSGIHandler" in names:
            if "django.contrib.staticfiles.handlers.StaticFilesHandler" in names:
                base = getattr(obj, "base_url", None)
                path = base[2] if base and not base[1] else ""
                if path:
                    self.static_prefix(prefix + self.strip_script(path), "staticfiles")
                inner = getattr(obj, "application", None)
                if inner is not None and inner is not obj:
                    return self.visit(inner, prefix, depth + 1)
            return self.django(prefix)
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
            label = _label(obj)
            if _touches_paths(obj):
                self.warn("%s reads or rewrites the request path itself" % label)
                return False
            self.warn(
                "assuming %s passes every request to %s unchanged"
                % (label, _label(inner))
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
            if "django.core.handlers.wsgi.WSGIHandler" in names:
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
                self.mount_fallback(where, "(mount %s)" % _label(sub))
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
        project = _Django(self, prefix)
        why = project.unknowable()
        if why:
            self.warn(why)
            return False
        project.run()
        return True

    # -- result

    def result(self):
        if len(self.frameworks) == 1:
            framework = self.frameworks[0]
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
)


def _label(obj):
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


class _Django:
    """The URL resolver tree of a configured Django project."""

    def __init__(self, ex, prefix):
        from django.conf import settings

        self.ex = ex
        self.prefix = prefix
        self.settings = settings
        self.append_slash = bool(
            getattr(settings, "APPEND_SLASH", True)
        ) and self.middleware("django.middleware.common.CommonMiddleware")
        self.languages = None
        self.i18n_warned = False

    def middleware(self, dotted):
        """Whether MIDDLEWARE holds dotted or a subclass of it."""
        entries = list(getattr(self.settings, "MIDDLEWARE", None) or ())
        if dotted in entries:
            return True
        module_name, _, cls_name = dotted.rpartition(".")
        base = getattr(sys.modules.get(module_name), cls_name, None)
        for entry in entries:
            mod, _, name = str(entry).rpartition(".")
            cls = getattr(sys.modules.get(mod), name, None)
            if base is not None and isinstance(cls, type) and issubclass(cls, base):
                return True
        return False

    def unknowable(self):
        """Why the resolver tree is not the project's routes, if it is not:
        middleware that answers paths from the database, or that picks
        another URLconf per request."""
        for dotted, what in (
            (
                "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
                "flat pages",
            ),
            (
                "django.contrib.redirects.middleware.RedirectFallbackMiddleware",
                "redirects",
            ),
        ):
            if self.middleware(dotted):
                return "%s answers any path with %s from the database" % (
                    dotted.rpartition(".")[2],
                    what,
                )
        for entry in getattr(self.settings, "MIDDLEWARE", None) or ():
            mod, _, name = str(entry).rpartition(".")
            if mod.startswith("django."):
                continue
            cls = getattr(sys.modules.get(mod), name, None)
            if isinstance(cls, type) and _sets_urlconf(cls):
                return (
                    "%s sets request.urlconf: the URLconf depends on the request"
                    % entry
                )
        return None

    def run(self):
        from django.urls import get_resolver

        self.statics()
        self.node(get_resolver(), [], [], [])

    def statics(self):
        s = self.settings
        installed = list(getattr(s, "INSTALLED_APPS", None) or ())
        whitenoise = self.middleware("whitenoise.middleware.WhiteNoiseMiddleware")
        for name, served in (
            ("STATIC_URL", "django.contrib.staticfiles" in installed or whitenoise),
            ("MEDIA_URL", True),
        ):
            if not served:
                continue
            try:
                url = getattr(s, name, None)
            except Exception:
                continue
            url = str(url or "")
            if not url or "://" in url or url.startswith("//"):
                continue
            path = self.ex.strip_script("/" + url.lstrip("/"))
            if path.rstrip("/") == "":
                continue  # unset (Django reports "" as the script prefix)
            self.ex.static_prefix(self.prefix + path, name)
        root = getattr(s, "WHITENOISE_ROOT", None) if whitenoise else None
        if root:
            self.root_files(str(root))

    def root_files(self, root):
        """WhiteNoiseMiddleware serves the files of WHITENOISE_ROOT at the
        site root (robots.txt, favicon.ico): each is a route."""
        urls = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                urls.append("/" + rel.replace(os.sep, "/"))
                if len(urls) > MAX_ROOT_FILES:
                    self.ex.warn(
                        "WHITENOISE_ROOT holds more than %d files: every path "
                        "counts as a route" % MAX_ROOT_FILES
                    )
                    self.ex.add_prefix(self.prefix + "/")
                    return
        for url in urls:
            self.ex.add_route(
                url,
                "^" + escape(self.prefix + url) + "$",
                ["GET", "HEAD"],
                "WHITENOISE_ROOT",
                True,
            )

    def langs(self):
        if self.languages is None:
            s = self.settings
            codes = []
            if getattr(s, "USE_I18N", True):
                codes = [code for code, _name in getattr(s, "LANGUAGES", ()) or ()]
            default = getattr(s, "LANGUAGE_CODE", "en-us")
            if default not in codes:
                codes.insert(0, default)
            self.languages = codes
        return self.languages

    def piece(self, pattern, is_endpoint):
        """The Piece of one URLPattern's or URLResolver's pattern, and its
        text for people."""
        cls = type(pattern).__name__
        if cls == "LocalePrefixPattern":
            codes = self.langs()
            if not self.i18n_warned:
                self.i18n_warned = True
                self.ex.warn(
                    "i18n_patterns: any of the %d languages of LANGUAGES as a "
                    "prefix, or none (LocaleMiddleware redirects)" % len(codes)
                )
            alt = "|".join(escape(c) for c in codes)
            return (
                Piece("(?:(?i:%s)/)?" % alt, "rep", True, False, "", False, []),
                "<language>/",
            )
        from django.utils.functional import Promise

        route = getattr(pattern, "_route", None)
        source = getattr(pattern, "_regex", None)
        if cls == "RoutePattern" and isinstance(route, Promise):
            from django.urls.resolvers import _route_to_regex

            texts = self.translated(route)
            regexes = [_route_to_regex(t, is_endpoint)[0] for t in texts]
            shown = str(route)
        elif cls == "RegexPattern" and isinstance(source, Promise):
            texts = self.translated(source)
            regexes = texts
            shown = _strip_anchors(str(source))
        else:
            regex = getattr(pattern, "regex", None)
            regex = getattr(regex, "pattern", None)
            if not isinstance(regex, str):
                raise Unsupported("a %s has no regex" % cls)
            regexes = [regex]
            shown = (
                str(pattern) if cls == "RoutePattern" else _strip_anchors(str(pattern))
            )
        fullmatch = cls != "RoutePattern" and is_endpoint
        pieces = []
        for regex in regexes:
            p = translate(regex)
            if fullmatch and regex.endswith("$"):
                # Django fullmatches an endpoint regex that ends with $.
                p.start = p.end = True
            pieces.append(p)
        if len(pieces) == 1:
            return pieces[0], shown
        bodies = []
        for p in pieces:
            if p.body not in bodies:
                bodies.append(p.body)
        relaxed = [r for p in pieces for r in p.relaxed]
        merged = Piece(
            "|".join(bodies),
            "alt" if len(bodies) > 1 else pieces[0].kind,
            all(p.start for p in pieces),
            all(p.end for p in pieces),
            "",
            False,
            relaxed,
        )
        if not all(
            p.start == pieces[0].start and p.end == pieces[0].end for p in pieces
        ):
            raise Unsupported("translations anchored differently")
        return merged, shown

    def translated(self, lazy):
        from django.utils import translation

        texts = []
        for code in self.langs():
            with translation.override(code):
                text = str(lazy)
            if text not in texts:
                texts.append(text)
        self.ex.warn(
            "translated URL patterns: every language's version counts on "
            "every language prefix"
        )
        return texts

    def node(self, node, chain, shown, namespaces):
        # On the class: the instance property would import the URLconf.
        is_resolver = hasattr(type(node), "url_patterns")
        pattern = getattr(node, "pattern", None)
        try:
            piece, text = self.piece(pattern, not is_resolver)
        except Unsupported as e:
            self.fallback(
                chain,
                shown + [_pattern_text(pattern)],
                _literal_head_of_pattern(pattern),
                str(e),
            )
            return
        for what in piece.relaxed:
            self.ex.warn(
                "pattern %r: %s (matches more than Django does)" % (text, what)
            )
        chain = chain + [piece]
        shown = shown + [text]
        if not is_resolver:
            self.endpoint(node, chain, shown, namespaces)
            return
        ns = namespaces + ([node.namespace] if getattr(node, "namespace", None) else [])
        try:
            subs = list(node.url_patterns)
        except Exception as e:
            if len(chain) == 1:
                # The root URLconf cannot be imported: nothing can be told.
                raise
            # A broken include(): everything under it.
            self.fallback(chain, shown, "", "%s: %s" % (type(e).__name__, e))
            return
        for sub in subs:
            try:
                self.node(sub, chain, shown, ns)
            except Exception as e:
                sub_pattern = getattr(sub, "pattern", None)
                self.fallback(
                    chain,
                    shown + [_pattern_text(sub_pattern)],
                    _literal_head_of_pattern(sub_pattern),
                    "%s: %s" % (type(e).__name__, e),
                )

    def endpoint(self, node, chain, shown, namespaces):
        parts = []
        for i, p in enumerate(chain):
            if not p.start:
                parts.append("(?s:.*)")
            parts.append(p.concat())
            if i == len(chain) - 1 and not p.end:
                parts.append("(?s:.*)")
        body = "".join(parts)
        callback = getattr(node, "callback", None)
        if (
            self.append_slash
            and body.endswith("/")
            and body != "/"
            and getattr(callback, "should_append_slash", True)
        ):
            # CommonMiddleware redirects the path without the slash.
            body = body[:-1] + "/?"
        try:
            lookup = node.lookup_str
        except Exception:
            lookup = _label(callback)
        name = getattr(node, "name", None)
        endpoint = ":".join(namespaces + [name]) if name else lookup
        static = lookup in (
            "django.views.static.serve",
            "django.contrib.staticfiles.views.serve",
        )
        rule = self.prefix + "".join(shown)
        self.ex.add_route(
            rule, "^" + escape(self.prefix) + body + "$", [], endpoint, static
        )

    def fallback(self, chain, shown, head, why):
        """A pattern that cannot be expressed (or a resolver whose patterns
        cannot be listed): the literal text before it, plus its own literal
        head when everything before it is literal, becomes a prefix."""
        lit = ""
        for p in chain:
            if not p.start:
                break
            lit += p.literal
            if not p.whole:
                break
        else:
            lit += head
        lit = self.prefix + (lit or "/")
        self.ex.warn(
            "pattern %r: %s; every path under %r counts as a route"
            % ("".join(shown), why, lit)
        )
        self.ex.add_prefix(lit)


def _pattern_text(pattern):
    try:
        if type(pattern).__name__ == "RoutePattern":
            return str(pattern)
        return _strip_anchors(str(pattern))
    except Exception:
        return "?"


def _literal_head_of_pattern(pattern):
    """The literal text a Django pattern starts with, if any."""
    try:
        text = str(pattern)
    except Exception:
        return ""
    if type(pattern).__name__ == "RoutePattern":
        return text.split("<", 1)[0]
    if not text.startswith("^"):
        return ""
    out = []
    for c in text[1:]:
        if c in _META or c in "\\":
            break
        out.append(c)
    return "".join(out)


def _strip_anchors(text):
    if text.startswith("^"):
        text = text[1:]
    if text.endswith("\\Z"):
        text = text[:-2]
    elif text.endswith("$") and not text.endswith("\\$"):
        text = text[:-1]
    return text


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
    ex = _Extractor(script_name)
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
