"""Route extraction, part two: a configured Django project's URL resolver
tree, walked for corral._routes_werkzeug's Extractor (which finds Django's
WSGIHandler in the app and adds what this module reports to its routes).

Only called for an app that has imported Django already.
"""

import os
import sys

from ._re2 import META, Piece, Unsupported, escape, translate
from ._routes_werkzeug import MAX_ROOT_FILES, label_of


class Django:
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
            lookup = label_of(callback)
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
        if c in META or c in "\\":
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
