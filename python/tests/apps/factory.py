"""App factories, called once by the worker with literal arguments."""

import json
import sys

calls = []


def create_app(*args, **kwargs):
    calls.append((args, kwargs))
    sys.stderr.write("factory called\n")

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"args": args, "kwargs": kwargs, "calls": len(calls)}).encode()]

    return app


def broken_factory():
    raise RuntimeError("factory exploded")


def returns_none():
    return None


not_a_function = 7
