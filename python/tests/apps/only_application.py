"""Found as ``only_application``: there is no ``app``, only ``application``."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"application"]
