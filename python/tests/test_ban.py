"""corral.ban(): the BAN frame (docs/PROTOCOL.md) and its checks."""

import json
import os
import subprocess
import sys

from .support import PYTHON_DIR, START, WorkerTestCase

BAN = 0x1B


class BanTest(WorkerTestCase):
    def test_ban_sends_a_ban_frame_before_the_response(self):
        master = self.serve()
        master.request(1, "/ban", query="addr=192.0.2.1&seconds=90&reason=spam")
        frame = master.recv()
        self.assertEqual((frame.kind, frame.id, frame.flags), (BAN, 0, 0))
        self.assertEqual(
            json.loads(frame.payload),
            {"addr": "192.0.2.1", "seconds": 90.0, "reason": "spam"},
        )
        response = master.collect(1)
        self.assertEqual(response.kinds, [START])
        self.assertEqual(response.body, b"True")

    def test_ipv6_is_normalised(self):
        master = self.serve()
        master.request(1, "/ban", query="addr=2001:DB8:0::1&seconds=1")
        self.assertEqual(json.loads(master.recv().payload)["addr"], "2001:db8::1")

    def test_bad_arguments_raise_and_send_nothing(self):
        master = self.serve()
        for query in ("addr=not-an-ip", "addr=192.0.2.1&seconds=0", "addr=192.0.2.1&seconds=-5",
                      "addr=192.0.2.1&seconds=inf"):
            response = master.get(1, "/ban", query=query)
            self.assertEqual(response.kinds, [START], query)
            self.assertTrue(response.body.startswith(b"ValueError"), (query, response.body))


class OutsideCorralTest(WorkerTestCase):
    def test_ban_outside_corral_returns_false(self):
        code = "import corral; print(corral.ban('192.0.2.1', 5))"
        out = subprocess.run([sys.executable, "-c", code], cwd=PYTHON_DIR,
                             capture_output=True, text=True, check=True,
                             env=dict(os.environ, PYTHONPATH=PYTHON_DIR))
        self.assertEqual(out.stdout.strip(), "False")

    def test_ban_before_serving_returns_false(self):
        # Until the worker serves there is no channel to the master, even
        # once the runtime's own modules (corral._channel among them) are
        # imported, as they are while a worker loads the app.
        code = "import corral, corral._channel; print(corral.ban('192.0.2.1', 5))"
        out = subprocess.run([sys.executable, "-c", code], cwd=PYTHON_DIR,
                             capture_output=True, text=True, check=True,
                             env=dict(os.environ, PYTHONPATH=PYTHON_DIR))
        self.assertEqual(out.stdout.strip(), "False")
