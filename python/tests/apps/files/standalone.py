"""Loaded by path (``files/standalone.py``); imports a sibling module."""

import sibling


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"standalone " + sibling.WORD]


def other(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"other " + __name__.encode()]
