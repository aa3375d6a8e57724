"""Checking what the app passes to ``start_response``, and ``wsgi.file_wrapper``.

The head travels to the master as ``status\\0name\\0value...`` in latin-1,
so a NUL, CR or LF in any part would let the app smuggle headers; such
input is refused here (PEP 3333 leaves it to the server).
"""

import io
import os
import re
import stat

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_STATUS = re.compile(r"[0-9]{3} [^\r\n\x00]*").fullmatch
_FORBIDDEN = re.compile(r"[\r\n\x00]").search

# PEP 3333: hop-by-hop headers belong to the server ("trailers" is how
# wsgiref spells the Trailer header; both are refused).
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "te", "trailer", "trailers",
     "transfer-encoding", "upgrade")
)

# Names and statuses already found valid. Apps use a handful of each, so
# the hot path is a dict lookup instead of a regex per header; the caches
# are bounded for apps that make up header names.
_CACHE_LIMIT = 1024
_PLAIN, _CONTENT_LENGTH = 0, 1
_known_names = {}
_known_statuses = set()


def build_head(status, headers):
    """Validate ``start_response`` arguments.

    Returns ``(head, content_length)``: the encoded START head and the
    app's Content-Length as an int, or None. Raises TypeError or ValueError
    naming the offending part.
    """
    try:
        return _build_fast(status, headers)
    except Exception:
        pass
    # Something is wrong: find it and say what.
    _validate(status, headers)
    return _build_fast(status, headers)


def _build_fast(status, headers):
    if status not in _known_statuses:
        _check_status(status)
    parts = [status]
    append = parts.append
    length = None
    names = _known_names
    if type(headers) is not list and type(headers) is not tuple:
        raise TypeError
    for item in headers:
        if type(item) is not tuple and type(item) is not list:
            raise TypeError
        name, value = item
        kind = names.get(name)
        if kind is None:
            kind = _check_name(name)
        if kind:
            length = _content_length(value, length)
        append(name)
        append(value)
    text = "\0".join(parts)
    # One scan of the joined head checks every value at once.
    if "\r" in text or "\n" in text or text.count("\0") != len(parts) - 1:
        raise ValueError("forbidden character in a header value")
    return text.encode("latin-1"), length


def _check_status(status):
    if type(status) is not str:
        raise TypeError("status must be a str, not %s" % type(status).__name__)
    if not _STATUS(status):
        raise ValueError(
            "invalid status %r: expected three digits, a space and a reason"
            % (status,)
        )
    try:
        status.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("status %r is not latin-1" % (status,)) from None
    if len(_known_statuses) < _CACHE_LIMIT:
        _known_statuses.add(status)


def _check_name(name):
    if type(name) is not str:
        raise TypeError(
            "header name must be a str, not %s" % type(name).__name__
        )
    if not _TOKEN(name):
        raise ValueError("invalid header name %r" % (name,))
    lower = name.lower()
    if lower in _HOP_BY_HOP or lower.startswith("proxy-"):
        raise ValueError(
            "hop-by-hop header %r is not allowed from a WSGI app (PEP 3333)"
            % (name,)
        )
    kind = _CONTENT_LENGTH if lower == "content-length" else _PLAIN
    if len(_known_names) < _CACHE_LIMIT:
        _known_names[name] = kind
    return kind


def _content_length(value, previous):
    text = value.strip() if type(value) is str else ""
    if not (text.isascii() and text.isdigit()):
        raise ValueError("invalid Content-Length %r" % (value,))
    length = int(text)
    if previous is not None and previous != length:
        raise ValueError("conflicting Content-Length headers")
    return length


def _validate(status, headers):
    _check_status(status)
    if not isinstance(headers, (list, tuple)):
        raise TypeError(
            "headers must be a list of (name, value) tuples, not %s"
            % type(headers).__name__
        )
    for item in headers:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(
                "each header must be a (name, value) tuple, not %r" % (item,)
            )
        name, value = item
        _check_name(name)
        if type(value) is not str:
            raise TypeError(
                "value of header %r must be a str, not %s"
                % (name, type(value).__name__)
            )
        if _FORBIDDEN(value):
            raise ValueError(
                "header %r has a CR, LF or NUL in its value %r" % (name, value)
            )
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(
                "value of header %r is not latin-1: %r" % (name, value)
            ) from None


class FileWrapper:
    """``wsgi.file_wrapper``.

    When the app returns one around a regular file, the worker hands the
    file descriptor itself to the master (a FILE frame), which sends the
    file to the client without it passing through Python. Any other
    file-like object is read in blocks.
    """

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        close = getattr(filelike, "close", None)
        if close is not None:
            self.close = close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    def regular_file(self):
        """``(fd, offset, size)`` when the wrapped object is a regular file
        open in binary mode, else None."""
        filelike = self.filelike
        if isinstance(filelike, io.TextIOBase):
            return None
        try:
            fd = filelike.fileno()
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            # tell() accounts for read-ahead in buffered files, where the
            # descriptor's own offset would not.
            tell = getattr(filelike, "tell", None)
            offset = tell() if tell is not None else os.lseek(fd, 0, os.SEEK_CUR)
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return None
        if type(offset) is not int or offset < 0:
            return None
        return fd, offset, st.st_size
