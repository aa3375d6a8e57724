"""corral: the Python side of the corral server (WSGI and ASGI apps).

Applications may ``import corral`` for a few extras. Everything here works
outside corral too: the functions then report that no worker is running.
"""

__version__ = "0.1.0"
__all__ = ["AppImportError", "ClientDisconnected", "ban", "worker_id"]

# Set by the worker runtime at boot; None when the app runs elsewhere.
_worker_id = None
# The worker's channel to the master (its send(bytes) method), set when the
# worker starts serving. Not named after the corral._channel module: importing
# that module sets the package attribute of the same name.
_master = None


class AppImportError(Exception):
    """The app spec given to the worker does not lead to a callable."""


class ClientDisconnected(OSError):
    """The client went away: raised by ``wsgi.input`` reads and ``write()``
    once the master has cancelled the request, so the app stops early; for
    an ASGI app, by ``send()`` after the client disconnected or the
    WebSocket closed (ASGI spec 2.4)."""


def worker_id():
    """The 1-based id of the worker slot serving this process, or None when
    the app is not running under corral."""
    return _worker_id


def ban(addr, seconds, reason=""):
    """Ask corral to ban the client ``addr`` (an IP address, as in
    ``environ["REMOTE_ADDR"]``) for ``seconds``: corral answers its
    requests with 403 from then on, without running the app. ``reason``
    goes to corral's log and ``corral bans list``.

    Returns True when the request went to corral, False when the app is not
    running under corral. Raises ValueError for an address that is not an
    IP address or a duration that is not positive. Allow-listed clients
    are never banned (corral logs that it ignored the request).
    """
    import ipaddress
    import json

    addr = str(ipaddress.ip_address(str(addr).strip()))
    seconds = float(seconds)
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError("seconds must be a positive number, not %r" % (seconds,))
    chan = _master
    if chan is None:
        return False
    from . import _proto

    payload = json.dumps(
        {"addr": addr, "seconds": seconds, "reason": str(reason)[:1000]}
    ).encode("utf-8")
    chan.send(_proto.frame(_proto.BAN, 0, payload))
    return True
