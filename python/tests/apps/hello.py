"""The smallest app: found as ``hello`` (attribute ``app``)."""


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]
