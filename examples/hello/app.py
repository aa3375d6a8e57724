"""The smallest useful WSGI app: the benchmark's "hello" workload.

It measures the server, not the application: one fixed 13-byte body with an
explicit Content-Length, so no server has to fall back to chunked encoding
or closing the connection.

    corral examples/hello/app.py
    gunicorn --chdir examples/hello app:app
"""

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


application = app


if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    make_server("127.0.0.1", 8000, app).serve_forever()
