"""The environ: checked by wsgiref's validator in a real worker."""

from .support import START, WorkerTestCase


class ValidatedEnvironTest(WorkerTestCase):
    def check_requests(self, master):
        cases = [
            dict(path="/", query=""),
            dict(path="/a/b%20c", query="x=1&y=%C3%A9"),
            dict(path="/stream", query="q"),
            dict(path="/", method="POST", body=b"inline body"),
            dict(path="/", method="POST", body=b"pulled body", pull=True),
            dict(path="/", method="PUT", body=b"", headers=[("X-Custom", "v\xe9")]),
            dict(path="/", method="HEAD"),
        ]
        reports = []
        for rid, case in enumerate(cases, 1):
            with self.subTest(case=case):
                r = master.get(rid, **case)
                self.assertEqual(r.status, "200 OK", r.error and r.error["traceback"])
                report = r.json()[0] if case["path"] == "/stream" else r.json()
                self.assertEqual(report["REQUEST_METHOD"], case.get("method", "GET"))
                self.assertEqual(report["PATH_INFO"], case["path"])
                self.assertEqual(report["QUERY_STRING"], case.get("query", ""))
                self.assertEqual(report["body"], case.get("body", b"").decode("latin-1"))
                self.assertEqual(report["rest"], "")
                reports.append(report)
        return reports

    def test_single_thread_environ(self):
        master = self.serve("validated:app", multiprocess=True)
        for report in self.check_requests(master):
            self.assertEqual(report["wsgi.version"], [1, 0])
            self.assertIs(report["wsgi.multithread"], False)
            self.assertIs(report["wsgi.multiprocess"], True)
            self.assertIs(report["wsgi.run_once"], False)
            self.assertIs(report["wsgi.input_terminated"], True)
            self.assertIs(report["has_file_wrapper"], True)
            self.assertEqual(report["wsgi.url_scheme"], "http")
            self.assertEqual(report["SERVER_SOFTWARE"], "corral/0.1.0")
            self.assertEqual(report["SCRIPT_NAME"], "")

    def test_threaded_environ(self):
        master = self.serve("validated:app", threads=2, multiprocess=False)
        for report in self.check_requests(master):
            self.assertIs(report["wsgi.multithread"], True)
            self.assertIs(report["wsgi.multiprocess"], False)

    def test_http_headers_and_content_keys(self):
        master = self.serve("validated:app")
        r = master.get(1, "/", method="POST", body=b"{}",
                       headers=[("X-Forwarded-For", "10.0.0.1"), ("Accept", "*/*")])
        report = r.json()
        self.assertEqual(report["HTTP_X_FORWARDED_FOR"], "10.0.0.1")
        self.assertEqual(report["HTTP_ACCEPT"], "*/*")
        self.assertEqual(report["CONTENT_LENGTH"], "2")
        self.assertEqual(report["CONTENT_TYPE"], "application/octet-stream")

    def test_latin1_values_arrive_as_native_strings(self):
        master = self.serve("validated:app")
        r = master.get(1, "/caf\xe9", headers=[("X-Bytes", "\xff\x80")])
        report = r.json()
        self.assertEqual(report["PATH_INFO"], "/caf\xe9")
        self.assertEqual(report["HTTP_X_BYTES"], "\xff\x80")


class EnvironIsolationTest(WorkerTestCase):
    def test_changes_do_not_leak_between_requests(self):
        master = self.serve()
        self.assertEqual(master.get(1, "/leak").body, b"ok")
        info = master.get(2, "/info").json()
        self.assertIsNone(info["leak"])

    def test_errors_is_stderr_and_constants_come_from_config(self):
        master = self.serve(environ={"SERVER_SOFTWARE": "test-server/9", "SCRIPT_NAME": ""})
        info = master.get(1, "/info").json()
        self.assertTrue(info["errors_is_stderr"])
        self.assertEqual(info["server_software"], "test-server/9")

    def test_channel_is_not_inherited_by_app_subprocesses(self):
        master = self.serve()
        self.assertEqual(master.get(1, "/inheritable").json(), [False, False])

    def test_stdout_is_line_buffered(self):
        # The master logs output line by line, and a print() must not sit in
        # a buffer until the worker exits.
        master = self.serve()
        self.assertEqual(master.get(1, "/print", query="tag=line").kinds, [START])
        master.wait_output("printed line\n", timeout=5)

