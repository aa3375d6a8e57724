"""A Starlette app for corral's integration tests: routes, a middleware,
a WebSocket endpoint."""

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute


class Stamp(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        response.headers["x-stamp"] = "starlette"
        return response


async def home(request):
    return JSONResponse({"root_path": request.scope.get("root_path"), "path": request.url.path})


async def user(request):
    return PlainTextResponse("user %s" % request.path_params["name"])


async def echo(request):
    body = await request.body()
    return PlainTextResponse(body, media_type="application/octet-stream")


async def chat(ws):
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(text.upper())


app = Starlette(
    routes=[
        Route("/", home),
        Route("/user/{name}", user),
        Route("/echo", echo, methods=["POST"]),
        WebSocketRoute("/chat", chat),
    ],
    middleware=[Middleware(Stamp)],
)
