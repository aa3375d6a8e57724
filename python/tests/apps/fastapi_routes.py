"""A FastAPI app with every kind of route corral reads (test_routes_asgi.py):
routers included with prefixes (nested), each path convertor and a custom
one, a WebSocket route, StaticFiles, a frontend build, a mounted Starlette
app (with a converter in a mount path), a mounted Flask app (WSGI),
middleware, and the docs routes FastAPI adds itself. The variants below
are what corral must give up on, or read through."""

import os
import uuid
import warnings

from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Mount, Route

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # deprecated in favour of a2wsgi
    from starlette.middleware.wsgi import WSGIMiddleware

HERE = os.path.dirname(os.path.abspath(__file__))


class YearConvertor(Convertor):
    regex = "[0-9]{4}"

    def convert(self, value):
        return int(value)

    def to_string(self, value):
        return "%04d" % value


register_url_convertor("year", YearConvertor())


def make():
    app = FastAPI()

    @app.get("/")
    def home():
        return "home"

    @app.get("/str/{s:str}")
    def by_str(s: str):
        return s

    @app.get("/int/{n:int}")
    def by_int(n: int):
        return n

    @app.get("/float/{f:float}")
    def by_float(f: float):
        return f

    @app.get("/uuid/{u:uuid}")
    def by_uuid(u: uuid.UUID):
        return str(u)

    @app.get("/path/{p:path}")
    def by_path(p: str):
        return p

    @app.get("/edit/{p:path}/edit")
    def edit(p: str):
        return p

    @app.get("/plain/{name}")
    def plain(name: str):
        return name

    @app.get("/year/{y:year}")
    def by_year(y: int):
        return y

    @app.get("/dir/")
    def directory():
        return "dir"

    @app.post("/post-only")
    def post_only():
        return "posted"

    @app.api_route("/multi", methods=["PUT", "DELETE"])
    def multi():
        return "multi"

    @app.websocket("/ws/{room}")
    async def chat(websocket: WebSocket, room: str):
        await websocket.accept()
        await websocket.close()

    users = APIRouter(prefix="/users")

    @users.get("/")
    def list_users():
        return []

    @users.get("/{uid:int}")
    def get_user(uid: int):
        return uid

    admin = APIRouter()

    @admin.get("/stats")
    def stats():
        return {}

    users.include_router(admin, prefix="/admin")
    app.include_router(users)

    api = APIRouter()

    @api.get("/items/{item_id}")
    def get_item(item_id: str):
        return item_id

    app.include_router(api, prefix="/api/v1")

    ui = APIRouter()
    ui.frontend("/ui", directory=os.path.join(HERE, "frontend"))
    app.include_router(ui)

    app.mount("/static", StaticFiles(directory=os.path.join(HERE, "files")), name="static")

    async def hello(request):
        return PlainTextResponse("hello")

    sub = Starlette(
        routes=[
            Route("/", hello),
            Route("/hi", hello),
            Mount("/{version:int}", routes=[Route("/info/", hello, name="info")], name="v"),
        ]
    )
    app.mount("/sub", sub, name="sub")

    @app.middleware("http")
    async def add_header(request, call_next):
        response = await call_next(request)
        response.headers["X-Test"] = "1"
        return response

    app.add_middleware(CORSMiddleware, allow_origins=["*"])
    return app


app = make()


def _flask():
    from flask import Flask

    legacy = Flask("legacy")

    @legacy.route("/old/<int:n>")
    def old(n):
        return "old"

    return legacy


with_flask = make()
with_flask.mount("/legacy", WSGIMiddleware(_flask()))

# Around the app: a known middleware, and an unknown one that leaves the
# path alone.
wrapped = CORSMiddleware(app, allow_origins=["*"])


class Timing:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


timed = Timing(app)

no_redirect = FastAPI(redirect_slashes=False)


@no_redirect.get("/a/")
def a_slash():
    return "a"


@no_redirect.get("/b")
def b_plain():
    return "b"


# What corral gives up on: middleware that reads the path, and a 404
# handler that answers any path (a single-page app's index).
path_reader = make()


@path_reader.middleware("http")
async def health(request, call_next):
    if request.url.path == "/healthz":
        return PlainTextResponse("ok")
    return await call_next(request)


spa = make()


@spa.exception_handler(404)
async def index_page(request, exc):
    return PlainTextResponse("index")


# A custom 404 page keeps the status: not a reason to give up.
custom_404 = make()


@custom_404.exception_handler(404)
async def not_found_page(request, exc):
    return PlainTextResponse("nothing here", status_code=404)


# FastAPI(root_path=...) (deprecated): routes count with and without it.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    rooted = FastAPI(root_path="/api", openapi_url=None, docs_url=None, redoc_url=None)


@rooted.get("/items/{i:int}")
def rooted_item(i: int):
    return i
