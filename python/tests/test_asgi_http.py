"""ASGI workers, HTTP: scopes, bodies, responses, extensions, cancel,
timeouts, concurrency and protocol violations (PROTOCOL.md, version 2)."""

import ast
import json
import os
import signal
import socket
import struct
import tempfile
import time

from .support import (
    BODY, CANCEL, CANCEL_TIMEOUT, EARLY_HINT, END,
    ERROR, FILE, LOG, PAUSE, PING, PONG, READ, RESUME, START, START_END,
    START_TRAILERS, TRAILERS, AsgiTestCase, scope_block)

BAN = 0x1B


def start_head(frame):
    n = struct.unpack("!I", frame.payload[:4])[0]
    parts = frame.payload[4 : 4 + n].split(b"\0")
    return parts[0], list(zip(parts[1::2], parts[2::2])), frame.payload[4 + n :]


def pairs(payload):
    parts = payload.split(b"\0")
    return list(zip(parts[0::2], parts[1::2]))


class ScopeTest(AsgiTestCase):
    def scope(self, master, rid=1, **kwargs):
        response = master.asgi_get(rid, "/scope", **kwargs)
        self.assertEqual(response.status, "200 OK", response.error)
        return ast.literal_eval(response.body.decode("utf-8"))

    def test_http_scope_keys_and_types(self):
        master = self.asgi()
        scope = self.scope(
            master, method="POST", scheme="https", version="2",
            raw_path=b"/scope", query=b"a=1&b=%20", root_path=b"",
            client=(b"203.0.113.7", b"51234"), server=(b"127.0.0.1", b"8443"),
            headers=(("host", "example.com"), ("cookie", "a=1"), ("cookie", "b=2")))
        self.assertEqual(scope, {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.5"},
            "http_version": "2",
            "method": "POST",
            "scheme": "https",
            "path": "/scope",
            "raw_path": b"/scope",
            "query_string": b"a=1&b=%20",
            "root_path": "",
            "headers": ["list", ["tuple", b"host", b"example.com"],
                        ["tuple", b"cookie", b"a=1"], ["tuple", b"cookie", b"b=2"]],
            "client": ["tuple", "203.0.113.7", 51234],
            "server": ["tuple", "127.0.0.1", 8443],
            "state": {},
            "extensions": {"http.response.pathsend": {}, "http.response.trailers": {},
                           "http.response.early_hint": {}},
        })

    def test_utf8_path_root_path_and_raw_path(self):
        master2 = self.asgi()
        scope = self.scope(master2, raw_path=b"/sc%6Fpe", root_path=b"/mnt")
        self.assertEqual(scope["raw_path"], b"/sc%6Fpe")
        self.assertEqual(scope["root_path"], "/mnt")
        response = master2.asgi_get(2, "/caf\xe9".encode("utf-8"))
        self.assertEqual(response.body, b"Hello, world!")

    def test_undecodable_path_uses_surrogateescape(self):
        master = self.asgi()
        response = master.asgi_get(1, b"/scope/\xff")
        scope = ast.literal_eval(response.body.decode("utf-8", "surrogateescape"))
        self.assertEqual(scope["path"], "/scope/\udcff")

    def test_unix_socket_server_and_no_client(self):
        master = self.asgi()
        scope = self.scope(master, client=(b"", b""), server=(b"/run/corral.sock", b""))
        self.assertIsNone(scope["client"])
        self.assertEqual(scope["server"], ["tuple", "/run/corral.sock", None])

    def test_client_without_port(self):
        master = self.asgi()
        scope = self.scope(master, client=(b"192.0.2.1", b""))
        self.assertEqual(scope["client"], ["tuple", "192.0.2.1", 0])

    def test_no_headers(self):
        master = self.asgi()
        scope = self.scope(master, headers=())
        self.assertEqual(scope["headers"], ["list"])

    def test_malformed_scope_block_is_a_protocol_error(self):
        master = self.asgi()
        block = b"GET\0http\x001.1"
        master.send(0x02, 1, struct.pack("!I", len(block)) + block)
        self.assertEqual(master.wait_exit(), 70)


class BodyTest(AsgiTestCase):
    def test_inline_body_is_one_event(self):
        master = self.asgi()
        response = master.asgi_get(1, "/echo", body=b"hello body")
        self.assertEqual(response.body, b"hello body")
        self.assertEqual(response.header("x-events"), "1")

    def test_pulled_body_arrives_with_reads(self):
        master = self.asgi()
        body = os.urandom(3 * (1 << 20) + 5)
        response = master.asgi_get(1, "/echo", body=body, pull=True)
        self.assertEqual(response.body, body)
        # 3 full DATA, one short, one empty: five events.
        self.assertEqual(response.header("x-events"), "5")
        self.assertTrue(all(size == 1 << 20 for _, size in master.reads))

    def test_pulled_body_with_inline_start(self):
        master = self.asgi()
        block = scope_block(path=b"/echo")
        master.bodies[1] = b"-rest"
        master.send(0x02, 1, struct.pack("!I", len(block)) + block + b"start", 0x01)
        response = master.collect(1)
        self.assertEqual(response.body, b"start-rest")

    def test_receive_after_response_is_disconnect(self):
        master = self.asgi()
        self.assertEqual(master.asgi_get(1, "/disconnect_after").body, b"done")
        master.wait_output("after response: http.disconnect")


class ResponseTest(AsgiTestCase):
    def test_single_body_is_one_start_end_frame(self):
        master = self.asgi()
        response = master.asgi_get(1, "/")
        self.assertEqual(response.kinds, [START])
        self.assertEqual(response.frames[0].flags, START_END)
        self.assertEqual(response.status, "200 OK")
        self.assertEqual(response.headers, [("content-type", "text/plain")])
        self.assertEqual(response.body, b"Hello, world!")

    def test_empty_body_and_reason_phrases(self):
        master = self.asgi()
        response = master.asgi_get(1, "/empty")
        self.assertEqual((response.kinds, response.status, response.body), ([START], "204 No Content", b""))
        self.assertEqual(master.asgi_get(2, "/status", query=b"code=404").status, "404 Not Found")
        self.assertEqual(master.asgi_get(4, "/status", query=b"code=299").status, "299 ")

    def test_streaming(self):
        master = self.asgi()
        response = master.asgi_get(1, "/stream", query=b"n=3&size=2")
        self.assertEqual(response.kinds, [START, BODY, BODY, END])
        self.assertEqual(response.frames[0].flags, 0)
        self.assertEqual(start_head(response.frames[0])[2], b"00")
        self.assertEqual(response.body, b"001122")
        self.assertFalse(response.aborted)

    def test_large_body_is_split_into_frames(self):
        master = self.asgi()
        response = master.asgi_get(1, "/big")
        self.assertEqual(response.body, bytes(range(256)) * ((3 << 20) // 256))
        self.assertEqual(response.kinds[0], START)
        self.assertEqual(response.kinds[-1], END)
        self.assertTrue(all(len(f.payload) <= 1 << 20 for f in response.frames))

    def test_pathsend_sends_the_descriptor(self):
        master = self.asgi()
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(b"file contents " * 1000)
        self.addCleanup(os.unlink, f.name)
        response = master.asgi_get(1, "/pathsend", query=("file=" + f.name).encode())
        self.assertEqual(response.kinds, [START, FILE, END])
        self.assertEqual(struct.unpack("!Qq", response.frames[1].payload), (0, -1))
        self.assertIsNotNone(response.frames[1].fd)
        self.assertEqual(response.body, b"file contents " * 1000)
        self.assertEqual(response.header("content-type"), "application/octet-stream")

    def test_pathsend_with_trailers(self):
        master = self.asgi()
        response = master.asgi_get(1, "/pathsend", query=b"file=/etc/hostname&trailers=1")
        self.assertEqual(response.kinds, [START, FILE, TRAILERS, END])
        self.assertEqual(response.frames[0].flags, START_TRAILERS)

    def test_pathsend_of_a_missing_file_is_an_error(self):
        master = self.asgi()
        response = master.asgi_get(1, "/pathsend", query=b"file=/no/such/file")
        self.assertEqual(response.kinds, [ERROR])
        self.assertIn("FileNotFoundError", response.error["error"])

    def test_trailers(self):
        master = self.asgi()
        response = master.asgi_get(1, "/trailers")
        self.assertEqual(response.kinds, [START, BODY, TRAILERS, END])
        self.assertEqual(response.frames[0].flags, START_TRAILERS)
        self.assertEqual(response.body, b"part1,part2")
        self.assertEqual(pairs(response.frames[2].payload),
                         [(b"x-checksum", b"abc"), (b"x-count", b"2")])

    def test_early_hints_come_before_start(self):
        master = self.asgi()
        response = master.asgi_get(1, "/early")
        self.assertEqual(response.kinds, [EARLY_HINT, START])
        self.assertEqual(pairs(response.frames[0].payload), [
            (b"link", b"</style.css>; rel=preload; as=style"),
            (b"link", b"</app.js>; rel=preload; as=script")])
        self.assertEqual(response.body, b"hinted")

    def test_exception_is_an_error_with_traceback(self):
        master = self.asgi()
        response = master.asgi_get(1, "/raise")
        self.assertEqual(response.kinds, [ERROR])
        self.assertEqual(response.error["error"], "RuntimeError: boom")
        self.assertIn('raise RuntimeError("boom")', response.error["traceback"])
        # After START, still ERROR (the master aborts the connection).
        response = master.asgi_get(2, "/raise", query=b"after_start=1")
        self.assertEqual(response.kinds, [START, ERROR])
        self.assertEqual(master.asgi_get(3, "/").body, b"Hello, world!")

    def test_returning_without_a_response(self):
        master = self.asgi()
        for rid, path, kinds, what in (
            (1, "/no_response", [ERROR], "without sending http.response.start"),
            (2, "/start_only", [ERROR], "without completing the response"),
        ):
            response = master.asgi_get(rid, path)
            self.assertEqual(response.kinds, kinds)
            self.assertIn(what, response.error["error"])

    def test_background_work_after_the_response(self):
        master = self.asgi()
        started = time.monotonic()
        response = master.asgi_get(1, "/background", query=b"s=0.5&send_after=1")
        self.assertLess(time.monotonic() - started, 0.45)  # not held by the background work
        self.assertEqual(response.kinds, [START])
        # The id is free again at once; a new request with it is served.
        self.assertEqual(master.asgi_get(1, "/").body, b"Hello, world!")
        master.wait_output("background done")
        master.wait_output("late send raised: ASGI protocol violation: http.response.body after the response completed")
        log = master.recv(lambda f: f.kind == LOG)
        self.assertEqual(log.id, 0)
        self.assertIn("after the response completed", log.json()["message"])

    def test_ban(self):
        master = self.asgi()
        master.asgi(1, "/ban", query=b"addr=192.0.2.7&seconds=30&reason=spam")
        ban = master.recv(lambda f: f.kind == BAN)
        self.assertEqual(ban.json(), {"addr": "192.0.2.7", "seconds": 30.0, "reason": "spam"})
        self.assertEqual(master.collect(1).body, b"True")
        master.asgi(2, "/ban_thread", query=b"addr=192.0.2.8")
        ban = master.recv(lambda f: f.kind == BAN)
        self.assertEqual(ban.json()["addr"], "192.0.2.8")
        self.assertEqual(master.collect(2).body, b"True")


class ViolationTest(AsgiTestCase):
    EXPECTED = {
        "body_before_start": "http.response.body before http.response.start",
        "second_start": "a second http.response.start",
        "wrong_type": "unexpected message type 'websocket.accept' in an http scope",
        "not_a_dict": "send() takes a dict with a 'type' key",
        "str_body": "http.response.body body must be bytes, not str",
        "str_status": "http.response.start status must be an int, not str",
        "bad_status": "status 1000 is out of range",
        "informational": "status 101 is out of range",
        "str_headers": "header name 'content-type' must be bytes, not str",
        "newline_header": "a header contains CR, LF or NUL",
        "nul_header": "invalid header name",
        "bad_header_name": "invalid header name b'bad name'",
        "headers_not_pairs": "headers must be an iterable of [name, value]",
        "after_complete_in_order": "a second http.response.start",
        "trailers_undeclared": "http.response.trailers without \"trailers\": true",
        "pathsend_after_body": "http.response.pathsend after http.response.body",
    }

    def test_each_violation_is_an_error_naming_it(self):
        master = self.asgi()
        for rid, (name, text) in enumerate(sorted(self.EXPECTED.items()), 1):
            with self.subTest(name):
                response = master.asgi_get(rid, "/violation/" + name)
                self.assertEqual(response.kinds[-1], ERROR, response.kinds)
                error = response.error["error"]
                self.assertTrue(error.startswith("ASGI protocol violation: "), error)
                self.assertIn(text, error)
        # The worker carries on.
        self.assertEqual(master.asgi_get(100, "/").body, b"Hello, world!")

    def test_caught_violation_still_fails_the_request(self):
        master = self.asgi()
        response = master.asgi_get(1, "/swallow")
        self.assertEqual(response.kinds, [ERROR])
        self.assertIn("a second http.response.start", response.error["error"])


class CancelTest(AsgiTestCase):
    def test_cancel_gives_disconnect_then_send_raises(self):
        master = self.asgi()
        master.asgi(1, "/wait_disconnect", query=b"tag=c1")
        first = master.recv(lambda f: f.id == 1)
        self.assertEqual(first.kind, START)
        master.send(CANCEL, 1)
        response = master.collect(1)
        self.assertEqual(response.kinds, [END])
        self.assertTrue(response.aborted)
        master.wait_output("received http.disconnect c1")
        master.wait_output("send raised ClientDisconnected c1")
        master.wait_output("it is an OSError c1")
        # ClientDisconnected is not logged as an error.
        self.assertNotIn("Traceback", master.output)

    def test_timeout_cancels_the_task(self):
        master = self.asgi()
        master.asgi(1, "/forever", query=b"tag=t1")
        master.wait_output("started t1")
        master.send(CANCEL, 1, flags=CANCEL_TIMEOUT)
        response = master.collect(1)
        self.assertEqual(response.kinds, [END])
        self.assertTrue(response.aborted)
        master.wait_output("cancelled t1")
        self.assertNotIn("Traceback", master.output)

    def test_cancel_for_unknown_or_completed_ids_is_ignored(self):
        master = self.asgi()
        self.assertEqual(master.asgi_get(1, "/").status, "200 OK")
        master.send(CANCEL, 1)
        master.send(CANCEL, 99)
        self.assertEqual(master.asgi_get(2, "/").status, "200 OK")
        master.assert_quiet(0.2)

    def test_pause_makes_send_wait(self):
        master = self.asgi()
        master.asgi(1, "/stream", query=b"n=6&size=1&sleep=0.05")
        self.assertEqual(master.recv(lambda f: f.id == 1).kind, START)
        master.send(PAUSE, 1)
        time.sleep(0.1)
        # Frames already queued may arrive; then nothing while paused.
        got = []
        try:
            while True:
                got.append(master.recv(lambda f: f.id == 1, timeout=0.4))
        except socket.timeout:
            pass
        self.assertLessEqual(len(got), 2)
        master.send(RESUME, 1)
        response = master.collect(1)
        self.assertEqual(response.kinds[-1], END)
        self.assertEqual(b"".join(f.payload for f in got) + response.body, b"12345")

    def test_cancel_while_paused_raises_in_send(self):
        master = self.asgi()
        master.asgi(1, "/stream", query=b"n=100&size=1&sleep=0.01")
        self.assertEqual(master.recv(lambda f: f.id == 1).kind, START)
        master.send(PAUSE, 1)
        time.sleep(0.1)
        master.send(CANCEL, 1)
        response = master.collect(1)
        self.assertTrue(response.aborted)


class ConcurrencyTest(AsgiTestCase):
    def test_many_requests_at_once_interleave(self):
        master = self.asgi(connections=200)
        # 100 requests that each sleep 0.3 s: served at once, not in turn.
        started = time.monotonic()
        for rid in range(1, 101):
            master.asgi(rid, "/sleep", query=b"s=0.3&tag=r%d" % rid)
        bodies = {}
        for rid in range(100, 0, -1):
            bodies[rid] = master.collect(rid).body
        self.assertLess(time.monotonic() - started, 3.0)
        self.assertEqual(bodies, {rid: b"r%d" % rid for rid in range(1, 101)})

    def test_each_request_has_its_own_task_and_context(self):
        master = self.asgi()
        for rid in (1, 2, 3):
            master.asgi(rid, "/task", query=b"tag=t%d" % rid)
        for rid in (1, 2, 3):
            response = master.collect(rid)
            self.assertEqual(response.body, b"corral-request None t%d" % rid, response.error)

    def test_streams_interleave(self):
        master = self.asgi()
        master.asgi(1, "/stream", query=b"n=5&size=1&sleep=0.05")
        master.asgi(2, "/stream", query=b"n=5&size=1&sleep=0.05")
        order = []
        done = set()
        while len(done) < 2:
            f = master.recv()
            order.append(f.id)
            if f.kind == END:
                done.add(f.id)
        # Both progressed before either finished.
        first_end = min(order.index(1, len(order) - 1 - order[::-1].index(1)),
                        len(order) - 1 - order[::-1].index(2))
        self.assertIn(1, order[:first_end])
        self.assertIn(2, order[:first_end])

    def test_duplicate_id_in_flight_is_a_protocol_error(self):
        master = self.asgi()
        master.asgi(1, "/forever")
        master.asgi(1, "/forever")
        self.assertEqual(master.wait_exit(), 70)


class HeartbeatTest(AsgiTestCase):
    def test_ping_answered_while_requests_wait_asynchronously(self):
        master = self.asgi()
        master.asgi(1, "/sleep", query=b"s=1")
        time.sleep(0.1)
        master.send(PING, 0, b"beat")
        started = time.monotonic()
        pong = master.recv(lambda f: f.kind == PONG)
        self.assertEqual(pong.payload, b"beat")
        self.assertLess(time.monotonic() - started, 0.5)

    def test_no_pong_while_the_loop_is_blocked_and_the_dump_shows_it(self):
        master = self.asgi()
        master.asgi(1, "/block", query=b"s=1.5")
        time.sleep(0.2)
        master.send(PING, 0, b"beat")
        with self.assertRaises(socket.timeout):
            master.recv(lambda f: f.kind == PONG, timeout=0.5)
        master.signal(master.hello.json()["dump_signal"])
        master.wait_output("in block")
        self.assertIn("asgi_scenarios.py", master.output)
        # Once unblocked, the PONG and the response come.
        self.assertEqual(master.recv(lambda f: f.kind == PONG, timeout=5).payload, b"beat")
        self.assertEqual(master.collect(1).body, b"unblocked")

    def test_steal_is_answered_with_an_empty_returned(self):
        master = self.asgi()
        master.asgi(1, "/sleep", query=b"s=0.3")
        master.steal()
        returned = master.recv(lambda f: f.kind == 0x18)
        self.assertEqual(returned.payload, b"")
        self.assertEqual(master.collect(1).status, "200 OK")

    def test_steal_answered_even_while_the_loop_is_blocked(self):
        master = self.asgi()
        master.asgi(1, "/block", query=b"s=1.5")
        time.sleep(0.2)
        started = time.monotonic()
        master.steal()
        returned = master.recv(lambda f: f.kind == 0x18)
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(returned.payload, b"")
        self.assertEqual(master.collect(1).body, b"unblocked")


class ExitTest(AsgiTestCase):
    def test_eof_lets_running_requests_finish(self):
        master = self.asgi()
        master.asgi(1, "/sleep", query=b"s=0.3&tag=last")
        time.sleep(0.05)
        master.data.shutdown(socket.SHUT_WR)
        self.assertEqual(master.collect(1).body, b"last")
        self.assertEqual(master.wait_exit(), 0)

    def test_sigterm_drains_then_exits_and_returns_later_requests(self):
        master = self.asgi()
        master.asgi(1, "/sleep", query=b"s=0.5&tag=drained")
        time.sleep(0.1)
        master.signal(signal.SIGTERM)
        time.sleep(0.1)
        master.asgi(2, "/")
        returned = master.recv(lambda f: f.kind == 0x18)
        self.assertEqual(struct.unpack("!I", returned.payload), (2,))
        self.assertEqual(master.collect(1).body, b"drained")
        self.assertEqual(master.wait_exit(), 0)

    def test_idle_sigterm_exits_at_once(self):
        master = self.asgi()
        master.signal(signal.SIGTERM)
        self.assertEqual(master.wait_exit(), 0)

    def test_second_sigterm_exits_at_once(self):
        master = self.asgi()
        master.asgi(1, "/block", query=b"s=5")
        time.sleep(0.2)
        started = time.monotonic()
        master.signal(signal.SIGTERM)
        time.sleep(0.1)
        master.signal(signal.SIGTERM)
        self.assertEqual(master.wait_exit(), 0)
        self.assertLess(time.monotonic() - started, 3.0)

    def test_drain_is_bounded_by_graceful_timeout(self):
        master = self.asgi(graceful=0.5)
        master.asgi(1, "/forever", query=b"tag=g")
        master.wait_output("started g")
        master.signal(signal.SIGTERM)
        response = master.collect(1)
        self.assertTrue(response.aborted)
        master.wait_output("cancelled g")
        self.assertEqual(master.wait_exit(), 0)
