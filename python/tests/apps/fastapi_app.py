"""A FastAPI app for the framework tests (needs fastapi installed)."""

import contextlib
import os

from fastapi import BackgroundTasks, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, StreamingResponse

import sys


@contextlib.asynccontextmanager
async def lifespan(app):
    sys.stderr.write("fastapi startup\n")
    yield {"greeting": "hello from lifespan"}
    sys.stderr.write("fastapi shutdown\n")
    sys.stderr.flush()


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def item(item_id: int, q: str = ""):
    return {"item_id": item_id, "q": q}


@app.post("/echo")
async def echo(request: Request):
    body = await request.body()
    return {"size": len(body), "greeting": request.state.greeting,
            "root_path": request.scope["root_path"], "client": request.client.host}


@app.get("/sync")
def sync():
    return {"sync": True, "pid": os.getpid()}


@app.get("/stream")
async def stream():
    async def chunks():
        for i in range(3):
            yield b"chunk%d;" % i

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/file")
async def file():
    return FileResponse(__file__, media_type="text/x-python")


def _later(tag):
    sys.stderr.write("background task %s\n" % tag)
    sys.stderr.flush()


@app.get("/background")
async def background(tasks: BackgroundTasks):
    tasks.add_task(_later, "ran")
    return {"queued": True}


@app.websocket("/ws")
async def ws(websocket: WebSocket):
    await websocket.accept()
    while True:
        text = await websocket.receive_text()
        if text == "bye":
            await websocket.close(code=4000)
            return
        await websocket.send_text("echo " + text)
