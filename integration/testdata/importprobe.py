"""Says which Python and which corral module the worker runs: the wheel
test checks that a corral installed with pip runs its own environment's
interpreter and that `import corral` in the app is the runtime corral
sends at boot, not the copy pip installed."""

import json
import sys

import corral


def app(environ, start_response):
    body = json.dumps(
        {
            "prefix": sys.prefix,
            "corral_file": corral.__file__,
            "worker_id": corral.worker_id(),
            "version": corral.__version__,
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
