"""Flask apps with more routes than HELLO can describe (test_routes.py):
make(2000) fits once rules and endpoints are left out, make(3500) does not
fit at all."""

from flask import Flask

LONG = "/" + "a-long-path-segment" * 10


def ok(**kwargs):
    return "ok"


def make(count):
    app = Flask(__name__)
    for i in range(count):
        app.add_url_rule("%s/%d/<int:x>" % (LONG, i), "endpoint_%d" % i, ok)
    return app
