"""The smallest useful ASGI app: the "hello" and "websocket" workloads of
`bench/run asgi`.

Plain ASGI 3 (no framework), so it measures the server, not a framework:

- HTTP, any path: 200 with the 13-byte body "Hello, world!", an explicit
  Content-Length, so no server has to fall back to chunked encoding;
- WebSocket, any path: accepts, then sends every message back as it came
  (text as text, bytes as bytes) until the client closes;
- lifespan: answers startup and shutdown, so servers that run the lifespan
  protocol (all of them by default) find it supported.

    uvicorn --app-dir examples/asgihello app:app
    corral --chdir examples/asgihello app:app
"""

BODY = b"Hello, world!"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())],
}
RESPONSE = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "http":
        await send(START)
        await send(RESPONSE)
    elif kind == "websocket":
        await echo(receive, send)
    elif kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def echo(receive, send):
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
