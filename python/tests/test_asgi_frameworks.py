"""Real ASGI frameworks on an ASGI worker: FastAPI and Starlette (skipped
when they are not installed; scripts/test and integration/requirements.txt
install them)."""

import importlib.util
import json
import socket
import struct
import unittest

from .support import (
    END, FILE, START, WS_ACCEPT, WS_ACK, WS_CLOSE, WS_MESSAGE, WS_TEXT, AsgiTestCase)

HAVE_FASTAPI = importlib.util.find_spec("fastapi") is not None
HAVE_STARLETTE = importlib.util.find_spec("starlette") is not None


def ws_frame(master, rid):
    return master.recv(lambda f: f.id == rid and f.kind != WS_ACK)


@unittest.skipUnless(HAVE_FASTAPI, "FastAPI is not importable by this Python")
class FastAPITest(AsgiTestCase):
    def setUp(self):
        self.master = self.asgi("fastapi_app:app")

    def test_lifespan_and_routes(self):
        master = self.master
        self.assertEqual(master.hello.json()["asgi"]["lifespan"], "on")
        response = master.asgi_get(1, "/items/5", query=b"q=x")
        self.assertEqual(response.status, "200 OK")
        self.assertEqual(response.json(), {"item_id": 5, "q": "x"})
        self.assertEqual(response.header("content-type"), "application/json")
        # (The reason phrase is the standard one of this Python.)
        self.assertTrue(master.asgi_get(2, "/items/abc").status.startswith("422 "))
        self.assertEqual(master.asgi_get(4, "/nowhere").status, "404 Not Found")

    def test_pulled_body_and_state(self):
        body = b"x" * (2 * (1 << 20) + 3)
        response = self.master.asgi_get(
            1, "/echo", method="POST", body=body, pull=True,
            headers=(("content-length", str(len(body))), ("host", "h")))
        self.assertEqual(response.json(), {"size": len(body), "greeting": "hello from lifespan",
                                           "root_path": "", "client": "127.0.0.1"})

    def test_sync_endpoint_runs_in_the_threadpool(self):
        response = self.master.asgi_get(1, "/sync")
        self.assertEqual(response.json()["pid"], self.master.proc.pid)

    def test_streaming_response(self):
        response = self.master.asgi_get(1, "/stream")
        self.assertEqual(response.body, b"chunk0;chunk1;chunk2;")
        self.assertEqual(response.kinds[0], START)
        self.assertEqual(response.kinds[-1], END)

    def test_file_response_uses_pathsend(self):
        response = self.master.asgi_get(1, "/file")
        self.assertIn(FILE, response.kinds)
        self.assertIn(b"FastAPI app for the framework tests", response.body)

    def test_background_task(self):
        self.assertEqual(self.master.asgi_get(1, "/background").json(), {"queued": True})
        self.master.wait_output("background task ran")

    def test_websocket(self):
        master = self.master
        master.websocket(1, "/ws")
        self.assertEqual(ws_frame(master, 1).kind, WS_ACCEPT)
        master.ws_send(1, "hi")
        f = ws_frame(master, 1)
        self.assertEqual((f.kind, f.flags, f.payload), (WS_MESSAGE, WS_TEXT, b"echo hi"))
        master.ws_send(1, "bye")
        f = ws_frame(master, 1)
        self.assertEqual((f.kind, f.payload), (WS_CLOSE, struct.pack("!H", 4000)))
        self.assertEqual(ws_frame(master, 1).kind, END)

    def test_shutdown_runs_on_eof(self):
        self.master.data.shutdown(socket.SHUT_WR)
        self.assertEqual(self.master.wait_exit(), 0)
        self.master.wait_output("fastapi shutdown")


@unittest.skipUnless(HAVE_STARLETTE, "Starlette is not importable by this Python")
class StarletteTest(AsgiTestCase):
    def setUp(self):
        self.master = self.asgi("starlette_app:app")

    def test_middleware_and_lifespan_state(self):
        master = self.master
        for rid in (1, 2):
            response = master.asgi_get(rid, "/")
            self.assertEqual(response.header("x-stamp"), "1")
        # The state dict is shallow-copied: the list inside is shared.
        self.assertEqual(response.body, b"home 2")

    def test_streamed_upload(self):
        body = b"y" * (3 * (1 << 20))
        response = self.master.asgi_get(1, "/upload", method="POST", body=body, pull=True)
        self.assertEqual(response.json(), {"total": len(body)})

    def test_root_path(self):
        response = self.master.asgi_get(1, "/api/sub/inner", root_path=b"/api")
        # path includes root_path; Starlette's Mount extends root_path.
        self.assertEqual(response.json(), {"path": "/api/sub/inner", "root_path": "/api/sub"})

    def test_websocket_denial(self):
        master = self.master
        master.websocket(1, "/denied")
        response = master.collect(1)
        self.assertEqual(response.status, "403 Forbidden")
        self.assertEqual(response.body, b"go away")

    def test_websocket_chat(self):
        master = self.master
        master.websocket(1, "/chat", headers=(("sec-websocket-protocol", "chat"),))
        accepted = ws_frame(master, 1)
        self.assertEqual((accepted.kind, accepted.payload), (WS_ACCEPT, b"chat"))
        master.ws_send(1, "one")
        f = ws_frame(master, 1)
        self.assertEqual(json.loads(f.payload), {"got": "one"})
        master.ws_close(1, 1001, "going away")
        self.assertEqual(ws_frame(master, 1).kind, END)
