"""The Flask example with two faults added, for the chaos benchmark:
/__crash kills its worker (os._exit), /__hang never answers. Everything else
is examples/flaskapp unchanged."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "flaskapp"))

from app import app as flask_app  # noqa: E402


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/__crash":
        os._exit(1)
    if path == "/__hang":
        time.sleep(3600)
    return flask_app(environ, start_response)
