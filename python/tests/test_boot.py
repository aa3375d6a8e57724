"""Boot: HELLO, BOOTFAIL, app specs, modes, the bootstrap's importer."""

import os
import signal
import socket
import struct
import sys
import time

from .support import (
    APPS_DIR, BOOTFAIL, HELLO, REQUEST, Master, WorkerTestCase, encode,
    environ_payload)

FILES_DIR = os.path.join(APPS_DIR, "files")


class HelloTest(WorkerTestCase):
    def test_hello_fields(self):
        master = self.serve("hello:app", threads=1)
        hello = master.hello.json()
        self.assertEqual(hello["protocol"], 1)
        self.assertEqual(hello["pid"], master.proc.pid)
        self.assertEqual(hello["python"], "%d.%d.%d" % sys.version_info[:3])
        self.assertEqual(hello["implementation"], sys.implementation.name)
        self.assertEqual(hello["threads"], 1)
        self.assertEqual(hello["app"], "hello:app")
        self.assertEqual(hello["dump_signal"], int(signal.SIGRTMIN) + 2)
        self.assertIsNone(hello["routes"])
        self.assertEqual(master.hello.id, 0)
        self.assertEqual(master.hello.flags, 0)

    def test_hello_reports_threads(self):
        master = self.serve("hello:app", threads=3)
        self.assertEqual(master.hello.json()["threads"], 3)

    def test_check_and_routes_modes_exit_after_hello(self):
        for mode in ("check", "routes"):
            with self.subTest(mode=mode):
                master = self.serve("hello:app", mode=mode)
                self.assertIsNone(master.hello.json()["routes"])
                self.assertEqual(master.wait_exit(), 0)

    def test_check_mode_bootfail_exits_1(self):
        master = self.start("no_such_module_xyz:app", mode="check")
        self.assertEqual(master.hello.kind, BOOTFAIL)
        self.assertEqual(master.wait_exit(), 1)

    def test_unknown_config_keys_are_ignored(self):
        master = self.serve("hello:app", config={"future_option": [1, 2]})
        self.assertEqual(master.get(1).body, b"Hello, world!")

    def test_dump_signal_dumps_all_threads_to_stderr(self):
        master = self.serve("hello:app")
        self.assertEqual(master.get(1).status, "200 OK")
        master.signal(master.hello.json()["dump_signal"])
        master.wait_output("most recent call first")
        # The worker lives on.
        self.assertEqual(master.get(2).status, "200 OK")


class BootFailTest(WorkerTestCase):
    def bootfail(self, app, **kwargs):
        master = self.start(app, **kwargs)
        self.assertEqual(master.hello.kind, BOOTFAIL, master.hello.payload)
        self.assertEqual(master.wait_exit(), 1)
        info = master.hello.json()
        self.assertIn("Traceback (most recent call last)", info["traceback"])
        return info

    def test_module_not_found(self):
        info = self.bootfail("no_such_module_xyz:app")
        self.assertEqual(
            info["error"], "ModuleNotFoundError: No module named 'no_such_module_xyz'")

    def test_app_importing_a_missing_module(self):
        info = self.bootfail("imports_missing")
        self.assertEqual(
            info["error"],
            "ModuleNotFoundError: No module named 'no_such_dependency_for_corral_tests'")
        self.assertIn("imports_missing.py", info["traceback"])

    def test_exception_during_import_shows_the_source_line(self):
        info = self.bootfail("broken_import:app")
        self.assertEqual(info["error"], "RuntimeError: database URL missing")
        self.assertIn('raise RuntimeError("database URL missing")', info["traceback"])

    def test_runtime_frames_show_their_source(self):
        # get_source of the in-memory importer lets tracebacks quote corral's
        # own lines too.
        info = self.bootfail("hello:missing")
        self.assertIn('File "<corral>/corral/_app.py"', info["traceback"])
        self.assertIn("raise AppImportError(", info["traceback"])

    def test_missing_attribute(self):
        info = self.bootfail("hello:missing")
        self.assertEqual(
            info["error"],
            "corral.AppImportError: failed to find attribute 'missing' in 'hello'")

    def test_missing_default_names(self):
        info = self.bootfail("factory")
        self.assertIn("failed to find 'app' or 'application'", info["error"])

    def test_not_callable(self):
        info = self.bootfail("not_callable")
        self.assertIn("not callable", info["error"])
        self.assertIn("int", info["error"])

    def test_factory_raising(self):
        info = self.bootfail("factory:broken_factory()")
        self.assertEqual(info["error"], "RuntimeError: factory exploded")
        self.assertIn('raise RuntimeError("factory exploded")', info["traceback"])

    def test_factory_returning_non_callable(self):
        info = self.bootfail("factory:returns_none()")
        self.assertIn("not callable", info["error"])

    def test_calling_a_non_callable(self):
        info = self.bootfail("factory:not_a_function()")
        self.assertIn("not a factory", info["error"])

    def test_non_literal_factory_argument(self):
        info = self.bootfail("factory:create_app(os.environ)")
        self.assertIn("must be Python literals", info["error"])

    def test_missing_file(self):
        info = self.bootfail("files/nothing_here.py")
        self.assertIn("application file not found", info["error"])

    def test_bad_chdir(self):
        info = self.bootfail("hello:app", chdir="/nonexistent/corral/dir")
        self.assertTrue(info["error"].startswith("FileNotFoundError"), info["error"])

    def test_wrong_protocol_version(self):
        info = self.bootfail("hello:app", config={"protocol": 99})
        self.assertIn("unsupported protocol version 99", info["error"])

    def test_invalid_threads(self):
        info = self.bootfail("hello:app", threads=0)
        self.assertIn("threads", info["error"])


class AppSpecTest(WorkerTestCase):
    def body(self, app, path="/", **kwargs):
        master = self.serve(app, **kwargs)
        response = master.get(1, path)
        self.assertEqual(response.status, "200 OK", response.error)
        return response.body

    def test_module_and_attribute(self):
        self.assertEqual(self.body("hello:app"), b"Hello, world!")

    def test_module_alone_finds_app(self):
        self.assertEqual(self.body("hello"), b"Hello, world!")

    def test_module_alone_finds_application(self):
        self.assertEqual(self.body("only_application"), b"application")

    def test_factory_without_arguments(self):
        master = self.serve("factory:create_app()")
        first = master.get(1).json()
        second = master.get(2).json()
        self.assertEqual(first, {"args": [], "kwargs": {}, "calls": 1})
        self.assertEqual(second["calls"], 1, "the factory is called once")

    def test_factory_with_literal_arguments(self):
        master = self.serve("factory:create_app('arg', 2, flag=True, items=[1, 'x'])")
        self.assertEqual(master.get(1).json(), {
            "args": ["arg", 2], "kwargs": {"flag": True, "items": [1, "x"]},
            "calls": 1})

    def test_dotted_attribute(self):
        self.assertEqual(self.body("nested:holder.wsgi"), b"nested")

    def test_file_path(self):
        self.assertEqual(
            self.body("files/standalone.py", pythonpath=(), chdir=APPS_DIR),
            b"standalone with sibling")

    def test_file_path_with_attribute(self):
        path = os.path.join(FILES_DIR, "standalone.py")
        self.assertEqual(self.body(path + ":other", pythonpath=()),
                         b"other standalone")

    def test_chdir_makes_the_directory_importable(self):
        self.assertEqual(self.body("standalone:app", pythonpath=(), chdir=FILES_DIR),
                         b"standalone with sibling")

    def test_relative_pythonpath_resolves_after_chdir(self):
        self.assertEqual(self.body("standalone", pythonpath=("files",), chdir=APPS_DIR),
                         b"standalone with sibling")

    def test_corral_is_importable_by_the_app(self):
        master = self.serve(worker_id=7)
        info = master.get(1, "/info").json()
        self.assertEqual(info["worker_id"], 7)
        self.assertEqual(info["version"], "0.1.0")
        self.assertEqual(info["corral_file"], "<corral>/corral/__init__.py")


class MalformedTest(WorkerTestCase):
    def test_unknown_frame_type_exits_70(self):
        master = self.serve("hello:app")
        master.data.sendall(encode(0x7F, 0, b""))
        self.assertEqual(master.wait_exit(), 70)
        self.assertIn("protocol error", master.output)

    def test_oversized_frame_exits_70(self):
        master = self.serve("hello:app")
        master.data.sendall(struct.pack("!BBHII", REQUEST, 0, 0, 1, (1 << 20) + 1))
        self.assertEqual(master.wait_exit(), 70)

    def test_request_id_zero_exits_70(self):
        master = self.serve("hello:app")
        master.data.sendall(encode(REQUEST, 0, environ_payload([("A", "b")])))
        self.assertEqual(master.wait_exit(), 70)

    def test_environ_length_past_payload_exits_70(self):
        master = self.serve("hello:app")
        master.data.sendall(encode(REQUEST, 1, struct.pack("!I", 100) + b"A\0b"))
        self.assertEqual(master.wait_exit(), 70)

    def test_odd_environ_strings_exit_70(self):
        master = self.serve("hello:app")
        text = b"REQUEST_METHOD\0GET\0PATH_INFO"
        master.data.sendall(encode(REQUEST, 1, struct.pack("!I", len(text)) + text))
        self.assertEqual(master.wait_exit(), 70)

    def test_wrong_frame_on_control_channel_exits_70(self):
        master = self.serve("hello:app")
        master.control.sendall(encode(0x07, 0, b""))
        self.assertEqual(master.wait_exit(), 70)

    def test_first_frame_not_boot_exits_70(self):
        master = self.start("hello:app", boot=False)
        master.data.sendall(encode(REQUEST, 1, environ_payload([("A", "b")])))
        self.assertEqual(master.wait_exit(), 70)

    def test_boot_without_the_package_exits_70(self):
        master = self.start("hello:app", boot=False)
        config = b'{"protocol": 1}'
        master.data.sendall(encode(0x01, 0, struct.pack("!I", len(config)) + config + b"not a zip"))
        self.assertEqual(master.wait_exit(), 70)

    def test_bootstrap_reads_exactly_the_boot_frame(self):
        # A REQUEST sent right behind BOOT (before HELLO) is still served:
        # the bootstrap did not swallow it.
        master = self.start("hello:app", boot=False)
        request = encode(REQUEST, 5, environ_payload(
            [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/"), ("QUERY_STRING", ""),
             ("SERVER_NAME", "x"), ("SERVER_PORT", "80"),
             ("SERVER_PROTOCOL", "HTTP/1.1")]))
        import json
        from .support import package_zip
        config = json.dumps(master.config).encode()
        master.data.sendall(
            encode(0x01, 0, struct.pack("!I", len(config)) + config + package_zip())
            + request)
        self.assertEqual(master.recv().kind, HELLO)
        self.assertEqual(master.collect(5).body, b"Hello, world!")

    def test_partial_frames_are_reassembled(self):
        master = self.serve("hello:app")
        raw = b"".join(
            encode(REQUEST, rid, environ_payload(
                [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/"), ("QUERY_STRING", ""),
                 ("SERVER_NAME", "x"), ("SERVER_PORT", "80"),
                 ("SERVER_PROTOCOL", "HTTP/1.1")]))
            for rid in (1, 2))
        for i in range(len(raw)):
            master.data.sendall(raw[i:i + 1])
            if i % 17 == 0:
                time.sleep(0.001)
        self.assertEqual(master.collect(1).body, b"Hello, world!")
        self.assertEqual(master.collect(2).body, b"Hello, world!")


class ImporterTest(WorkerTestCase):
    def test_eof_before_boot_exits(self):
        master = self.start("hello:app", boot=False)
        master.data.shutdown(socket.SHUT_WR)
        self.assertEqual(master.wait_exit(), 70)
