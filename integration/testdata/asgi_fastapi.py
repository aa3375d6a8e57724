"""A FastAPI app for corral's ASGI integration tests (integration/asgi_test.go).

Markers go to the directory in $CORRAL_IT_DIR, so a test can tell what the
app did after its response: a cancelled task, an SSE loop that ended, a
background task that ran.
"""

import asyncio
import contextlib
import hashlib
import os
import pathlib
import time
from typing import Optional

from fastapi import BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel

MARKS = pathlib.Path(os.environ.get("CORRAL_IT_DIR", "/tmp"))
HERE = pathlib.Path(__file__).parent


def mark(name, text=""):
    tmp = MARKS / (name + ".tmp")
    tmp.write_text(text)
    tmp.rename(MARKS / name)  # whole or not at all, for a test polling for it


@contextlib.asynccontextmanager
async def lifespan(app):
    # What startup opens, every request sees (ASGI lifespan state).
    yield {"db": "connected by %d" % os.getpid()}
    mark("shutdown-%d" % os.getpid())


app = FastAPI(lifespan=lifespan)


@app.get("/json")
async def json_hello():
    return {"hello": "world", "pid": os.getpid()}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: Optional[str] = None, limit: int = 10):
    return {"item_id": item_id, "q": q, "limit": limit}


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "total": item.price * 2, "tags": item.tags}


@app.post("/upload")
async def upload(request: Request):
    h = hashlib.sha256()
    n = 0
    chunks = 0
    async for chunk in request.stream():
        h.update(chunk)
        n += len(chunk)
        chunks += 1
    return {"bytes": n, "sha256": h.hexdigest(), "chunks": chunks}


@app.get("/stream")
async def stream(n: int = 5, ms: int = 100):
    async def gen():
        for i in range(n):
            yield "chunk %d\n" % i
            await asyncio.sleep(ms / 1000)

    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/sse")
async def sse(tag: str):
    async def events():
        i = 0
        try:
            while True:
                yield "data: tick %d\n\n" % i
                i += 1
                await asyncio.sleep(0.05)
        finally:
            mark("sse-ended-" + tag, str(i))

    return StreamingResponse(events(), media_type="text/event-stream")


@app.get("/file")
async def file():
    return FileResponse(HERE / "asgi_file.txt", media_type="text/plain")


@app.post("/background")
async def background(tasks: BackgroundTasks, tag: str):
    tasks.add_task(mark, "background-" + tag, "ran")
    return {"queued": tag}


@app.get("/state")
async def state(request: Request):
    return {"db": request.state.db, "pid": os.getpid()}


@app.get("/sleep")
async def sleep(tag: str, s: float = 5):
    try:
        await asyncio.sleep(s)
    except asyncio.CancelledError:
        mark("cancelled-" + tag)
        raise
    return {"slept": s}


def blocking_call(s):
    time.sleep(s)  # a synchronous call on the event loop: it blocks every request


@app.get("/block")
async def block(s: float = 2):
    blocking_call(s)
    return {"blocked": s, "pid": os.getpid()}


@app.get("/pid")
async def pid():
    return PlainTextResponse(str(os.getpid()))


@app.websocket("/ws/echo")
async def ws_echo(ws: WebSocket):
    await ws.accept(subprotocol=ws.scope["subprotocols"][0] if ws.scope["subprotocols"] else None)
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                mark("ws-disconnect-%s" % ws.query_params.get("tag", ""), "%s %s" % (msg.get("code"), msg.get("reason", "")))
                return
            if msg.get("text") is not None:
                text = msg["text"]
                if text == "close":
                    await ws.close(code=4001, reason="bye from the app")
                    return
                if text.startswith("close:"):  # close:CODE:REASON
                    _, code, reason = text.split(":", 2)
                    await ws.close(code=int(code), reason=reason)
                    return
                if text == "http_version":
                    await ws.send_text(ws.scope["http_version"])
                    continue
                if text == "return":
                    return
                if text == "raise":
                    raise RuntimeError("the app failed mid-WebSocket")
                if text.startswith("flood:"):  # flood:COUNT:SIZE, numbered
                    _, count, size = text.split(":")
                    for i in range(int(count)):
                        await ws.send_bytes(i.to_bytes(4, "big") + bytes(int(size) - 4))
                    await ws.send_text("flood done")
                    continue
                if text == "big" or text.startswith("big:"):  # big:SIZE, 1 MiB by default
                    await ws.send_bytes(b"x" * int(text[4:] or 1 << 20))
                    continue
                await ws.send_text(text)
            else:
                await ws.send_bytes(msg["bytes"])
    except WebSocketDisconnect:
        pass


@app.websocket("/ws/crash")
async def ws_crash(ws: WebSocket):
    await ws.accept()
    await ws.send_text("about to crash")
    await asyncio.sleep(0.2)
    os._exit(3)


@app.websocket("/ws/refuse")
async def ws_refuse(ws: WebSocket):
    await ws.close(code=1008)


@app.websocket("/ws/deny")
async def ws_deny(ws: WebSocket):
    await ws.send_denial_response(PlainTextResponse("no entry", status_code=401))


async def violation(scope, receive, send):
    """A raw ASGI app that breaks the protocol: a body before the start."""
    await send({"type": "http.response.body", "body": b"too early"})


app.mount("/violation", violation)
