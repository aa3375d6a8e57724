"""ASGI workers, WebSocket: the scope, accept, messages both ways (split
and reassembled), WS_ACK, PAUSE, close from either side, denial."""

import ast
import socket
import struct
import time

from .support import (
    BODY, CANCEL, END, ERROR, PAUSE, RESUME, START, WS_ACCEPT, WS_ACK,
    WS_CLOSE, WS_MESSAGE, WS_MORE, WS_TEXT, AsgiTestCase)

MiB = 1 << 20


def accept_payload(frame):
    parts = frame.payload.split(b"\0")
    return parts[0], list(zip(parts[1::2], parts[2::2]))


class WebSocketTest(AsgiTestCase):
    def open(self, master, rid, path="/ws/echo", **kwargs):
        master.websocket(rid, path, **kwargs)
        accepted = master.recv(lambda f: f.id == rid)
        self.assertEqual(accepted.kind, WS_ACCEPT, accepted)
        return accepted

    def message(self, master, rid):
        """One whole message from the worker: (flags of the first part, data)."""
        parts = []
        flags = None
        while True:
            f = master.recv(lambda f: f.id == rid and f.kind != WS_ACK)
            self.assertEqual(f.kind, WS_MESSAGE, f)
            if flags is None:
                flags = f.flags & WS_TEXT
            parts.append(f.payload)
            self.assertLessEqual(len(f.payload), MiB)
            if not f.flags & WS_MORE:
                return flags, b"".join(parts)

    def test_scope(self):
        master = self.asgi()
        accepted = self.open(master, 1, "/ws/scope", scheme="https", query=b"x=1",
                             headers=(("host", "example.com"),
                                      ("sec-websocket-protocol", "chat, superchat"),
                                      ("sec-websocket-protocol", "v3")))
        self.assertEqual(accept_payload(accepted), (b"", [(b"x-extra", b"1")]))
        flags, data = self.message(master, 1)
        self.assertEqual(flags, WS_TEXT)
        scope = ast.literal_eval(data.decode("utf-8"))
        self.assertEqual(scope["type"], "websocket")
        self.assertEqual(scope["scheme"], "wss")
        self.assertEqual(scope["asgi"], {"version": "3.0", "spec_version": "2.5"})
        self.assertEqual(scope["http_version"], "1.1")
        self.assertEqual(scope["path"], "/ws/scope")
        self.assertEqual(scope["raw_path"], b"/ws/scope")
        self.assertEqual(scope["query_string"], b"x=1")
        self.assertEqual(scope["root_path"], "")
        self.assertEqual(scope["subprotocols"], ["list", "chat", "superchat", "v3"])
        self.assertEqual(scope["client"], ["tuple", "127.0.0.1", 40000])
        self.assertEqual(scope["server"], ["tuple", "127.0.0.1", 8000])
        self.assertEqual(scope["extensions"], {"websocket.http.response": {}})
        self.assertEqual(scope["state"], {})
        self.assertNotIn("method", scope)
        close = master.recv(lambda f: f.id == 1)
        self.assertEqual((close.kind, close.payload), (WS_CLOSE, struct.pack("!H", 1000)))
        self.assertEqual(master.recv(lambda f: f.id == 1).kind, END)

    def test_subprotocol_and_echo(self):
        master = self.asgi()
        accepted = self.open(master, 1, headers=(("sec-websocket-protocol", "a, b"),))
        self.assertEqual(accept_payload(accepted), (b"b", []))
        master.ws_send(1, "hé")
        self.assertEqual(self.message(master, 1), (WS_TEXT, "hé".encode("utf-8")))
        master.ws_send(1, b"\x00\xff")
        self.assertEqual(self.message(master, 1), (0, b"\x00\xff"))
        master.ws_send(1, b"")
        self.assertEqual(self.message(master, 1), (0, b""))

    def test_fragmented_client_message_is_reassembled_and_acked(self):
        master = self.asgi()
        self.open(master, 1)
        master.ws_send(1, b"a" * 1000, more=True)
        master.ws_send(1, b"b" * 1000, more=True)
        master.ws_send(1, b"c" * 10)
        self.assertEqual(self.message(master, 1), (0, b"a" * 1000 + b"b" * 1000 + b"c" * 10))
        ack = master.recv(lambda f: f.kind == WS_ACK)
        self.assertEqual((ack.id, ack.payload), (1, struct.pack("!I", 2010)))
        # Text parts carry TEXT on each part.
        master.send(0x09, 1, "é".encode("utf-8")[:1], WS_TEXT | WS_MORE)
        master.send(0x09, 1, "é".encode("utf-8")[1:], WS_TEXT)
        self.assertEqual(self.message(master, 1), (WS_TEXT, "é".encode("utf-8")))

    def test_large_messages_are_split(self):
        for query in (b"", b"text=1"):
            with self.subTest(query=query):
                master = self.asgi()
                self.open(master, 1, "/ws/big", query=query)
                flags, data = self.message(master, 1)
                if query:
                    self.assertEqual(flags, WS_TEXT)
                    self.assertEqual(data, ("é" * ((3 * MiB) // 2)).encode("utf-8"))
                else:
                    self.assertEqual((flags, data), (0, b"b" * (3 * MiB)))
                self.assertEqual(master.recv(lambda f: f.id == 1).kind, WS_CLOSE)
                self.assertEqual(master.recv(lambda f: f.id == 1).kind, END)

    def test_ack_only_when_the_app_receives(self):
        master = self.asgi()
        self.open(master, 1, "/ws/slow", query=b"s=0.6")
        master.ws_send(1, b"x" * 100)
        master.ws_send(1, b"y" * 50)
        # The app sleeps before reading: no WS_ACK yet.
        with self.assertRaises(socket.timeout):
            master.recv(lambda f: f.kind == WS_ACK, timeout=0.3)
        master.wait_output("slow reader reads")
        acks = [master.recv(lambda f: f.kind == WS_ACK) for _ in range(2)]
        self.assertEqual([a.payload for a in acks], [struct.pack("!I", 100), struct.pack("!I", 50)])
        self.assertEqual(self.message(master, 1), (WS_TEXT, b"got 100"))
        self.assertEqual(self.message(master, 1), (WS_TEXT, b"got 50"))

    def test_pause_makes_send_wait(self):
        master = self.asgi()
        master.websocket(1, "/ws/flood", query=b"n=50&sleep=0.01")
        self.assertEqual(master.recv(lambda f: f.id == 1).kind, WS_ACCEPT)
        master.send(PAUSE, 1)
        time.sleep(0.3)
        received = []
        try:
            while True:
                f = master.recv(lambda f: f.id == 1, timeout=0.2)
                received.append(f)
        except socket.timeout:
            pass
        # Some messages may have gone before PAUSE arrived; not all 50.
        self.assertLess(len(received), 50)
        master.send(RESUME, 1)
        while True:
            f = master.recv(lambda f: f.id == 1)
            received.append(f)
            if f.kind == END:
                break
        texts = [f.payload for f in received if f.kind == WS_MESSAGE]
        self.assertEqual(texts, [b"m%d" % i for i in range(50)])

    def test_client_close_releases_a_paused_send(self):
        master = self.asgi()
        master.websocket(1, "/ws/flood", query=b"n=1000&sleep=0.01")
        self.assertEqual(master.recv(lambda f: f.id == 1).kind, WS_ACCEPT)
        master.send(PAUSE, 1)
        time.sleep(0.2)
        master.ws_close(1, 1001)
        while True:
            f = master.recv(lambda f: f.id == 1)
            if f.kind == END:
                break
            self.assertEqual(f.kind, WS_MESSAGE)
        self.assertEqual(f.flags, 0)
        self.assertNotIn("Traceback", master.output)

    def test_client_close_gives_disconnect_and_later_sends_raise(self):
        master = self.asgi()
        self.open(master, 1, query=b"tag=cc")
        master.ws_close(1, 4000, "client says bye")
        self.assertEqual(master.recv(lambda f: f.id == 1).kind, END)
        master.wait_output("ws disconnect cc 4000 'client says bye'")
        master.wait_output("ws send raised ClientDisconnected cc")

    def test_cancel_gives_1006_and_aborted_end(self):
        master = self.asgi()
        self.open(master, 1, query=b"tag=x")
        master.send(CANCEL, 1)
        end = master.recv(lambda f: f.id == 1)
        self.assertEqual((end.kind, end.flags), (END, 0x01))
        master.wait_output("ws disconnect x 1006 ''")

    def test_app_close(self):
        master = self.asgi()
        self.open(master, 1)
        master.ws_send(1, "close")
        close = master.recv(lambda f: f.id == 1 and f.kind != WS_ACK)
        self.assertEqual(close.kind, WS_CLOSE)
        self.assertEqual(close.payload, struct.pack("!H", 4001) + b"bye")
        self.assertEqual(master.recv(lambda f: f.id == 1 and f.kind != WS_ACK).kind, END)
        # receive() after the app's close: websocket.disconnect at once.
        master.wait_output("after close: websocket.disconnect 4001")

    def test_denial_response(self):
        master = self.asgi()
        master.websocket(1, "/ws/deny")
        response = master.collect(1)
        self.assertEqual(response.kinds, [START, BODY, END])
        self.assertEqual(response.status, "401 Unauthorized")
        self.assertEqual(response.body, b"no entry")

    def test_close_before_accept_and_no_accept(self):
        master = self.asgi()
        master.websocket(1, "/ws/reject")
        close = master.recv(lambda f: f.id == 1)
        self.assertEqual((close.kind, close.payload), (WS_CLOSE, struct.pack("!H", 1008)))
        self.assertEqual(master.recv(lambda f: f.id == 1).kind, END)
        master.websocket(2, "/ws/noaccept")
        end = master.recv(lambda f: f.id == 2)
        self.assertEqual((end.kind, end.flags), (END, 0))

    def test_violations(self):
        master = self.asgi()
        for rid, (what, text) in enumerate([
            ("send_before_accept", "websocket.send before websocket.accept"),
            ("both", "exactly one of bytes and text"),
            ("accept_twice", "websocket.accept on a WebSocket that is open"),
            ("http_type", "unexpected message type 'http.response.start' in a websocket scope"),
            ("raise", "ValueError: ws boom"),
        ], 1):
            with self.subTest(what):
                master.websocket(rid, "/ws/violation", query=("what=" + what).encode())
                f = master.recv(lambda f: f.id == rid and f.kind != WS_ACCEPT)
                self.assertEqual(f.kind, ERROR, f)
                self.assertIn(text, f.json()["error"])

    def test_http_and_websocket_side_by_side(self):
        master = self.asgi()
        self.open(master, 1)
        self.assertEqual(master.asgi_get(2, "/").body, b"Hello, world!")
        master.ws_send(1, "still here")
        self.assertEqual(self.message(master, 1), (WS_TEXT, b"still here"))
