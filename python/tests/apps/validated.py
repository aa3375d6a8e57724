"""An app wrapped in wsgiref's validator, with its warnings made errors,
that reports its environ. Any PEP 3333 slip of the worker fails the request."""

import json
import warnings
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)


def _report(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    # validator allows read() only with one argument
    body = stream.read(length)
    rest = stream.read(1)
    report = {k: v for k, v in environ.items() if isinstance(v, str)}
    report["body"] = body.decode("latin-1")
    report["rest"] = rest.decode("latin-1")
    report["wsgi.version"] = list(environ["wsgi.version"])
    for key in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
                "wsgi.input_terminated"):
        report[key] = environ[key]
    report["has_file_wrapper"] = callable(environ.get("wsgi.file_wrapper"))
    start_response("200 OK", [("Content-Type", "application/json")])
    if environ["PATH_INFO"] == "/stream":
        return iter([b"[", json.dumps(report).encode(), b"]"])
    return [json.dumps(report).encode()]


app = validator(_report)
