"""A WSGI app that answers without Content-Type, which wsgiref's validator
would refuse: corral must pass the app's headers as they are, adding only
what HTTP framing needs."""

TEAPOT = b"I'm a teapot: short and stout.\n"


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/teapot":
        # A body and no header at all.
        start_response("418 I'm a teapot", [])
        return [TEAPOT]
    if path == "/status/418":
        # Like httpbin's /status/418: its headers replace the framework's
        # defaults, so the teapot goes out without a Content-Type.
        start_response("418 I'm a teapot", [
            ("x-more-info", "http://tools.ietf.org/html/rfc2324"),
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Credentials", "true"),
            ("Content-Length", str(len(TEAPOT))),
        ])
        return [TEAPOT]
    if path == "/stream":
        # A generator body: chunked to HTTP/1.1 clients.
        start_response("200 OK", [("X-Kind", "stream")])

        def gen():
            yield b"part one, "
            yield b"part two"
        return gen()
    if path == "/empty":
        start_response("200 OK", [("X-Kind", "empty")])
        return []
    start_response("404 Not Found", [])
    return [b"nothing here\n"]
