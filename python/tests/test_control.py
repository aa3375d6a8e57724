"""CANCEL, PAUSE/RESUME, STEAL, PING, exit on EOF and SIGTERM, threads."""

import signal
import socket
import struct
import threading
import time

from .support import (
    BODY, CANCEL, DATA, END, PAUSE, PING, PONG, READ, RESUME, RETURNED, START,
    WorkerTestCase, encode)


def returned_ids(frame):
    assert frame.kind == RETURNED and frame.id == 0, frame
    return list(struct.unpack("!%dI" % (len(frame.payload) // 4), frame.payload))


class CancelTest(WorkerTestCase):
    threads = 1

    def test_cancel_stops_an_infinite_generator(self):
        master = self.serve(threads=self.threads)
        master.request(1, "/infinite", query="tag=endless")
        self.assertEqual(master.recv().kind, START)
        for _ in range(5):
            self.assertEqual(master.recv().kind, BODY)
        master.send(CANCEL, 1)
        while True:
            f = master.recv(lambda f: f.id == 1)
            if f.kind != BODY:
                break
        self.assertEqual((f.kind, f.flags), (END, 1))
        master.wait_output("closed endless")
        self.assertEqual(master.get(2).body, b"Hello, world!")

    def test_cancel_of_a_request_not_started(self):
        master = self.serve(threads=self.threads)
        master.request(1, "/slow", query="seconds=0.4&tag=A")
        for rid in range(2, 1 + self.threads):
            master.request(rid, "/slow", query="seconds=0.4&tag=busy%d" % rid)
        master.wait_output("started A")
        for rid in range(2, 1 + self.threads):
            master.wait_output("started busy%d" % rid)
        # Both in one write, so the worker cannot start 9 before it has read
        # the CANCEL (it starts what it holds without reading first).
        master.data.sendall(
            master.request_frame(9, "/started", query="tag=B") + encode(CANCEL, 9))
        cancelled = master.collect(9)
        self.assertEqual(cancelled.kinds, [END])
        self.assertTrue(cancelled.aborted)
        self.assertEqual(master.collect(1).body, b"slow A")
        self.assertEqual(master.get(10).body, b"Hello, world!")
        self.assertNotIn("started B", master.output)

    def test_cancel_after_completion_is_ignored(self):
        master = self.serve(threads=self.threads)
        self.assertEqual(master.get(1).kinds, [START])
        master.send(CANCEL, 1)
        # The id is free again: a new request with it is served normally.
        self.assertEqual(master.get(1).body, b"Hello, world!")
        master.assert_quiet(0.1)

    def test_cancel_while_the_body_is_being_pulled(self):
        master = self.serve(threads=self.threads)
        master.request(1, "/read", query="op=read", method="POST", body=b"abc",
                       pull=True)
        read = master.recv(answer_reads=False)
        self.assertEqual(read.kind, READ)
        master.send(CANCEL, 1)
        r = master.collect(1)
        self.assertEqual(r.kinds, [END])
        self.assertTrue(r.aborted)
        # A late answer to the abandoned READ is dropped, even when the id
        # was already reused.
        master.send(DATA, 1, b"late")
        self.assertEqual(master.get(1).body, b"Hello, world!")


class ThreadedCancelTest(CancelTest):
    threads = 2


class PauseTest(WorkerTestCase):
    threads = 1

    def test_pause_holds_body_frames_until_resume(self):
        master = self.serve(threads=self.threads)
        master.request(1, "/many", query="count=40&delay=0.01")
        self.assertEqual(master.recv().kind, START)
        master.send(PAUSE, 1)
        # Frames already on their way may still come, then nothing.
        seen = []
        while True:
            try:
                seen.append(master.recv(timeout=0.3))
            except socket.timeout:
                break
        self.assertTrue(all(f.kind == BODY for f in seen), seen)
        self.assertLess(len(seen), 38)
        # A paused worker still answers PING.
        master.send(PING, 0, b"p")
        self.assertEqual(master.recv().kind, PONG)
        master.send(RESUME, 1)
        rest = master.collect(1)
        body = b"".join(f.payload for f in seen) + rest.body
        self.assertEqual(rest.kinds[-1], END)
        self.assertEqual(body, b"".join(b"%04d;" % i for i in range(1, 40)))

    def test_cancel_while_paused(self):
        master = self.serve(threads=self.threads)
        master.request(1, "/infinite", query="tag=paused")
        self.assertEqual(master.recv().kind, START)
        master.send(PAUSE, 1)
        master.send(CANCEL, 1)
        while True:
            f = master.recv(lambda f: f.id == 1)
            if f.kind != BODY:
                break
        self.assertEqual((f.kind, f.flags), (END, 1))
        master.wait_output("closed paused")


class ThreadedPauseTest(PauseTest):
    threads = 2


class StealTest(WorkerTestCase):
    def test_steal_returns_pipelined_requests_behind_a_slow_one(self):
        master = self.serve()
        master.request(1, "/slow", query="seconds=1&tag=A")
        master.request(2, "/started", query="tag=B")
        master.request(3, "/started", query="tag=C")
        master.wait_output("started A")
        master.steal()
        f = master.recv()
        # The answer comes while request 1 still runs.
        self.assertEqual(returned_ids(f), [2, 3])
        self.assertEqual(master.collect(1).body, b"slow A")
        self.assertEqual(master.get(4).body, b"Hello, world!")
        master.assert_quiet(0.1)
        self.assertNotIn("started B", master.output)
        self.assertNotIn("started C", master.output)

    def test_steal_with_nothing_to_return(self):
        master = self.serve()
        self.assertEqual(master.get(1).kinds, [START])
        master.steal()
        self.assertEqual(returned_ids(master.recv()), [])

    def test_steal_while_streaming(self):
        master = self.serve()
        master.request(1, "/many", query="count=30&delay=0.02")
        master.request(2, "/started", query="tag=behind")
        self.assertEqual(master.recv().kind, START)
        master.steal()
        self.assertEqual(returned_ids(master.recv(lambda f: f.kind == RETURNED)), [2])
        self.assertEqual(master.collect(1).kinds[-1], END)
        self.assertNotIn("started behind", master.output)

    def test_steal_while_waiting_for_body_data(self):
        # The main thread sleeps in poll for DATA; the control thread may
        # consume that DATA while draining, and must wake it up.
        for threads in (1, 2):
            for attempt in range(5):
                with self.subTest(threads=threads, attempt=attempt):
                    master = self.serve(threads=threads)
                    # Request 1 sleeps after reading, so 7 and 8 cannot
                    # start before STEAL is handled.
                    master.request(1, "/read", query="op=read&sleep=0.3",
                                   method="POST", body=b"pulled", pull=True)
                    busy = list(range(2, 1 + threads))
                    for rid in busy:
                        master.request(rid, "/slow", query="seconds=0.3&tag=X%d" % rid)
                    master.request(7, "/started", query="tag=B")
                    master.request(8, "/started", query="tag=C")
                    read = master.recv(lambda f: f.kind == READ, answer_reads=False)
                    for rid in busy:
                        master.wait_output("started X%d" % rid)
                    if attempt % 2:
                        master.answer_read(read)
                        master.steal()
                    else:
                        master.steal()
                        time.sleep(0.05)
                        master.answer_read(read)
                    ids = returned_ids(master.recv(lambda f: f.kind == RETURNED))
                    self.assertEqual(ids, [7, 8])
                    self.assertEqual(master.collect(1).json(), ["pulled"])
                    master.close()

    def test_threaded_steal(self):
        master = self.serve(threads=2)
        master.request(1, "/slow", query="seconds=1&tag=A")
        master.request(2, "/slow", query="seconds=1&tag=B")
        master.request(3, "/started", query="tag=C")
        master.request(4, "/started", query="tag=D")
        master.wait_output("started A")
        master.wait_output("started B")
        master.steal()
        self.assertEqual(returned_ids(master.recv()), [3, 4])
        self.assertEqual(master.collect(1).body, b"slow A")
        self.assertEqual(master.collect(2).body, b"slow B")
        master.assert_quiet(0.1)
        self.assertNotIn("started C", master.output)


class PingTest(WorkerTestCase):
    def test_ping_pong(self):
        for threads in (1, 3):
            with self.subTest(threads=threads):
                master = self.serve(threads=threads)
                master.send(PING, 0, b"x" * 64)
                pong = master.recv()
                self.assertEqual((pong.kind, pong.id, pong.payload), (PONG, 0, b"x" * 64))
                master.send(PING, 0, b"")
                self.assertEqual(master.recv().payload, b"")


class ExitTest(WorkerTestCase):
    def test_eof_when_idle(self):
        for threads in (1, 2):
            with self.subTest(threads=threads):
                master = self.serve(threads=threads)
                self.assertEqual(master.get(1).kinds, [START])
                master.data.close()
                self.assertEqual(master.wait_exit(), 0)
                self.assertIn("atexit ran", master.output)

    def test_eof_finishes_the_started_request(self):
        for threads in (1, 2):
            with self.subTest(threads=threads):
                master = self.serve(threads=threads)
                master.request(1, "/slow", query="seconds=0.3&tag=A")
                master.wait_output("started A")
                master.data.shutdown(socket.SHUT_WR)
                self.assertEqual(master.collect(1).body, b"slow A")
                self.assertEqual(master.wait_exit(), 0)

    def test_eof_returns_requests_not_started(self):
        # The worker sees EOF while it streams request 1 (it looks at the
        # socket between chunks), so it does not start request 2.
        master = self.serve()
        master.request(1, "/many", query="count=10&delay=0.03")
        master.request(2, "/started", query="tag=B")
        self.assertEqual(master.recv().kind, START)
        master.data.shutdown(socket.SHUT_WR)
        self.assertEqual(master.collect(1).kinds[-1], END)
        self.assertEqual(returned_ids(master.recv()), [2])
        self.assertEqual(master.wait_exit(), 0)
        self.assertNotIn("started B", master.output)

    def test_sigterm_when_idle(self):
        for threads in (1, 2):
            with self.subTest(threads=threads):
                master = self.serve(threads=threads)
                self.assertEqual(master.get(1).kinds, [START])
                began = time.monotonic()
                master.signal(signal.SIGTERM)
                self.assertEqual(master.wait_exit(), 0)
                self.assertLess(time.monotonic() - began, 0.9)
                self.assertIn("atexit ran", master.output)

    def test_sigterm_right_after_hello(self):
        # The master may stop a worker the moment it reads HELLO (a reload
        # or shutdown racing the start): the handler is in place by then.
        for threads in (1, 2):
            with self.subTest(threads=threads):
                master = self.serve(threads=threads)
                master.signal(signal.SIGTERM)
                self.assertEqual(master.wait_exit(), 0)

    def test_sigterm_finishes_the_running_request_first(self):
        for threads in (1, 2):
            with self.subTest(threads=threads):
                master = self.serve(threads=threads)
                master.request(1, "/slow", query="seconds=0.4&tag=A")
                for rid in range(2, 1 + threads):
                    master.request(rid, "/slow", query="seconds=0.4&tag=X%d" % rid)
                master.request(9, "/started", query="tag=B")
                master.wait_output("started A")
                for rid in range(2, 1 + threads):
                    master.wait_output("started X%d" % rid)
                master.signal(signal.SIGTERM)
                self.assertEqual(master.collect(1).body, b"slow A")
                self.assertEqual(returned_ids(master.recv(lambda f: f.kind == RETURNED)), [9])
                self.assertEqual(master.wait_exit(), 0)
                self.assertNotIn("started B", master.output)
                self.assertIn("atexit ran", master.output)

    def test_second_sigterm_stops_a_hung_request(self):
        for threads in (1, 2):
            with self.subTest(threads=threads):
                master = self.serve(threads=threads)
                master.request(1, "/slow", query="seconds=30&tag=H")
                master.wait_output("started H")
                master.signal(signal.SIGTERM)
                time.sleep(0.1)
                self.assertIsNone(master.proc.poll())  # the first only flags
                began = time.monotonic()
                master.signal(signal.SIGTERM)
                self.assertEqual(master.wait_exit(), 0)
                self.assertLess(time.monotonic() - began, 5)
                self.assertIn("atexit ran", master.output)

    def test_sigint_is_ignored(self):
        master = self.serve()
        master.signal(signal.SIGINT)
        time.sleep(0.1)
        self.assertEqual(master.get(1).body, b"Hello, world!")
        self.assertIsNone(master.proc.poll())


class ThreadedTest(WorkerTestCase):
    def test_two_slow_requests_overlap(self):
        master = self.serve(threads=2)
        began = time.monotonic()
        master.request(1, "/slow", query="seconds=0.6&tag=A")
        master.request(2, "/slow", query="seconds=0.6&tag=B")
        self.assertEqual(master.collect(1).body, b"slow A")
        self.assertEqual(master.collect(2).body, b"slow B")
        self.assertLess(time.monotonic() - began, 1.1)

    def test_single_thread_runs_one_at_a_time(self):
        master = self.serve(threads=1)
        began = time.monotonic()
        master.request(1, "/slow", query="seconds=0.3&tag=A")
        master.request(2, "/slow", query="seconds=0.3&tag=B")
        master.collect(1)
        master.collect(2)
        self.assertGreaterEqual(time.monotonic() - began, 0.6)

    def test_requests_run_on_app_threads(self):
        master = self.serve(threads=3)
        names = {master.get(rid, "/info").json()["thread"] for rid in range(1, 10)}
        self.assertTrue(names)
        self.assertTrue(all(name.startswith("corral-app-") for name in names), names)

    def test_concurrent_pulled_bodies(self):
        master = self.serve(threads=3)
        bodies = {rid: bytes([rid]) * (300000 + rid) for rid in (1, 2, 3)}
        for rid, body in bodies.items():
            master.request(rid, "/read", query="op=digest&n=1000", method="POST",
                           body=body, pull=True)
        for rid, body in bodies.items():
            self.assertEqual(master.collect(rid).json()["size"], len(body))

    def test_pipelined_burst(self):
        # Far more than one receive buffer of requests at once, read while
        # they are still being sent.
        for threads in (1, 4):
            with self.subTest(threads=threads):
                master = self.serve(threads=threads)
                count = 3000
                sender = threading.Thread(target=lambda: [
                    master.request(rid, "/hello", query="pad=" + "p" * (rid % 700))
                    for rid in range(1, count + 1)])
                sender.start()
                for rid in range(1, count + 1):
                    self.assertEqual(master.collect(rid).body, b"Hello, world!")
                sender.join()
