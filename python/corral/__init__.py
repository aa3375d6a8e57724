"""corral: the Python side of the corral WSGI server.

Applications may ``import corral`` for a few extras. Everything here works
outside corral too: the functions then report that no worker is running.
"""

__version__ = "0.1.0"
__all__ = ["AppImportError", "ClientDisconnected", "worker_id"]

# Set by the worker runtime at boot; None when the app runs elsewhere.
_worker_id = None


class AppImportError(Exception):
    """The app spec given to the worker does not lead to a callable."""


class ClientDisconnected(OSError):
    """The client went away: raised by ``wsgi.input`` reads and ``write()``
    once the master has cancelled the request, so the app stops early."""


def worker_id():
    """The 1-based id of the worker slot serving this process, or None when
    the app is not running under corral."""
    return _worker_id
