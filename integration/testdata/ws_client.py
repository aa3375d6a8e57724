"""WebSocket checks with the Python `websockets` client, the library most
ASGI users' clients and tests use, against corral serving asgi_fastapi.py
(run by TestASGIWebSocketsPythonClient in integration/asgi_ws_test.go).

Usage: ws_client.py ws://HOST:PORT MAX_SIZE

Each check prints "PASS name" or "FAIL name: why"; the exit status is 1 if
any failed. What only the app can see (the close code and reason it heard)
it writes to marker files, which the Go test reads: the checks here tag
their sockets "py-..." for that.

A few checks reach below the client's API (c.protocol, c.send_context) to
count frames or to write frames the client would refuse to send; that is
why integration/requirements.txt pins the websockets version.
"""

import os
import sys
import threading
import time
import traceback
import zlib

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect

BASE = sys.argv[1]
MAX_SIZE = int(sys.argv[2])
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def ws(path, **kw):
    kw.setdefault("compression", None)
    # No proxy from the environment, no client limit on what the app sends,
    # no pings of our own: corral's are what is tested.
    return connect(BASE + path, proxy=None, max_size=None, ping_interval=None,
                   open_timeout=10, close_timeout=10, **kw)


def expect(what, got, want):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, shorten(got), shorten(want)))


def shorten(v):
    if isinstance(v, (bytes, str)) and len(v) > 40:
        return "%s… (%d long)" % (v[:20], len(v))
    return v


def spy_frames(c):
    """Returns a list that gets every data frame c receives from now on."""
    frames = []
    recv_frame = c.protocol.recv_frame

    def spy(frame):
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            frames.append(frame)
        return recv_frame(frame)

    c.protocol.recv_frame = spy
    return frames


def closed_with(c):
    """Reads until the server closes; returns its close frame's (code, reason)."""
    try:
        while True:
            c.recv(timeout=10)
    except ConnectionClosed as e:
        if e.rcvd is None:
            raise AssertionError("the connection ended without a close frame from corral (%s)" % e)
        return e.rcvd.code, e.rcvd.reason


@check
def text_and_binary():
    with ws("/ws/echo?tag=py-basic", subprotocols=["chat.v1"]) as c:
        expect("subprotocol", c.subprotocol, "chat.v1")
        c.send("héllo wörld ✓")
        expect("text echo", c.recv(timeout=10), "héllo wörld ✓")
        c.send(bytes(range(256)))
        expect("binary echo", c.recv(timeout=10), bytes(range(256)))
        c.send(b"")
        expect("empty binary echo", c.recv(timeout=10), b"")
        c.send("")
        expect("empty text echo", c.recv(timeout=10), "")
        # corral answers the client's pings itself.
        if not c.ping(b"are you there").wait(10):
            raise AssertionError("no pong")


@check
def one_megabyte_both_ways():
    with ws("/ws/echo?tag=py-mb") as c:
        mb = os.urandom(1 << 20)
        c.send(mb)
        expect("1 MiB binary echo", c.recv(timeout=10), mb)
        text = "é" * (1 << 19)  # 1 MiB of UTF-8
        c.send(text)
        expect("1 MiB text echo", c.recv(timeout=10), text)
        # 1.7 MiB of three-byte characters: corral's 1 MiB parts cut one
        # in two, both ways.
        text = "€" * 600_000
        c.send(text)
        expect("1.7 MiB text echo", c.recv(timeout=10), text)
        # The app's messages up to 1 MiB go out as one frame; larger ones
        # in 1 MiB fragments (corral does not hold a whole large message),
        # which the client reassembles.
        frames = spy_frames(c)
        c.send("big:1048576")
        expect("1 MiB from the app", c.recv(timeout=10), b"x" * (1 << 20))
        expect("frames of a 1 MiB message", [(f.opcode.name, f.fin) for f in frames], [("BINARY", True)])
        frames.clear()
        c.send("big:3145728")
        expect("3 MiB from the app", c.recv(timeout=10), b"x" * (3 << 20))
        # Three 1 MiB fragments and an empty last one (the library's way
        # of ending a message written in parts).
        expect("frames of a 3 MiB message", [(f.opcode.name, f.fin, len(f.data)) for f in frames],
               [("BINARY", False, 1 << 20), ("CONT", False, 1 << 20), ("CONT", False, 1 << 20), ("CONT", True, 0)])


@check
def fragmented_by_the_client():
    with ws("/ws/echo?tag=py-frag") as c:
        # An iterable is sent as one message in fragments (continuation frames).
        c.send(["frag", "men", "ted ", "é" * 3])
        expect("fragmented text", c.recv(timeout=10), "fragmented ééé")
        parts = [os.urandom(300_000) for _ in range(4)]
        c.send(parts)
        expect("fragmented binary", c.recv(timeout=10), b"".join(parts))
        # A ping between two fragments is answered, and the message is whole.
        pongs = []

        def with_a_ping():
            yield "before "
            pongs.append(c.ping(b"mid-message"))
            yield "after"

        c.send(with_a_ping())
        expect("a message with a ping between its fragments", c.recv(timeout=10), "before after")
        if not pongs[0].wait(10):
            raise AssertionError("no pong for a ping between fragments")
        # A character split across two fragments is still UTF-8.
        c.send([b"caf\xc3", b"\xa9"], text=True)
        expect("a character across fragments", c.recv(timeout=10), "café")


@check
def a_client_that_reads_late():
    # The app sends 12.5 MiB to a client that does not read for a while:
    # corral holds at most a buffer of it and pauses the app's send(); all
    # of it arrives, in order.
    with ws("/ws/echo?tag=py-late", max_queue=1) as c:
        c.send("flood:200:65536")
        time.sleep(0.5)
        for i in range(200):
            m = c.recv(timeout=10)
            expect("message %d" % i, (int.from_bytes(m[:4], "big"), len(m)), (i, 65536))
        expect("the end", c.recv(timeout=10), "flood done")


@check
def many_sockets_at_once():
    # Sockets on both workers at once, half of them compressed.
    errors = []

    def talk(k):
        try:
            with ws("/ws/echo?tag=py-many", compression="deflate" if k % 2 else None) as c:
                for j in range(5):
                    m = ("socket %d message %d " % (k, j)) * 50
                    c.send(m)
                    expect("echo", c.recv(timeout=10), m)
        except Exception as e:
            errors.append("socket %d: %r" % (k, e))

    threads = [threading.Thread(target=talk, args=(k,)) for k in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise AssertionError("%d of 40 sockets failed: %s" % (len(errors), errors[:3]))


@check
def compression():
    with ws("/ws/echo?tag=py-deflate", compression="deflate") as c:
        ext = c.response.headers.get("Sec-WebSocket-Extensions", "")
        if "permessage-deflate" not in ext:
            raise AssertionError("permessage-deflate not negotiated: %r" % ext)
        if not any(isinstance(e, PerMessageDeflate) for e in c.protocol.extensions):
            raise AssertionError("the client does not use permessage-deflate")
        for msg in ["compress me " * 1000, "short", os.urandom(100_000), b"z" * (1 << 20)]:
            c.send(msg)
            expect("compressed echo", c.recv(timeout=10), msg)
        c.send("big:2097152")
        expect("2 MiB compressed from the app", c.recv(timeout=10), b"x" * (2 << 20))
        c.send(["frag", "mented ", "deflate"])
        expect("fragmented compressed", c.recv(timeout=10), "fragmented deflate")


@check
def no_compression_unless_offered():
    with ws("/ws/echo?tag=py-plain", compression=None) as c:
        ext = c.response.headers.get("Sec-WebSocket-Extensions")
        expect("extensions without an offer", ext, None)
        c.send("plain")
        expect("echo", c.recv(timeout=10), "plain")
    # corral compresses with a 32 KiB window: an offer that asks for a
    # smaller one is declined, and the socket works uncompressed.
    small = ClientPerMessageDeflateFactory(server_max_window_bits=10)
    with ws("/ws/echo?tag=py-smallwindow", extensions=[small]) as c:
        ext = c.response.headers.get("Sec-WebSocket-Extensions")
        expect("extensions for server_max_window_bits=10", ext, None)
        c.send("plain " * 1000)
        expect("echo", c.recv(timeout=10), "plain " * 1000)


@check
def client_closes_with_code_and_reason():
    # The Go test checks that the app heard these in websocket.disconnect.
    with ws("/ws/echo?tag=py-close") as c:
        c.send("x")
        expect("echo", c.recv(timeout=10), "x")
        c.close(4242, "client done ✓")
        rcvd = c.protocol.close_rcvd
        expect("corral's answer", (rcvd.code, rcvd.reason), (4242, "client done ✓"))
    with ws("/ws/echo?tag=py-close-normal") as c:
        c.close()
        expect("corral's answer", c.protocol.close_rcvd.code, 1000)


@check
def app_closes_with_code_and_reason():
    with ws("/ws/echo?tag=py-appclose") as c:
        c.send("close")
        expect("the app's close", closed_with(c), (4001, "bye from the app"))
    with ws("/ws/echo?tag=py-appclose2") as c:
        c.send("close:1000:done, ünïcode")
        expect("the app's close", closed_with(c), (1000, "done, ünïcode"))


@check
def app_close_codes_corral_fixes():
    # A reason longer than a close frame holds is cut to 123 bytes, at a
    # character boundary.
    with ws("/ws/echo?tag=py-longreason") as c:
        c.send("close:4000:" + "é" * 100)
        expect("a long reason", closed_with(c), (4000, "é" * 61))
    # 1005 and 1006 cannot be sent: corral sends 1000.
    with ws("/ws/echo?tag=py-1005") as c:
        c.send("close:1005:")
        expect("the app closing with 1005", closed_with(c), (1000, ""))


@check
def client_closes_without_a_code():
    # An empty close frame: the app hears 1005, as the ASGI spec says.
    with ws("/ws/echo?tag=py-close-empty") as c:
        c.close(None)
        # websockets reads an empty close frame as 1005.
        expect("corral's answer", c.protocol.close_rcvd.code, 1005)


@check
def client_breaks_the_close_rules():
    # Close frames websockets would not send, written raw: corral answers a
    # code that may not be sent (1005, 999) or a one-byte payload with 1002
    # (protocol error), and the app hears 1006. A reason that is not UTF-8
    # is answered like any other close (the WebSocket library does not
    # check it); the app hears it with U+FFFD for the bad bytes.
    for tag, payload, want in [
        ("py-rawclose-1005", b"\x03\xed", 1002),
        ("py-rawclose-999", b"\x03\xe7", 1002),
        ("py-rawclose-short", b"\x03", 1002),
        ("py-rawclose-utf8", b"\x03\xe8bad \xff", None),
    ]:
        with ws("/ws/echo?tag=" + tag) as c:
            with c.send_context():
                c.protocol.send_frame(Frame(Opcode.CLOSE, payload))
            try:
                c.recv(timeout=10)
            except ConnectionClosed as e:
                got = e.rcvd.code if e.rcvd else None
                if want is not None:
                    expect("corral's answer to close %r" % payload, got, want)
            else:
                raise AssertionError("a message after a close frame")


@check
def corral_pings():
    # Run with --ws-ping-interval 200ms: an idle client is pinged, and the
    # websockets client's pongs keep its socket open.
    with ws("/ws/echo?tag=py-ping") as c:
        pings = []
        recv_frame = c.protocol.recv_frame

        def spy(frame):
            if frame.opcode == Opcode.PING:
                pings.append(frame.data)
            return recv_frame(frame)

        c.protocol.recv_frame = spy  # websockets answers them itself
        deadline = time.monotonic() + 10
        while len(pings) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        expect("pings from corral", len(pings) >= 2, True)
        c.send("still here")
        expect("echo after pings", c.recv(timeout=10), "still here")


@check
def refusals():
    # websocket.close before accept is a 403; a denial response is itself.
    for path, status, body in [("/ws/refuse", 403, None), ("/ws/deny", 401, b"no entry")]:
        try:
            ws(path).close()
        except InvalidStatus as e:
            expect(path, e.response.status_code, status)
            if body is not None:
                expect(path + " body", e.response.body, body)
        else:
            raise AssertionError("%s: accepted" % path)


@check
def app_returns_without_closing():
    with ws("/ws/echo?tag=py-return") as c:
        c.send("return")
        expect("an app that returns", closed_with(c), (1000, ""))


@check
def app_raises():
    with ws("/ws/echo?tag=py-raise") as c:
        c.send("raise")
        expect("an app that raises", closed_with(c)[0], 1011)


@check
def oversized_message():
    with ws("/ws/echo?tag=py-big") as c:
        c.send(os.urandom(MAX_SIZE))  # at the limit: fine
        expect("a message at --ws-max-size", len(c.recv(timeout=10)), MAX_SIZE)
        try:
            c.send(os.urandom(MAX_SIZE + 1))
        except ConnectionClosed:
            pass  # corral may close before the client has written it all
        expect("over --ws-max-size", closed_with(c), (1009, "message over %d bytes" % MAX_SIZE))


@check
def oversized_after_decompression():
    # A few KB on the wire that inflate past the limit: the limit is on
    # the message, not on the bytes that carry it.
    with ws("/ws/echo?tag=py-bomb", compression="deflate") as c:
        bomb = bytes(MAX_SIZE + 1)
        expect("the bomb is small on the wire", len(zlib.compress(bomb)) < MAX_SIZE // 100, True)
        c.send(bomb)
        expect("inflated over --ws-max-size", closed_with(c), (1009, "message over %d bytes" % MAX_SIZE))


@check
def invalid_utf8():
    with ws("/ws/echo?tag=py-utf8") as c:
        c.send(b"not \xc3\x28 utf-8", text=True)
        expect("invalid UTF-8", closed_with(c), (1007, "invalid UTF-8"))
    with ws("/ws/echo?tag=py-utf8-frag") as c:
        c.send([b"ends in the middle of \xc3"], text=True)
        expect("a text message cut in a character", closed_with(c)[0], 1007)
    with ws("/ws/echo?tag=py-utf8-deflate", compression="deflate") as c:
        c.send(b"compressed \xff" * 100, text=True)
        expect("invalid UTF-8, compressed", closed_with(c)[0], 1007)


@check
def worker_crash():
    # Last: it costs a worker, which corral replaces.
    with ws("/ws/crash") as c:
        expect("first message", c.recv(timeout=10), "about to crash")
        expect("a worker crash", closed_with(c)[0], 1011)


failed = 0
for fn in CHECKS:
    begun = time.monotonic()
    try:
        fn()
    except Exception as e:
        failed += 1
        detail = "".join(traceback.format_exception_only(type(e), e)).strip()
        print("FAIL %s: %s" % (fn.__name__, detail), flush=True)
    else:
        print("PASS %s (%.2fs)" % (fn.__name__, time.monotonic() - begun), flush=True)
sys.exit(1 if failed else 0)
