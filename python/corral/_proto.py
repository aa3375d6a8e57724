"""Frame layout and constants of the worker protocol (docs/PROTOCOL.md)."""

import struct

# What this runtime speaks: version 1 (WSGI) and version 2 (WSGI and ASGI).
VERSION = 2
VERSIONS = (1, 2)

# type, flags, reserved, id, payload length
HEADER = struct.Struct("!BBHII")
HEADER_SIZE = HEADER.size
MAX_PAYLOAD = 1 << 20
U32 = struct.Struct("!I")
# A START header followed by the u32 length of its head, packed in one go.
START_HEADER = struct.Struct("!BBHIII")
FILE_PAYLOAD = struct.Struct("!Qq")

# master -> worker
BOOT = 0x01
REQUEST = 0x02
DATA = 0x03
CANCEL = 0x04
PAUSE = 0x05
RESUME = 0x06
PING = 0x07
FORK = 0x08  # to a zygote: fork a worker (four descriptors attached)
WS_MESSAGE_IN = 0x09  # ASGI: a client WebSocket message (or part of one)
WS_CLOSE_IN = 0x0A  # ASGI: the client closed the WebSocket
STEAL = 0x30

# worker -> master
HELLO = 0x10
BOOTFAIL = 0x11
START = 0x12
BODY = 0x13
FILE = 0x14
END = 0x15
ERROR = 0x16
READ = 0x17
RETURNED = 0x18
PONG = 0x19
LOG = 0x1A
BAN = 0x1B  # the app bans a client (corral.ban)
FORKED = 0x1C  # from a zygote: the pid of the worker it forked
EXITED = 0x1D  # from a zygote: a worker it forked has exited
TRAILERS = 0x1E  # ASGI: trailing headers, after the body
EARLY_HINT = 0x1F  # ASGI: a 103 Early Hints response
WS_ACCEPT = 0x20  # ASGI: websocket.accept
WS_MESSAGE = 0x21  # ASGI: websocket.send
WS_CLOSE = 0x22  # ASGI: websocket.close
WS_ACK = 0x23  # ASGI: client message bytes the app has received

# flags
BODY_PULL = 0x01  # REQUEST: the body is fetched with READ frames
START_END = 0x01  # START: the inline body is the whole body
ABORTED = 0x01  # END: the response did not complete
WEBSOCKET = 0x04  # REQUEST (ASGI): the scope is a websocket scope
CANCEL_TIMEOUT = 0x01  # CANCEL (ASGI): the request ran past its hard timeout
START_TRAILERS = 0x02  # START (ASGI): TRAILERS follows the body
WS_TEXT = 0x01  # WS_MESSAGE: UTF-8 text
WS_MORE = 0x02  # WS_MESSAGE: more parts of this message follow

MAX_PING = 64


class ChannelClosed(Exception):
    """The master closed the data socket: nothing can be sent any more."""


def frame(kind, rid=0, payload=b"", flags=0):
    """One encoded frame."""
    return HEADER.pack(kind, flags, 0, rid, len(payload)) + payload
