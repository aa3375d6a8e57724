"""A Litestar app for test_routes_asgi.py: handlers with each kind of path
parameter, a controller in a router, a WebSocket, a mounted ASGI app and
static files."""

import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from litestar import Controller, Litestar, Router, WebSocket, asgi, get, post, websocket
from litestar.static_files import create_static_files_router
from litestar.types import Receive, Scope, Send

HERE = os.path.dirname(os.path.abspath(__file__))


@get("/")
async def home() -> str:
    return "home"


@get("/int/{n:int}")
async def by_int(n: int) -> int:
    return n


@get("/float/{f:float}")
async def by_float(f: float) -> float:
    return f


@get("/decimal/{d:decimal}")
async def by_decimal(d: Decimal) -> str:
    return str(d)


@get("/uuid/{u:uuid}")
async def by_uuid(u: UUID) -> str:
    return str(u)


@get("/date/{d:date}")
async def by_date(d: date) -> str:
    return d.isoformat()


@get("/str/{s:str}")
async def by_str(s: str) -> str:
    return s


@get("/path/{p:path}")
async def by_path(p: Path) -> str:
    return str(p)


@post("/items/")
async def new_item() -> str:
    return "new"


@websocket("/live")
async def live(socket: WebSocket) -> None:
    await socket.accept()
    await socket.close()


@asgi("/legacy", is_mount=True)
async def legacy(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"legacy"})


class Books(Controller):
    path = "/books"

    @get("/")
    async def index(self) -> str:
        return "books"

    @get("/{book_id:int}")
    async def detail(self, book_id: int) -> int:
        return book_id


app = Litestar(
    route_handlers=[
        home,
        by_int,
        by_float,
        by_decimal,
        by_uuid,
        by_date,
        by_str,
        by_path,
        new_item,
        live,
        legacy,
        Router("/api", route_handlers=[Books]),
        create_static_files_router(path="/static", directories=[os.path.join(HERE, "files")]),
    ],
)


def _index(request, exc):
    from litestar import Response

    return Response("index")


# A 404 handler that answers every unknown path: nothing can be told.
spa = Litestar(route_handlers=[home], exception_handlers={404: _index})
