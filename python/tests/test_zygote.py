"""The zygote (corral --preload): FORK, FORKED, the forked worker's own
channels and HELLO, EXITED, and workers dying with the zygote."""

import json
import os
import signal
import socket
import struct
import time

from .support import HELLO, START, TIMEOUT, Master, WorkerTestCase, encode, environ_payload

BAN = 0x1B

FORK = 0x08
FORKED = 0x1C
EXITED = 0x1D


class Forked:
    """The master's ends of a forked worker's channels."""

    def __init__(self):
        self.data, self.child_data = socket.socketpair()
        self.control, self.child_control = socket.socketpair()
        self.out_r, self.out_w = os.pipe()
        self.data.settimeout(TIMEOUT)

    def child_fds(self):
        return [self.child_data.fileno(), self.child_control.fileno(), self.out_w, self.out_w]

    def close_child_ends(self):
        self.child_data.close()
        self.child_control.close()
        os.close(self.out_w)

    def recv_frame(self):
        head = b""
        while len(head) < 12:
            head += self.data.recv(12 - len(head))
        kind, flags, _, rid, length = struct.unpack("!BBHII", head)
        payload = b""
        while len(payload) < length:
            payload += self.data.recv(length - len(payload))
        return kind, rid, payload

    def close(self):
        self.data.close()
        self.control.close()
        os.close(self.out_r)


class ZygoteTest(WorkerTestCase):
    def fork(self, master, rid, worker_id):
        child = Forked()
        self.addCleanup(child.close)
        frame = encode(FORK, rid, json.dumps({"worker_id": worker_id}).encode())
        master.data.sendmsg([frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                       struct.pack("4i", *child.child_fds()))])
        child.close_child_ends()
        answer = master.recv()
        self.assertEqual((answer.kind, answer.id), (FORKED, rid))
        return child, answer.json()["pid"]

    def test_fork_serve_and_exit(self):
        master = self.start("hello:app", mode="zygote")
        self.assertEqual(master.hello.kind, HELLO)
        zygote = master.proc.pid
        child, pid = self.fork(master, 7, 3)
        self.assertNotEqual(pid, zygote)
        kind, _, payload = child.recv_frame()
        self.assertEqual(kind, HELLO)
        self.assertEqual(json.loads(payload)["pid"], pid)  # its own HELLO, on its own channel
        with open("/proc/%d/status" % pid) as f:
            self.assertIn("PPid:\t%d\n" % zygote, f.read())

        # It serves on the new channel.
        child.data.sendall(encode(0x02, 1, _environ_payload()))
        kind, rid, _ = child.recv_frame()
        self.assertEqual((kind, rid), (0x12, 1))  # START

        # EOF ends it; the zygote reports the exit.
        child.data.shutdown(socket.SHUT_WR)
        exited = master.recv()
        self.assertEqual(exited.kind, EXITED)
        self.assertEqual(exited.json(), {"pid": pid, "status": 0})

    def test_workers_die_with_the_zygote(self):
        master = self.start("hello:app", mode="zygote")
        child, pid = self.fork(master, 1, 1)
        child.recv_frame()  # HELLO
        master.proc.kill()
        master.proc.wait()
        deadline = time.monotonic() + TIMEOUT
        while os.path.exists("/proc/%d" % pid) and _state(pid) != "Z":
            self.assertLess(time.monotonic(), deadline, "worker %d outlived its zygote" % pid)
            time.sleep(0.01)

    def test_each_fork_gets_its_worker_id(self):
        master = self.start("scenarios:app", mode="zygote")
        pids = set()
        for wid in (1, 2):
            child, pid = self.fork(master, wid, wid)
            child.recv_frame()  # HELLO
            pids.add(pid)
            child.data.sendall(encode(0x02, 1, environ_payload(_pairs("/info"))))
            kind, _, payload = child.recv_frame()
            self.assertEqual(kind, START)
            self.assertEqual(_start_body(payload)["worker_id"], wid)
        self.assertEqual(len(pids), 2)

    def test_forked_worker_can_ban(self):
        # corral.ban() in a forked worker reaches the master over the
        # worker's own channel, as in a spawned one (test_ban).
        for threads in (1, 2):
            with self.subTest(threads=threads):
                master = self.start("scenarios:app", mode="zygote", threads=threads)
                child, _ = self.fork(master, 1, 1)
                self.assertEqual(child.recv_frame()[0], HELLO)
                query = "addr=192.0.2.7&seconds=30&reason=spam"
                child.data.sendall(encode(0x02, 1, environ_payload(_pairs("/ban", query))))
                frames = [child.recv_frame()]
                if frames[0][0] == BAN:
                    frames.append(child.recv_frame())
                kinds = [kind for kind, _, _ in frames]
                self.assertEqual(kinds, [BAN, START], frames)
                self.assertEqual(
                    json.loads(frames[0][2]),
                    {"addr": "192.0.2.7", "seconds": 30.0, "reason": "spam"},
                )
                self.assertEqual(_start_body(frames[1][2], raw=True), b"True")


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _pairs(path, query=""):
    return [("REQUEST_METHOD", "GET"), ("PATH_INFO", path), ("QUERY_STRING", query),
            ("SERVER_NAME", "x"), ("SERVER_PORT", "80"), ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REMOTE_ADDR", "127.0.0.1"), ("wsgi.url_scheme", "http")]


def _start_body(payload, raw=False):
    """The body inside a START frame that completes its request."""
    n = struct.unpack("!I", payload[:4])[0]
    body = payload[4 + n :]
    return body if raw else json.loads(body)


def _environ_payload():
    pairs = ["REQUEST_METHOD", "GET", "PATH_INFO", "/", "QUERY_STRING", "",
             "SERVER_NAME", "x", "SERVER_PORT", "80", "SERVER_PROTOCOL", "HTTP/1.1",
             "wsgi.url_scheme", "http"]
    env = "\0".join(pairs).encode("latin-1")
    return struct.pack("!I", len(env)) + env
