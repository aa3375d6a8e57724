"""The app of `bench/run memory`: the hello app plus a slow route.

- GET /sleep?s=SECONDS: sleeps that long (600 s by default), then answers
  like GET /. With more connections than workers, requests to it wait in
  the server's queue: what queued connections cost the server.
- anything else: 200 with the 13-byte body "Hello, World!" and an explicit
  Content-Length, as examples/hello.
"""

import time
from urllib.parse import parse_qs

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/sleep":
        seconds = parse_qs(environ.get("QUERY_STRING", "")).get("s", ["600"])[0]
        time.sleep(float(seconds))
    start_response("200 OK", HEADERS)
    return [BODY]
