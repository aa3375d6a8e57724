"""start_response, write(), the result iterable, errors, file_wrapper."""

import os
import tempfile
import unittest

from corral._response import FileWrapper, build_head

from .support import (
    BODY, END, ERROR, FILE, LOG, START, START_END, MiB, WorkerTestCase)


class ResponseTest(WorkerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.shared = None

    def setUp(self):
        # One worker serves the whole class: also shows that it keeps
        # serving after errors.
        if type(self).shared is None or type(self).shared.proc.poll() is not None:
            from .support import Master
            type(self).shared = Master("scenarios:app")
            type(self).next_id = 1
        self.master = type(self).shared

    @classmethod
    def tearDownClass(cls):
        if cls.shared is not None:
            cls.shared.close()

    def get(self, path, **kwargs):
        rid = type(self).next_id
        type(self).next_id += 1
        return self.master.get(rid, path, **kwargs)

    # -- the list fast path

    def test_list_is_one_start_frame_with_end(self):
        r = self.get("/hello")
        self.assertEqual(r.kinds, [START])
        self.assertTrue(r.frames[0].flags & START_END)
        self.assertEqual(r.status, "200 OK")
        self.assertEqual(r.headers, [("Content-Type", "text/plain")])
        self.assertEqual(r.body, b"Hello, world!")

    def test_tuple_is_one_frame(self):
        r = self.get("/tuple")
        self.assertEqual(r.kinds, [START])
        self.assertEqual(r.body, b"Hello, tuple!")

    def test_empty_list(self):
        r = self.get("/empty")
        self.assertEqual(r.kinds, [START])
        self.assertEqual((r.status, r.headers, r.body), ("204 No Content", [], b""))

    def test_empty_generator_sends_headers_at_exhaustion(self):
        r = self.get("/empty_generator")
        self.assertEqual(r.kinds, [START])
        self.assertTrue(r.frames[0].flags & START_END)
        self.assertEqual(r.body, b"")

    def test_large_list_is_split_into_frames(self):
        size = 2 * MiB + MiB // 2 + 3
        r = self.get("/big", query="size=%d" % size)
        self.assertEqual(r.kinds[0], START)
        self.assertFalse(r.frames[0].flags & START_END)
        self.assertEqual(r.kinds[-1], END)
        self.assertEqual(set(r.kinds[1:-1]), {BODY})
        self.assertTrue(all(len(f.payload) <= MiB for f in r.frames))
        self.assertEqual(len(r.body), size)
        self.assertEqual(r.body[:512], bytes(range(256)) * 2)

    def test_list_that_just_fits_in_one_frame(self):
        head = len("200 OK\0Content-Type\0text/plain")
        size = MiB - 4 - head
        r = self.get("/big", query="size=%d" % size)
        self.assertEqual(r.kinds, [START])
        self.assertEqual(len(r.frames[0].payload), MiB)
        r = self.get("/big", query="size=%d" % (size + 1))
        self.assertEqual(r.kinds, [START, BODY, END])
        self.assertEqual(len(r.body), size + 1)

    # -- streaming

    def test_generator_streams_one_frame_per_chunk(self):
        r = self.get("/stream")
        self.assertEqual(r.kinds, [START, BODY, BODY, END])
        self.assertFalse(r.frames[0].flags & START_END)
        self.assertEqual([f.payload[-3:] for f in r.frames[:1]], [b"one"])
        self.assertEqual([f.payload for f in r.frames[1:3]], [b"two", b"three"])
        self.assertEqual(r.body, b"onetwothree")

    def test_generator_is_not_collected_before_sending(self):
        # The second chunk needs the request body, which this master only
        # sends after it has seen the first chunk.
        m = self.master
        rid = type(self).next_id
        type(self).next_id += 1
        m.request(rid, "/stream_then_read", method="POST", body=b"body!", pull=True)
        start = m.recv(lambda f: f.id == rid, answer_reads=False)
        self.assertEqual(start.kind, START)
        self.assertTrue(start.payload.endswith(b"first;"))
        read = m.recv(lambda f: f.id == rid, answer_reads=False)
        m.answer_read(read)
        rest = m.collect(rid)
        self.assertEqual(rest.body, b"body!")

    def test_large_generator_chunk_is_split(self):
        size = 3 * MiB + 7
        r = self.get("/big", query="size=%d&generator=1" % size)
        self.assertEqual(len(r.body), size)
        self.assertTrue(all(len(f.payload) <= MiB for f in r.frames))
        self.assertEqual(r.kinds[-1], END)

    # -- write()

    def test_write_callable(self):
        r = self.get("/write")
        self.assertEqual(r.kinds, [START, BODY, END])
        self.assertTrue(r.frames[0].payload.endswith(b"hello "))
        self.assertEqual(r.body, b"hello world")

    def test_empty_write_sends_headers(self):
        r = self.get("/write_empty")
        self.assertEqual(r.kinds, [START, END])
        self.assertEqual(r.status, "200 OK")
        self.master.wait_output("closed write_empty")

    # -- exc_info

    def test_exc_info_before_headers_replaces_the_response(self):
        r = self.get("/exc_info_before")
        self.assertEqual(r.status, "500 Internal Server Error")
        self.assertEqual(r.body, b"recovered")

    def test_start_response_twice_without_exc_info_is_an_error(self):
        r = self.get("/twice")
        self.assertEqual(r.kinds, [ERROR])
        self.assertIn("AssertionError", r.error["error"])
        self.assertIn("without exc_info", r.error["error"])

    def test_exc_info_after_headers_reraises(self):
        r = self.get("/exc_info_after")
        self.assertEqual(r.kinds, [START, ERROR])
        self.assertEqual(r.error["error"], "KeyError: 'late'")

    # -- errors

    def test_exception_from_the_app(self):
        r = self.get("/fail")
        self.assertEqual(r.kinds, [ERROR])
        self.assertEqual(r.error["error"], "ValueError: boom")
        self.assertIn('raise ValueError("boom")', r.error["traceback"])
        self.assertIn("scenarios.py", r.error["traceback"])
        # ... and the worker carries on.
        self.assertEqual(self.get("/hello").body, b"Hello, world!")

    def test_exception_during_iteration_after_start(self):
        r = self.get("/fail_in_iteration")
        self.assertEqual(r.kinds, [START, ERROR])
        self.assertEqual(r.error["error"], "RuntimeError: iteration failed")
        self.master.wait_output("closed fail_in_iteration")

    def test_close_called_on_success(self):
        r = self.get("/tracked", query="tag=ok-1")
        self.assertEqual(r.kinds, [START, BODY, END])
        self.master.wait_output("closed ok-1")

    def test_exception_in_close(self):
        r = self.get("/tracked", query="tag=closefail&close_fails=1")
        self.assertEqual(r.kinds, [START, BODY, ERROR])
        self.assertEqual(r.error["error"], "OSError: close failed")

    def test_start_response_not_called(self):
        r = self.get("/no_start_response")
        self.assertEqual(r.kinds, [ERROR])
        self.assertIn("start_response", r.error["error"])

    def test_str_chunk(self):
        r = self.get("/str_chunk")
        self.assertEqual(r.kinds, [ERROR])
        self.assertIn("must be bytes", r.error["error"])

    def test_none_result(self):
        r = self.get("/none_result")
        self.assertEqual(r.kinds, [ERROR])
        self.assertIn("TypeError", r.error["error"])

    def test_write_after_completion_is_an_app_error(self):
        # Not a stray BODY for a finished request, which the master would
        # take as a protocol violation.
        self.assertEqual(self.get("/stash").body, b"stashed")
        r = self.get("/use_stash", query="what=write")
        self.assertEqual(r.kinds, [ERROR])
        self.assertIn("after the response was complete", r.error["error"])

    def test_reading_a_finished_requests_pulled_body_is_an_app_error(self):
        r = self.get("/stash", method="POST", body=b"abc", pull=True)
        self.assertEqual(r.body, b"stashed")
        r = self.get("/use_stash", query="what=input")
        self.assertEqual(r.kinds, [ERROR])
        self.assertIn("after the response was complete", r.error["error"])

    # -- Content-Length

    def test_content_length_cuts_a_list(self):
        r = self.get("/content_length", query="cl=5&chunks=hello world")
        self.assertEqual(r.body, b"hello")
        self.assertEqual(r.kinds, [LOG, START])
        self.assertEqual(r.logs[0]["level"], "warning")
        self.assertIn("Content-Length", r.logs[0]["message"])

    def test_content_length_stops_a_generator(self):
        r = self.get("/content_length", query="cl=7&chunks=hello, world,!!&generator=1")
        self.assertEqual(r.body, b"hello w")
        self.assertEqual(r.kinds.count(LOG), 1)
        self.assertEqual(r.kinds[-1], END)
        self.master.wait_output("closed content_length")

    def test_exact_content_length_is_not_a_warning(self):
        r = self.get("/content_length", query="cl=10&chunks=hello,world&generator=1")
        self.assertEqual(r.body, b"helloworld")
        self.assertNotIn(LOG, r.kinds)

    # -- head validation

    def test_iterable_whose_first_chunk_fills_content_length_is_one_frame(self):
        # What Flask and Django return: an iterable, with Content-Length set.
        r = self.get("/content_length", query="cl=5&chunks=hello&generator=1&tag=whole-1")
        self.assertEqual(r.kinds, [START])
        self.assertTrue(r.frames[0].flags & START_END)
        self.assertEqual(r.body, b"hello")
        self.master.wait_output("closed whole-1")  # close() still called

    def test_iterable_shorter_than_content_length_streams(self):
        r = self.get("/content_length", query="cl=5&chunks=he,llo&generator=1")
        self.assertEqual(r.kinds, [START, BODY, END])
        self.assertEqual(r.body, b"hello")

    def test_close_failing_after_a_whole_response_is_only_logged(self):
        # The request is complete when close() runs: a frame for it now would
        # break the protocol, so the failure goes to the log.
        r = self.get("/content_length",
                     query="cl=2&chunks=ok&generator=1&tag=whole-2&close_fails=1")
        self.assertEqual(r.kinds, [START])
        self.assertEqual(r.body, b"ok")
        self.master.wait_output("close() of the response")
        self.assertEqual(self.get("/hello").body, b"Hello, world!")  # still serving

    def test_invalid_heads_are_errors(self):
        cases = {
            "kind=crlf": "CR, LF or NUL",
            "kind=lf": "CR, LF or NUL",
            "kind=nul": "CR, LF or NUL",
            "kind=unicode": "not latin-1",
            "kind=bytes": "header name must be a str",
            "kind=not_tuple": "tuple",
            "kind=cl": "invalid Content-Length",
            "kind=name&name=X Space": "invalid header name",
            "kind=name&name=X:Colon": "invalid header name",
            "kind=name&name=": "invalid header name",
            "kind=name&name=Connection": "hop-by-hop",
            "kind=name&name=keep-alive": "hop-by-hop",
            "kind=name&name=Transfer-Encoding": "hop-by-hop",
            "kind=name&name=Upgrade": "hop-by-hop",
            "kind=name&name=TE": "hop-by-hop",
            "kind=name&name=Trailer": "hop-by-hop",
            "kind=name&name=Proxy-Authenticate": "hop-by-hop",
            "kind=status&status=200OK": "invalid status",
            "kind=status&status=20 OK": "invalid status",
            "kind=status&status=abc Nope": "invalid status",
            "kind=status&status=200 OK\r\nX: y": "invalid status",
        }
        for query, message in cases.items():
            with self.subTest(query=query):
                r = self.get("/bad_head", query=query.replace(" ", "%20").replace("\r\n", "%0D%0A"))
                self.assertEqual(r.kinds, [ERROR])
                self.assertIn(message, r.error["error"])
                self.assertIn("Traceback", r.error["traceback"])
                self.assertNotIn(b"should not be sent", b"".join(f.payload for f in r.frames))

    # -- wsgi.file_wrapper

    def test_file_wrapper_passes_the_descriptor(self):
        data = os.urandom(300000)
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            r = self.get("/file", query="path=%s&offset=1000" % f.name)
        self.assertEqual(r.kinds, [START, FILE, END])
        self.assertFalse(r.frames[0].flags & START_END)
        offset_count = r.frames[1].payload
        self.assertEqual(offset_count, (1000).to_bytes(8, "big") + (-1).to_bytes(8, "big", signed=True))
        self.assertIsNotNone(r.frames[1].fd)
        self.assertEqual(r.body, data[1000:])

    def test_file_wrapper_respects_content_length(self):
        data = b"0123456789" * 10
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            r = self.get("/file", query="path=%s&offset=10&cl=25" % f.name)
        self.assertEqual(r.kinds, [LOG, START, FILE, END])
        self.assertEqual(r.body, data[10:35])

    def test_file_wrapper_over_a_non_file_is_iterated(self):
        r = self.get("/file_like")
        self.assertEqual(r.kinds[0], START)
        self.assertNotIn(FILE, r.kinds)
        self.assertEqual(r.kinds[-1], END)
        self.assertEqual(r.body, b"0123456789" * 3)


class BuildHeadTest(unittest.TestCase):
    """The validation cache must not let a bad head through on a second go."""

    def test_valid_head(self):
        head, length = build_head("200 OK", [("A", "1"), ("Content-Length", "12")])
        self.assertEqual(head, b"200 OK\0A\x001\0Content-Length\x0012")
        self.assertEqual(length, 12)

    def test_repeated_and_cached_names_still_checked(self):
        build_head("200 OK", [("X-Ok", "fine")])
        with self.assertRaises(ValueError):
            build_head("200 OK", [("X-Ok", "bad\r\nvalue")])

    def test_latin1_values_pass(self):
        head, _ = build_head("200 OK", [("X-Name", "caf\xe9")])
        self.assertEqual(head, b"200 OK\0X-Name\0caf\xe9")

    def test_empty_reason_is_allowed(self):
        self.assertEqual(build_head("200 ", [])[0], b"200 ")

    def test_conflicting_content_lengths(self):
        with self.assertRaisesRegex(ValueError, "conflicting"):
            build_head("200 OK", [("Content-Length", "1"), ("content-length", "2")])

    def test_headers_must_be_a_sequence_of_pairs(self):
        with self.assertRaises(TypeError):
            build_head("200 OK", {"A": "b"})
        with self.assertRaises(TypeError):
            build_head("200 OK", ["ab"])

    def test_file_wrapper_iterates_in_blocks(self):
        import io

        wrapper = FileWrapper(io.BytesIO(b"abcdefg"), 3)
        self.assertEqual(list(wrapper), [b"abc", b"def", b"g"])
        self.assertIsNone(wrapper.regular_file())
