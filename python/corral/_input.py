"""``wsgi.input`` for request bodies that the master sends on demand.

Inline bodies use a plain ``io.BytesIO``. A body too large to travel inside
the REQUEST frame is pulled with READ frames; :class:`PulledInput` reads
ahead one chunk at a time and never asks past the end of the body.
"""

from ._proto import MAX_PAYLOAD

# Ask for at least this much per READ: one round trip to the master costs
# far more than copying a few hundred KiB.
READ_AHEAD = 256 * 1024


class PulledInput:
    """A read-only binary stream over a body fetched in chunks.

    ``pull(size)`` returns the next chunk of at most ``size`` bytes, or
    ``b""`` at the end of the body; it may raise ``ClientDisconnected``.
    """

    __slots__ = ("_pull", "_buf", "_pos", "_eof")

    def __init__(self, pull, prefix=b""):
        self._pull = pull
        self._buf = bytearray(prefix)
        self._pos = 0
        self._eof = False

    def _fill(self, wanted):
        """Append the next chunk to the buffer; False at the end of the body."""
        if self._eof:
            return False
        data = self._pull(min(max(wanted, READ_AHEAD), MAX_PAYLOAD))
        if not data:
            self._eof = True
            return False
        if self._pos:
            # Drop what was consumed so the buffer stays about one chunk.
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data
        return True

    def _take(self, end):
        data = bytes(memoryview(self._buf)[self._pos : end])
        if end >= len(self._buf):
            self._buf.clear()
            self._pos = 0
        else:
            self._pos = end
        return data

    def read(self, size=-1):
        if size is None or size < 0:
            while self._fill(MAX_PAYLOAD):
                pass
            return self._take(len(self._buf))
        while len(self._buf) - self._pos < size:
            if not self._fill(size - (len(self._buf) - self._pos)):
                break
        return self._take(min(self._pos + size, len(self._buf)))

    def readline(self, size=-1):
        if size is None:
            size = -1
        # Where to resume looking for b"\n", relative to the read position,
        # so a long line is scanned once however many chunks it spans.
        scanned = 0
        while True:
            found = self._buf.find(b"\n", self._pos + scanned)
            if found >= 0:
                end = found + 1
                break
            scanned = len(self._buf) - self._pos
            if 0 <= size <= scanned or not self._fill(
                size - scanned if size >= 0 else 0
            ):
                end = len(self._buf)
                break
        if size >= 0:
            end = min(end, self._pos + size)
        return self._take(end)

    def readlines(self, hint=-1):
        if hint is None or hint <= 0:
            return list(self)
        lines = []
        total = 0
        while total < hint:
            line = self.readline()
            if not line:
                break
            lines.append(line)
            total += len(line)
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self):
        return True

    def close(self):
        """Nothing to release: the master owns the body."""
