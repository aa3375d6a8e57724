"""A Starlette app for the framework tests (needs starlette installed)."""

import contextlib
import sys

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute


class Stamp(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        response.headers["x-stamp"] = "1"
        return response


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"counter": [0]}


async def home(request):
    request.state.counter[0] += 1
    return PlainTextResponse("home %d" % request.state.counter[0])


async def upload(request):
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
    return JSONResponse({"total": total})


async def inner(request):
    return JSONResponse({"path": request.url.path, "root_path": request.scope["root_path"]})


async def denied(websocket):
    await websocket.send_denial_response(Response("go away", status_code=403))


async def chat(websocket):
    await websocket.accept(subprotocol="chat")
    async for message in websocket.iter_text():
        await websocket.send_json({"got": message})


app = Starlette(
    routes=[
        Route("/", home),
        Route("/upload", upload, methods=["POST"]),
        Mount("/sub", routes=[Route("/inner", inner)]),
        WebSocketRoute("/denied", denied),
        WebSocketRoute("/chat", chat),
    ],
    middleware=[Middleware(Stamp)],
    lifespan=lifespan,
)
