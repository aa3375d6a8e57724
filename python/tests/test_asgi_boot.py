"""ASGI workers: interface detection, HELLO, modes, lifespan, the zygote."""

import json
import os
import signal
import socket
import struct

from .support import (
    BOOTFAIL, HELLO, LOG, START, AsgiMaster, AsgiTestCase, encode, scope_block)
from .test_zygote import Forked

FORK, FORKED, EXITED = 0x08, 0x1C, 0x1D


class DetectionTest(AsgiTestCase):
    def test_auto_detects_each_shape(self):
        for app, interface, body in (
            ("asgi_detect:coro", "asgi", b"coroutine function"),
            ("asgi_detect:partial", "asgi", b"partial x"),
            ("asgi_detect:obj", "asgi", b"object"),
            ("asgi_detect:Asgi2", "asgi", b"asgi2 /"),
            ("asgi_detect:wsgi", "wsgi", b"wsgi"),
        ):
            with self.subTest(app=app):
                master = self.asgi(app)
                hello = master.hello.json()
                self.assertEqual(hello["interface"], interface)
                self.assertEqual(hello["protocol"], 2)
                if interface == "asgi":
                    self.assertEqual(master.asgi_get(1, "/").body, body)
                else:
                    self.assertIsNone(hello["asgi"])
                    self.assertEqual(hello["threads"], 1)
                    self.assertEqual(master.get(1).body, body)

    def test_hello_of_an_asgi_worker(self):
        master = self.asgi("asgi_hello:app", connections=321)
        hello = master.hello.json()
        self.assertEqual(hello["threads"], 321)
        self.assertEqual(hello["asgi"], {
            "version": "3.0", "spec_version": "2.5", "lifespan": "unsupported",
            "extensions": ["http.response.pathsend", "http.response.trailers",
                           "http.response.early_hint", "websocket.http.response"]})

    def test_forced_asgi_takes_a_double_callable(self):
        master = self.asgi("asgi_detect:double", interface="asgi")
        self.assertEqual(master.asgi_get(1, "/").body, b"double function")
        # A WSGI function forced to ASGI fails per request, not at boot.
        master = self.asgi("asgi_detect:wsgi", interface="asgi")
        response = master.asgi_get(1, "/")
        self.assertIn("TypeError", response.error["error"])

    def test_forced_wsgi_refuses_an_asgi_app(self):
        for app in ("asgi_detect:coro", "asgi_detect:obj", "asgi_detect:Asgi2"):
            with self.subTest(app=app):
                master = AsgiMaster(app, interface="wsgi")
                self.addCleanup(master.close)
                self.assertEqual(master.hello.kind, BOOTFAIL)
                self.assertIn("is an ASGI application", master.hello.json()["error"])
                self.assertEqual(master.wait_exit(), 1)

    def test_forced_wsgi_serves_wsgi(self):
        master = self.asgi("asgi_detect:wsgi", interface="wsgi")
        self.assertEqual(master.hello.json()["interface"], "wsgi")
        self.assertEqual(master.get(1).body, b"wsgi")

    def test_bad_config_is_a_bootfail(self):
        for config, text in (
            ({"interface": "rsgi"}, "unknown interface"),
            ({"worker_connections": 0}, "worker_connections"),
            ({"protocol": 1}, "needs protocol version 2"),
        ):
            with self.subTest(config=config):
                master = AsgiMaster("asgi_hello:app", config=config)
                self.addCleanup(master.close)
                self.assertEqual(master.hello.kind, BOOTFAIL)
                self.assertIn(text, master.hello.json()["error"])

    def test_check_and_routes_modes(self):
        for mode in ("check", "routes"):
            with self.subTest(mode=mode):
                master = self.asgi("asgi_lifespan:ok", mode=mode)
                hello = master.hello.json()
                self.assertEqual(hello["interface"], "asgi")
                self.assertEqual(hello["asgi"]["lifespan"], "off")
                self.assertEqual(master.wait_exit(), 0)
                self.assertNotIn("startup in", master.output)

    def test_uvloop_when_importable(self):
        try:
            import uvloop  # noqa: F401
            expected = b"uvloop"
        except ImportError:
            expected = b"asyncio.unix_events"
        master = self.asgi()
        self.assertEqual(master.asgi_get(1, "/loop").body, expected)

    def test_asgi2_lifespan(self):
        master = self.asgi("asgi_detect:Asgi2")
        self.assertEqual(master.hello.json()["asgi"]["lifespan"], "unsupported")


class LifespanTest(AsgiTestCase):
    def test_startup_state_and_shutdown_on_eof(self):
        master = self.asgi("asgi_lifespan:ok")
        self.assertEqual(master.hello.json()["asgi"]["lifespan"], "on")
        master.wait_output("startup in %d" % master.proc.pid)
        self.assertEqual(master.asgi_get(1, "/").body, b"[('db', 'ready')]")
        # Each scope gets a copy: the first request's change is not seen.
        self.assertEqual(master.asgi_get(2, "/").body, b"[('db', 'ready')]")
        master.data.shutdown(socket.SHUT_WR)
        self.assertEqual(master.wait_exit(), 0)
        master.wait_output("shutdown in %d" % master.proc.pid)

    def test_shutdown_on_sigterm(self):
        master = self.asgi("asgi_lifespan:ok")
        master.signal(signal.SIGTERM)
        self.assertEqual(master.wait_exit(), 0)
        master.wait_output("shutdown in")

    def test_startup_failed_is_a_bootfail(self):
        for mode in ("auto", "on"):
            with self.subTest(mode=mode):
                master = AsgiMaster("asgi_lifespan:failing", lifespan=mode)
                self.addCleanup(master.close)
                self.assertEqual(master.hello.kind, BOOTFAIL)
                self.assertEqual(master.hello.json()["error"], "database unreachable")
                self.assertEqual(master.wait_exit(), 1)

    def test_raising_app_with_auto_is_served_without_lifespan(self):
        for app in ("asgi_lifespan:raising", "asgi_lifespan:raise_in_startup"):
            with self.subTest(app=app):
                master = self.asgi(app, lifespan="auto")
                self.assertEqual(master.hello.json()["asgi"]["lifespan"], "unsupported")
                self.assertEqual(master.asgi_get(1, "/").body, b"[]")

    def test_raising_app_with_on_is_a_bootfail(self):
        master = AsgiMaster("asgi_lifespan:raise_in_startup", lifespan="on")
        self.addCleanup(master.close)
        self.assertEqual(master.hello.kind, BOOTFAIL)
        info = master.hello.json()
        self.assertEqual(info["error"], "RuntimeError: startup exploded")
        self.assertIn('raise RuntimeError("startup exploded")', info["traceback"])
        self.assertEqual(master.wait_exit(), 1)

    def test_off_runs_no_lifespan(self):
        master = self.asgi("asgi_lifespan:ok", lifespan="off")
        self.assertEqual(master.hello.json()["asgi"]["lifespan"], "off")
        self.assertEqual(master.asgi_get(1, "/").body, b"[]")
        master.data.shutdown(socket.SHUT_WR)
        self.assertEqual(master.wait_exit(), 0)
        self.assertNotIn("startup in", master.output)
        self.assertNotIn("shutdown in", master.output)

    def test_shutdown_failed_is_logged_and_exit_is_0(self):
        master = self.asgi("asgi_lifespan:shutdown_failed")
        master.data.shutdown(socket.SHUT_WR)
        log = master.recv(lambda f: f.kind == LOG)
        self.assertIn("cleanup failed", log.json()["message"])
        self.assertEqual(master.wait_exit(), 0)

    def test_shutdown_is_bounded_by_graceful_timeout(self):
        master = self.asgi("asgi_lifespan:slow_shutdown", graceful=0.5)
        master.data.shutdown(socket.SHUT_WR)
        log = master.recv(lambda f: f.kind == LOG)
        self.assertIn("did not complete within 0.5 seconds", log.json()["message"])
        self.assertEqual(master.wait_exit(), 0)


class ZygoteTest(AsgiTestCase):
    def test_forked_asgi_worker_runs_its_own_lifespan(self):
        master = self.asgi("asgi_lifespan:ok", mode="zygote")
        zygote = master.proc.pid
        self.assertEqual(master.hello.json()["asgi"]["lifespan"], "off")
        self.assertNotIn("startup in", master.output)
        child = Forked()
        self.addCleanup(child.close)
        fork = encode(FORK, 5, json.dumps({"worker_id": 2}).encode())
        master.data.sendmsg([fork], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                      struct.pack("4i", *child.child_fds()))])
        child.close_child_ends()
        answer = master.recv()
        self.assertEqual((answer.kind, answer.id), (FORKED, 5))
        pid = answer.json()["pid"]
        kind, _, payload = child.recv_frame()
        self.assertEqual(kind, HELLO, payload)
        hello = json.loads(payload)
        self.assertEqual((hello["pid"], hello["interface"]), (pid, "asgi"))
        self.assertEqual(hello["asgi"]["lifespan"], "on")
        block = scope_block()
        child.data.sendall(encode(0x02, 1, struct.pack("!I", len(block)) + block))
        kind, rid, payload = child.recv_frame()
        self.assertEqual((kind, rid), (START, 1))
        self.assertTrue(payload.endswith(b"[('db', 'ready')]"))
        child.data.shutdown(socket.SHUT_WR)
        exited = master.recv()
        self.assertEqual(exited.kind, EXITED)
        self.assertEqual(exited.json(), {"pid": pid, "status": 0})
        out = b""
        while True:
            data = os.read(child.out_r, 65536)
            if not data:
                break
            out += data
        self.assertIn(b"startup in %d" % pid, out)
        self.assertIn(b"shutdown in %d" % pid, out)
        self.assertNotIn(b"startup in %d" % zygote, out)
        self.assertNotIn("startup in %d" % zygote, master.output)
