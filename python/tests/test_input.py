"""wsgi.input: inline bodies and bodies pulled with READ/DATA."""

import hashlib
import io
import unittest

from corral._input import PulledInput

from .support import PING, PONG, READ, MiB, WorkerTestCase

SAMPLE = b"first line\nsecond\n\nfourth is longer than the others\nno newline at end"


class FakeSource:
    """Hands out a body in chunks of at most ``chunk`` bytes (however much
    is asked for), like a master answering READs."""

    def __init__(self, body, chunk):
        self.body = body
        self.chunk = chunk
        self.asked = []

    def __call__(self, size):
        self.asked.append(size)
        n = min(size, self.chunk)
        data, self.body = self.body[:n], self.body[n:]
        return data


def reference_and_pulled(body, chunk):
    return io.BytesIO(body), PulledInput(FakeSource(body, chunk))


class PulledInputTest(unittest.TestCase):
    """PulledInput must behave exactly like BytesIO over the same body,
    whatever the chunking."""

    CHUNKS = (1, 2, 3, 7, 16, 1000)

    def same(self, operation, body=SAMPLE):
        for chunk in self.CHUNKS:
            with self.subTest(chunk=chunk):
                expected, pulled = reference_and_pulled(body, chunk)
                self.assertEqual(operation(pulled), operation(expected))

    def test_read_all(self):
        self.same(lambda s: [s.read(), s.read()])
        self.same(lambda s: [s.read(None), s.read(-1)])

    def test_read_sizes(self):
        for n in (0, 1, 5, 11, 100):
            self.same(lambda s: [s.read(n) for _ in range(len(SAMPLE) // max(n, 1) + 2)])

    def test_readline(self):
        self.same(lambda s: [s.readline() for _ in range(8)])

    def test_readline_limited(self):
        for n in (0, 1, 4, 10, 11, 100):
            self.same(lambda s: [s.readline(n) for _ in range(30)])
        self.same(lambda s: [s.readline(None), s.readline(-1)])

    def test_readlines(self):
        self.same(lambda s: s.readlines())
        for hint in (-1, 0, 1, 12, 30):
            self.same(lambda s: [s.readlines(hint), s.readlines()])

    def test_iteration(self):
        self.same(list)
        self.same(list, body=b"")
        self.same(list, body=b"\n\n\n")
        self.same(list, body=b"no newline")

    def test_mixed(self):
        self.same(lambda s: [s.readline(), s.read(3), s.readline(2), s.read(1),
                             s.readlines(1), s.read(), s.readline(), s.read(4)])

    def test_empty_body(self):
        self.same(lambda s: [s.read(), s.read(3), s.readline(), s.readlines()],
                  body=b"")

    def test_inline_prefix(self):
        pulled = PulledInput(FakeSource(b"def\nghi", 2), b"abc")
        self.assertEqual(pulled.readline(), b"abcdef\n")
        self.assertEqual(pulled.read(), b"ghi")

    def test_asks_for_read_ahead_not_per_byte(self):
        source = FakeSource(b"x" * 100, 1000)
        pulled = PulledInput(source)
        pulled.read(1)
        pulled.read(1)
        self.assertEqual(len(source.asked), 1)
        self.assertGreaterEqual(source.asked[0], 64 * 1024)
        self.assertLessEqual(source.asked[0], MiB)

    def test_stops_asking_at_end_of_body(self):
        source = FakeSource(b"abc", 1000)
        pulled = PulledInput(source)
        self.assertEqual(pulled.read(), b"abc")
        self.assertEqual(pulled.read(), b"")
        self.assertEqual(pulled.readline(), b"")
        self.assertEqual(len(source.asked), 2)  # data, then the empty answer

    def test_long_line_across_many_chunks(self):
        body = b"y" * 50000 + b"\nrest"
        self.same(lambda s: [s.readline(), s.readline()], body=body)


class WorkerInputTest(WorkerTestCase):
    OPS = ("read", "read_none", "read_minus", "read_n", "readline", "readline_n",
           "readlines", "readlines_hint", "iter", "mixed")

    def run_ops(self, pull):
        master = self.serve()
        rid = 0
        for op in self.OPS:
            for n in (1, 5, 64):
                if n != 1 and not op.endswith("_n") and op != "readlines_hint":
                    continue
                rid += 1
                with self.subTest(op=op, n=n, pull=pull):
                    r = master.get(rid, "/read", query="op=%s&n=%d" % (op, n),
                                   method="POST", body=SAMPLE, pull=pull)
                    self.assertEqual(r.status, "200 OK", r.error)
                    got = [s.encode("latin-1") for s in r.json()]
                    self.assertEqual(got, expected_result(op, n, SAMPLE))

    def test_inline_body(self):
        self.run_ops(pull=False)

    def test_pulled_body(self):
        self.run_ops(pull=True)

    def test_multi_mebibyte_pulled_body(self):
        master = self.serve()
        body = (bytes(range(251)) * 30000)[: 5 * MiB + 12345]
        for rid, n in ((1, 0), (2, 1000), (3, 3 * MiB)):
            r = master.get(rid, "/read", query="op=digest&n=%d" % n, method="POST",
                           body=body, pull=True)
            self.assertEqual(r.json(), {"size": len(body),
                                        "sha256": hashlib.sha256(body).hexdigest()})
        self.assertTrue(all(1 <= size <= MiB for _, size in master.reads))

    def test_large_inline_body(self):
        master = self.serve()
        body = b"z" * (MiB - 1000)
        r = master.get(1, "/read", query="op=digest", method="POST", body=body)
        self.assertEqual(r.json()["size"], len(body))

    def test_one_read_outstanding_and_other_frames_meanwhile(self):
        master = self.serve()
        body = b"a" * 100 + b"\n" + b"b" * 50
        master.request(1, "/read", query="op=readline", method="POST", body=body,
                       pull=True)
        read = master.recv(answer_reads=False)
        self.assertEqual((read.kind, read.id), (READ, 1))
        # While the worker waits for DATA: a PING, a pipelined request.
        master.send(PING, 0, b"are you there")
        master.request(2, "/hello")
        pong = master.recv(answer_reads=False)
        self.assertEqual((pong.kind, pong.payload), (PONG, b"are you there"))
        master.assert_quiet(0.2)  # no second READ, request 2 not started
        master.answer_read(read)
        r1 = master.collect(1)
        self.assertEqual(r1.status, "200 OK")
        self.assertEqual(master.collect(2).body, b"Hello, world!")

    def test_environ_body_length_matches(self):
        master = self.serve("validated:app")
        r = master.get(1, "/", method="POST", body=b"x" * 10, pull=True)
        self.assertEqual(r.status, "200 OK", r.error)
        self.assertEqual(r.json()["body"], "x" * 10)


def expected_result(op, n, body):
    """What the scenarios app returns for ``op``, computed over BytesIO."""
    s = io.BytesIO(body)
    if op in ("read", "read_none"):
        return [s.read()]
    if op == "read_minus":
        return [s.read(-1), s.read(-1)]
    if op == "read_n":
        out = []
        while True:
            piece = s.read(n)
            out.append(piece)
            if not piece:
                return out
    if op in ("readline", "readline_n"):
        out = []
        while True:
            line = s.readline(n if op == "readline_n" else -1)
            out.append(line)
            if not line:
                return out
    if op == "readlines":
        return s.readlines()
    if op == "readlines_hint":
        return s.readlines(n) + [b"--"] + s.readlines()
    if op == "iter":
        return list(s)
    if op == "mixed":
        return [s.readline(), s.read(3), s.readline(2), s.read(), s.read(5), s.readline()]
    raise ValueError(op)

