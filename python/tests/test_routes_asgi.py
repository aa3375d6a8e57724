"""Route extraction for ASGI apps (corral._routes_starlette,
corral._routes_litestar, Django's ASGIHandler and Channels): real apps in
real workers, and the cross-checks of test_routes.py (Go's verdict from
the routes against the framework's own, path by path).

The frameworks come from integration/requirements.txt (scripts/test
installs them in .venv); the cross-checks need the go command.
"""

import importlib.util
import os
import unittest

from . import test_routes as base
from .support import HELLO, WorkerTestCase
from .test_routes import CrossCheck, needs_go, routes_by_rule


def _have(name):
    return importlib.util.find_spec(name) is not None


def _needs(*names):
    missing = [n for n in names if not _have(n)]
    return unittest.skipIf(
        missing,
        "%s not importable by this Python (scripts/test installs them in .venv)"
        % ", ".join(missing),
    )


needs_fastapi = _needs("fastapi", "starlette", "flask")
needs_starlette = _needs("starlette")
needs_litestar = _needs("litestar")
needs_django = _needs("django")
needs_channels = _needs("django", "channels")


def setUpModule():
    # test_routes.tearDownModule removes its Go matcher: build another.
    if base._go_dir and not os.path.isdir(base._go_dir[0]):
        base._go_dir.clear()


def tearDownModule():
    base.tearDownModule()
    base._go_dir.clear()


class HelloRoutes(WorkerTestCase):
    def hello_routes(self, app, **kwargs):
        # ASGI apps boot only under protocol 2, which corral's master speaks.
        config = dict(kwargs.pop("config", None) or {}, protocol=2)
        master = self.serve(app, mode="routes", config=config, **kwargs)
        self.assertEqual(master.hello.kind, HELLO)
        routes = master.hello.json()["routes"]
        self.assertEqual(master.wait_exit(), 0)
        return master, routes

    def assertRegexes(self, routes, want):
        by_rule = routes_by_rule(routes)
        for rule, regex in want.items():
            with self.subTest(rule=rule):
                self.assertIn(rule, by_rule)
                self.assertEqual(by_rule[rule]["regex"], regex)


UUID = (
    "[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}"
)


@needs_fastapi
class FastAPIRoutesTest(HelloRoutes):
    def test_routes(self):
        _, routes = self.hello_routes("fastapi_routes:app")
        self.assertEqual(routes["framework"], "fastapi")
        self.assertEqual(routes["prefixes"], [])
        got = {r["rule"]: r["regex"] for r in routes["routes"]}
        want = {
            # FastAPI's own docs routes are routes like any other.
            "/openapi.json": "^/openapi\\.json/*$",
            "/docs": "^/docs/*$",
            "/docs/oauth2-redirect": "^/docs/oauth2-redirect/*$",
            "/redoc": "^/redoc/*$",
            "/": "^/$",
            # redirect_slashes: /x/ (any number of slashes) redirects to
            # /x, and /x to /x/.
            "/str/{s:str}": "^/str/[^/]+/*$",
            "/int/{n:int}": "^/int/[0-9]+/*$",
            "/float/{f:float}": "^/float/[0-9]+(?:\\.[0-9]+)?/*$",
            "/uuid/{u:uuid}": "^/uuid/" + UUID + "/*$",
            "/path/{p:path}": "^/path(?:/.*)?$",
            "/edit/{p:path}/edit": "^/edit/.*/edit/*$",
            "/plain/{name}": "^/plain/[^/]+/*$",
            "/year/{y:year}": "^/year/[0-9]{4}/*$",
            "/dir/": "^/dir/?$",
            "/post-only": "^/post-only/*$",
            "/multi": "^/multi/*$",
            # WebSocket routes are never redirected.
            "/ws/{room}": "^/ws/[^/]+$",
            # include_router() with prefixes, nested.
            "/users/": "^/users/?$",
            "/users/{uid:int}": "^/users/[0-9]+/*$",
            "/users/admin/stats": "^/users/admin/stats/*$",
            "/api/v1/items/{item_id}": "^/api/v1/items/[^/]+/*$",
            "/ui/{path:path}": "^/ui(?:/(?s:.*))?$",
            # Mounts: the mount point redirects to mount/.
            "/static": "^/static$",
            "/static/{path:path}": "^/static/.*$",
            "/sub": "^/sub$",
            "/sub/": "^/sub/$",
            "/sub/hi": "^/sub/hi/*$",
            "/sub/{version:int}": "^/sub/[0-9]+$",
            "/sub/{version:int}/info/": "^/sub/[0-9]+/info/?$",
        }
        self.assertEqual(got, want)
        by_rule = routes_by_rule(routes)
        self.assertEqual(by_rule["/post-only"]["methods"], ["POST"])
        self.assertEqual(by_rule["/multi"]["methods"], ["DELETE", "PUT"])
        self.assertEqual(by_rule["/docs"]["methods"], ["GET", "HEAD"])
        self.assertEqual(by_rule["/ws/{room}"]["methods"], ["GET"])
        self.assertEqual(by_rule["/sub"]["methods"], [])
        self.assertEqual(by_rule["/users/{uid:int}"]["endpoint"], "get_user")
        self.assertEqual(by_rule["/sub/{version:int}/info/"]["endpoint"], "sub:v:info")
        for rule in ["/static/{path:path}", "/ui/{path:path}"]:
            self.assertTrue(by_rule[rule]["static"], rule)
        self.assertEqual(by_rule["/static/{path:path}"]["endpoint"], "static")
        self.assertNotIn("static", by_rule["/"])
        self.assertEqual(
            routes["warnings"],
            [
                "assuming middleware fastapi_routes.make.<locals>.add_header "
                "answers no path itself and leaves the path unchanged"
            ],
        )

    def test_mounted_wsgi_app(self):
        _, routes = self.hello_routes("fastapi_routes:with_flask")
        self.assertEqual(routes["framework"], "asgi")  # FastAPI and Flask
        self.assertRegexes(
            routes,
            {
                "/legacy": "^/legacy$",
                "/legacy/old/<int:n>": "^/legacy/old/[0-9]+$",
                "/legacy/<path with //>": "^/legacy(?s:.*//.*)$",
                "/int/{n:int}": "^/int/[0-9]+/*$",
            },
        )

    def test_wrappers(self):
        _, base_routes = self.hello_routes("fastapi_routes:app")
        for app in ["wrapped", "timed"]:
            with self.subTest(app=app):
                _, routes = self.hello_routes("fastapi_routes:" + app)
                self.assertEqual(routes["routes"], base_routes["routes"])
        _, routes = self.hello_routes("fastapi_routes:timed")
        self.assertIn(
            "assuming fastapi_routes.Timing passes every request to "
            "fastapi.applications.FastAPI unchanged",
            routes["warnings"],
        )

    def test_no_redirect_slashes(self):
        _, routes = self.hello_routes("fastapi_routes:no_redirect")
        self.assertRegexes(routes, {"/a/": "^/a/$", "/b": "^/b$", "/docs": "^/docs$"})

    def test_root_path(self):
        _, routes = self.hello_routes("fastapi_routes:rooted")
        self.assertEqual(
            [(r["rule"], r["regex"]) for r in routes["routes"]],
            [
                ("/items/{i:int}", "^/items/[0-9]+/*$"),
                ("/api", "^/api$"),
                ("/api/items/{i:int}", "^/api/items/[0-9]+/*$"),
            ],
        )

    def test_gives_up(self):
        for app, says in [
            (
                "path_reader",
                "middleware fastapi_routes.health reads or rewrites the request "
                "path itself",
            ),
            (
                "spa",
                "the handler fastapi_routes.index_page for 404 answers without "
                "naming a status code: it may answer any path",
            ),
        ]:
            with self.subTest(app=app):
                master, routes = self.hello_routes("fastapi_routes:" + app)
                self.assertIsNone(routes)
                self.assertIn("corral: routes: " + says, master.output)
        # A custom 404 page that keeps the status is not a reason.
        _, routes = self.hello_routes("fastapi_routes:custom_404")
        self.assertEqual(routes["framework"], "fastapi")


@needs_starlette
class StarletteRoutesTest(HelloRoutes):
    def test_routes(self):
        _, routes = self.hello_routes("starlette_routes:app")
        self.assertEqual(routes["framework"], "starlette")
        got = {r["rule"]: r["regex"] for r in routes["routes"]}
        self.assertEqual(
            got,
            {
                "/": "^/$",
                "/about": "^/about/*$",
                "/float/{x:float}": "^/float/[0-9]+(?:\\.[0-9]+)?/*$",
                "/tail/": "^/tail/?$",
                "/any/{rest:path}": "^/any(?:/.*)?$",
                "/live": "^/live$",
                "/blog": "^/blog$",
                "/blog/": "^/blog/$",
                "/blog/{slug}": "^/blog/[^/]+/*$",
                "/u/{uid:int}": "^/u/[0-9]+$",
                "/u/{uid:int}/profile": "^/u/[0-9]+/profile/*$",
                "/assets": "^/assets$",
                "/assets/{path:path}": "^/assets/.*$",
                "/status": "^/status/*$",
            },
        )
        by_rule = routes_by_rule(routes)
        # Starlette adds HEAD to GET; a class endpoint takes any method.
        self.assertEqual(by_rule["/about"]["methods"], ["GET", "HEAD"])
        self.assertEqual(by_rule["/float/{x:float}"]["methods"], ["GET", "HEAD", "POST"])
        self.assertEqual(by_rule["/any/{rest:path}"]["methods"], [])
        self.assertEqual(by_rule["/blog/{slug}"]["endpoint"], "blog:post")
        self.assertTrue(by_rule["/assets/{path:path}"]["static"])
        self.assertEqual(
            routes["warnings"],
            [
                "Host('api.example.com'): its routes count on every host "
                "(corral does not match hosts)"
            ],
        )

    def test_unknown_route_class_gives_up(self):
        master, routes = self.hello_routes("starlette_routes:custom_route")
        self.assertIsNone(routes)
        self.assertIn(
            "corral: routes: route starlette_routes.Anything: an unknown kind "
            "of route, which may match any path",
            master.output,
        )

    def test_router_default(self):
        _, routes = self.hello_routes("starlette_routes:fallback")
        self.assertRegexes(
            routes,
            {
                "/api": "^/api$",
                "/api/a": "^/api/a/*$",
                "/api/blog/{slug}": "^/api/blog/[^/]+/*$",
            },
        )

    def test_static_files_at_the_root(self):
        _, routes = self.hello_routes("starlette_routes:static_root")
        self.assertEqual(
            [(r["rule"], r["regex"], r.get("static", False)) for r in routes["routes"]],
            [
                ("/page", "^/page/*$", False),
                ("/", "^/$", True),  # html=True: index.html
                ("/assets/{path:path}", "^/assets/.*$", True),
                ("/index.html", "^/index\\.html$", True),
            ],
        )


@needs_litestar
class LitestarRoutesTest(HelloRoutes):
    def test_routes(self):
        _, routes = self.hello_routes("litestar_routes:app")
        self.assertEqual(routes["framework"], "litestar")
        int_ = "[-\\x09-\\x0d\\x20+0-9_]+"
        self.assertRegexes(
            routes,
            {
                "/": "^/$",
                "/int/{n:int}": "^/int/" + int_ + "/?$",
                "/float/{f:float}": "^/float/[\\x09-\\x0d\\x20+\\-.0-9AEFINTY_aefinty]+/?$",
                # Decimal() raises InvalidOperation, not ValueError: a 500.
                "/decimal/{d:decimal}": "^/decimal/[^/]+/?$",
                "/uuid/{u:uuid}": "^/uuid/[-\\x09-\\x0d\\x20+0-:A-FINRU_a-finru{}]+/?$",
                "/date/{d:date}": "^/date/[^/]+/?$",
                "/str/{s:str}": "^/str/[^/]+/?$",
                "/path/{p:path}": "^/path/(?s:.+)$",
                "/items": "^/items/?$",
                "/live": "^/live/?$",
                "/api/books": "^/api/books/?$",
                "/api/books/{book_id:int}": "^/api/books/" + int_ + "/?$",
                "/static/{file_path:path}": "^/static/(?s:.+)$",
                "/schema/openapi.json": "^/schema/openapi\\.json/?$",
                "/<path with //>": "^(?s:.*//.*)$",
            },
        )
        by_rule = routes_by_rule(routes)
        self.assertEqual(by_rule["/items"]["methods"], ["OPTIONS", "POST"])
        self.assertEqual(by_rule["/live"]["methods"], ["GET"])
        self.assertEqual(by_rule["/api/books"]["endpoint"], "litestar_routes.Books.index")
        self.assertTrue(by_rule["/static/{file_path:path}"]["static"])
        self.assertNotIn("static", by_rule["/"])
        # A mount takes every path that starts with its path.
        self.assertEqual(routes["prefixes"], ["/legacy"])
        self.assertEqual(routes["warnings"], [])

    def test_not_found_handler_gives_up(self):
        master, routes = self.hello_routes("litestar_routes:spa")
        self.assertIsNone(routes)
        self.assertIn(
            "corral: routes: the handler litestar_routes._index for 404 answers "
            "without naming a status code: it may answer any path",
            master.output,
        )


@needs_django
class DjangoASGIRoutesTest(HelloRoutes):
    def test_same_routes_as_wsgi(self):
        _, wsgi = self.hello_routes("djroutes.wsgi:application")
        _, asgi = self.hello_routes("djroutes.asgi:application")
        self.assertEqual(asgi["framework"], "django")
        self.assertEqual(asgi, wsgi)

    @needs_channels
    def test_channels(self):
        _, wsgi = self.hello_routes("djroutes.wsgi:application")
        _, routes = self.hello_routes("djroutes.asgi_channels:application")
        self.assertEqual(routes["framework"], "django")
        self.assertEqual(routes["routes"][: len(wsgi["routes"])], wsgi["routes"])
        self.assertEqual(
            [(r["rule"], r["regex"]) for r in routes["routes"][len(wsgi["routes"]) :]],
            [
                ("/ws/chat/<str:room>/", "^/ws/chat/[^/]+/$"),  # no APPEND_SLASH
                ("/ws/feed/(?P<n>[0-9]+)", "^/ws/feed/[0-9]+$"),
                ("/ws/nested/", "^/ws/nested/(?s:.*)$"),
            ],
        )
        master, routes = self.hello_routes("djroutes.asgi_channels:catch_all")
        self.assertIsNone(routes)
        self.assertIn(
            "corral: routes: the WebSocket app djroutes.asgi_channels.Chat may "
            "accept any path",
            master.output,
        )


# ---------------------------------------------------------------------------
# Cross-checks


FASTAPI_PATHS = [
    "/",
    "//",
    "/docs",
    "/docs/",
    "/openapi.json",
    "/redoc",
    "/docs/oauth2-redirect",
    "/str/x",
    "/str/x/",
    "/str/x//",
    "/str/",
    "/str",
    "/str/a b",
    "/str/caf\u00e9",
    "/int/0",
    "/int/42",
    "/int/42/",
    "/int/-1",
    "/int/x",
    "/int/\u0663",
    "/float/1.5",
    "/float/1",
    "/float/1.",
    "/float/-1.5",
    "/uuid/12345678-1234-1234-1234-123456789abc",
    "/uuid/12345678123412341234123456789ABC",
    "/uuid/1234",
    "/path",
    "/path/",
    "/path/a/b/c",
    "/path//",
    "/edit/a/edit",
    "/edit//edit",
    "/edit/a/b/edit/",
    "/edit/edit",
    "/plain/bob",
    "/plain/bob/x",
    "/year/2024",
    "/year/24",
    "/year/2024/",
    "/dir/",
    "/dir",
    "/dir//",
    "/post-only",
    "/post-only/",
    "/multi",
    "/ws/lobby",
    "/ws/lobby/",
    "/ws/",
    "/users/",
    "/users",
    "/users/7",
    "/users/7/",
    "/users/x",
    "/users/admin/stats",
    "/users/admin/stats/",
    "/users/admin",
    "/api/v1/items/a",
    "/api/v1/items/",
    "/api/v1/items",
    "/api/v1",
    "/ui",
    "/ui/",
    "/ui/assets/app.js",
    "/ui/missing",
    "/static",
    "/static/",
    "/static/sibling.py",
    "/static/missing.txt",
    "/staticx",
    "/sub",
    "/sub/",
    "/sub/hi",
    "/sub/hi/",
    "/sub/ho",
    "/sub/3",
    "/sub/3/",
    "/sub/3/info/",
    "/sub/3/info",
    "/sub/x/info/",
    "/legacy",
    "/legacy/",
    "/legacy/old/1",
    "/legacy/old/x",
    "/legacy/static/x",
    "/wp-login.php",
    "/.env",
    "/favicon.ico",
]

STARLETTE_PATHS = [
    "/",
    "/about",
    "/about/",
    "/about//",
    "/float/1.5",
    "/float/1",
    "/float/x",
    "/tail/",
    "/tail",
    "/any",
    "/any/",
    "/any/x/y",
    "/live",
    "/live/",
    "/blog",
    "/blog/",
    "/blog/hello",
    "/blog/hello/",
    "/blog/a/b",
    "/u/1",
    "/u/1/",
    "/u/1/profile",
    "/u/1/profile/",
    "/u/x/profile",
    "/assets",
    "/assets/",
    "/assets/sibling.py",
    "/status",
    "/status/",
    "/nope",
    "/.git/config",
]

STATIC_ROOT_PATHS = [
    "/",
    "/page",
    "/page/",
    "/index.html",
    "/assets",
    "/assets/",
    "/assets/app.js",
    "/assets/missing.js",
    "/missing",
    "/.env",
]

LITESTAR_PATHS = [
    "/",
    "//",
    "/int/1",
    "/int/-1",
    "/int/+1",
    "/int/1_000",
    "/int/ 1",
    "/int/1/",
    "/int//1",
    "/int/x",
    "/int/1.5",
    "/int/\u0663",
    "/float/1.5",
    "/float/1e3",
    "/float/inf",
    "/float/nan",
    "/float/x",
    "/decimal/1.5",
    "/decimal/sNaN",
    "/decimal/x",
    "/uuid/12345678-1234-1234-1234-123456789abc",
    "/uuid/{12345678-1234-1234-1234-123456789abc}",
    "/uuid/12345678123412341234123456789abc",
    "/uuid/1234",
    "/uuid/x",
    "/date/2024-01-02",
    "/date/x",
    "/str/x",
    "/str/x/",
    "/str/",
    "/path/a",
    "/path/a/b/",
    "/path",
    "/path/",
    "/items",
    "/items/",
    "/items//",
    "/live",
    "/legacy",
    "/legacy/x",
    "/legacyx",
    "/api/books",
    "/api/books/",
    "/api/books/3",
    "/api/books/x",
    "/api",
    "/static/sibling.py",
    "/static/missing.txt",
    "/static",
    "/schema",
    "/schema/openapi.json",
    "/schema/nope",
    "/nope",
    "/wp-login.php",
]

CHANNELS_PATHS = [
    "/",
    "/int/1/",
    "/int/1",
    "/ws/chat/lobby/",
    "/ws/chat/lobby",
    "/ws/chat/",
    "/ws/feed/3",
    "/ws/feed/x",
    "/ws/nested/inner/",
    "/ws/nested/other/",
    "/ws/nope/",
    "/wp-login.php",
]


@needs_go
@needs_fastapi
class FastAPICrossCheckTest(CrossCheck, unittest.TestCase):
    def test_fastapi(self):
        self.cross_check(
            "fastapi_routes:with_flask",
            FASTAPI_PATHS,
            "asgi",
            wider={
                "/ui/missing",  # the frontend: 404, but to a browser the index
                "/static/missing.txt",  # routed; StaticFiles answers 404
                "/static/",
                "/legacy/static/x",  # routed; Flask's static view answers 404
            },
        )


    def test_root_path(self):
        self.cross_check(
            "fastapi_routes:rooted",
            ["/items/1", "/api/items/1", "/api/items/1/", "/apix/items/1", "/api/x"],
            "asgi",
        )


@needs_go
@needs_starlette
class StarletteCrossCheckTest(CrossCheck, unittest.TestCase):
    def test_starlette(self):
        self.cross_check(
            "starlette_routes:app",
            STARLETTE_PATHS,
            "asgi",
            wider={
                "/assets/",  # StaticFiles answers 404 for a directory
                "/status",
                "/status/",  # Host routes count on every host
            },
        )

    def test_router_default(self):
        self.cross_check(
            "starlette_routes:fallback",
            ["/api", "/api/", "/api/a", "/api/a/", "/api/about", "/api/about/",
             "/api/nope", "/api/blog/x", "/about", "/"],
            "asgi",
        )

    def test_static_root(self):
        self.cross_check(
            "starlette_routes:static_root",
            STATIC_ROOT_PATHS,
            "asgi",
            wider={
                "/assets/missing.js",
                "/assets/",  # a directory without index.html: 404
                # The mount at the root takes /page/ before the router
                # would redirect it to /page.
                "/page/",
            },
        )


@needs_go
@needs_litestar
class LitestarCrossCheckTest(CrossCheck, unittest.TestCase):
    def test_litestar(self):
        self.cross_check(
            "litestar_routes:app",
            LITESTAR_PATHS,
            "asgi",
            wider={
                "/uuid/1234",  # parsers refuse what the classes let through
                "/date/x",
                "/static/missing.txt",  # routed; the handler answers 404
                "/schema/nope",  # routed; Litestar's schema view answers 404
            },
            narrower={"/int/\u0663"},  # int() reads non-ASCII digits
        )


@needs_go
@needs_channels
class ChannelsCrossCheckTest(CrossCheck, unittest.TestCase):
    def test_channels(self):
        self.cross_check(
            "djroutes.asgi_channels:application",
            CHANNELS_PATHS,
            "channels",
            wider={"/ws/nested/other/"},  # a nested URLRouter: all below it
        )


if __name__ == "__main__":
    unittest.main()
