"""A Starlette app for test_routes_asgi.py: routes, a WebSocket route,
mounts (a router, a converter in a mount path, StaticFiles), a Host, and
static files at the root."""

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Host, Match, Mount, Route, Router, WebSocketRoute
from starlette.staticfiles import StaticFiles

HERE = os.path.dirname(os.path.abspath(__file__))


async def page(request):
    return PlainTextResponse("page")


class Endpoint:
    """A class endpoint: an ASGI app, any method."""

    def __init__(self, scope, receive, send):
        self.scope, self.receive, self.send = scope, receive, send

    def __await__(self):
        return PlainTextResponse("any")(self.scope, self.receive, self.send).__await__()


async def ws(websocket):
    await websocket.accept()
    await websocket.close()


app = Starlette(
    routes=[
        Route("/", page),
        Route("/about", page, name="about"),
        Route("/float/{x:float}", page, methods=["GET", "POST"]),
        Route("/tail/", page),
        Route("/any/{rest:path}", Endpoint),
        WebSocketRoute("/live", ws, name="live"),
        Mount(
            "/blog",
            routes=[
                Route("/", page, name="index"),
                Route("/{slug}", page, name="post"),
            ],
            name="blog",
        ),
        Mount("/u/{uid:int}", routes=[Route("/profile", page)]),
        Mount("/assets", app=StaticFiles(directory=os.path.join(HERE, "files"))),
        Host("api.example.com", Router([Route("/status", page)]), name="api"),
    ],
    middleware=[Middleware(GZipMiddleware)],
)

# StaticFiles at the root, after the routes: each file and directory.
static_root = Starlette(
    routes=[
        Route("/page", page),
        Mount("/", app=StaticFiles(directory=os.path.join(HERE, "frontend"), html=True)),
    ]
)


class Anything(BaseRoute):
    """A route class corral does not know: it may match any path."""

    def matches(self, scope):
        return Match.FULL, {}

    async def handle(self, scope, receive, send):
        await PlainTextResponse("anything")(scope, receive, send)


custom_route = Starlette(routes=[Route("/", page), Anything()])

# Unmatched requests go to another app: its routes, under the same path.
fallback = Starlette(
    routes=[Mount("/api", app=Router([Route("/a", page)], default=app))]
)
