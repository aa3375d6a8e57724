"""The zygote (`corral --preload`): a process that imports the app once and
forks workers from itself on the master's request, so a new worker costs a
fork instead of a Python start and an app import, and workers share the
app's memory pages until they write to them (docs/PROTOCOL.md, FORK).

The zygote stays single-threaded: fork copies only the calling thread, and
a lock held by another thread at that moment would stay locked forever in
the child.
"""

import array
import ctypes
import ctypes.util
import errno
import gc
import os
import select
import json
import signal
import socket
import sys
import traceback

from . import _proto as proto
from ._proto import HEADER, HEADER_SIZE, ChannelClosed, frame
from ._request import to_json

PR_SET_PDEATHSIG = 1


def _recv_frame(sock):
    """One frame and the descriptors that came with it, or None at EOF."""
    fds = array.array("i")
    data = b""
    while len(data) < HEADER_SIZE:
        chunk, anc, _flags, _addr = sock.recvmsg(
            HEADER_SIZE - len(data), socket.CMSG_SPACE(8 * fds.itemsize)
        )
        if not chunk:
            return None
        data += chunk
        _collect(anc, fds)
    kind, flags, reserved, rid, length = HEADER.unpack(data)
    if length > proto.MAX_PAYLOAD:
        raise ValueError("frame of %d bytes" % length)
    payload = b""
    while len(payload) < length:
        chunk, anc, _flags, _addr = sock.recvmsg(
            length - len(payload), socket.CMSG_SPACE(8 * fds.itemsize)
        )
        if not chunk:
            return None
        payload += chunk
        _collect(anc, fds)
    return kind, rid, payload, list(fds)


def _collect(ancillary, fds):
    for level, typ, data in ancillary:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])


def _libc():
    """libc, loaded once in the zygote: find_library runs a subprocess,
    which every fork would otherwise pay for."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


def _die_with_parent(libc):
    """The forked worker dies with the zygote (which dies with the master):
    PR_SET_PDEATHSIG, as the master sets for the processes it starts."""
    try:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except AttributeError:
        pass  # EOF on the data channel still ends the worker


def serve(app, sock, control_sock, config, start_worker):
    """The zygote's loop: fork a worker for each FORK frame, report the
    exits of the workers it forked, end at EOF (its workers then die with
    it, so the master sends EOF only when they are gone).

    start_worker(app, config) runs in the child and does not return.
    """
    zygote_pid = os.getpid()
    libc = _libc()
    # What the app allocated at import is never garbage: keep the collector
    # away from it, so workers do not copy those pages by touching them.
    gc.collect()
    gc.freeze()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    # SIGCHLD wakes the loop so exits are reported at once.
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    children = set()
    while True:
        try:
            ready, _, _ = select.select([sock, wake_r], [], [], 1.0)
        except InterruptedError:
            ready = []
        if wake_r in ready:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        _reap(sock, children)
        if sock not in ready:
            continue
        got = _recv_frame(sock)
        if got is None:
            return 0
        kind, rid, payload, fds = got
        if kind != proto.FORK or len(fds) != 4:
            for fd in fds:
                os.close(fd)
            sys.stderr.write("corral zygote: unexpected frame 0x%02x with %d descriptors\n" % (kind, len(fds)))
            return 70

        wanted = json.loads(payload.decode("utf-8"))
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            sock.sendall(frame(proto.FORKED, rid, to_json({"error": str(exc)})))
            continue
        if pid == 0:
            try:
                _become_worker((sock, control_sock), wake_r, wake_w, fds, zygote_pid, libc)
                child = dict(config)
                child["worker_id"] = wanted.get("worker_id")
                start_worker(app, child)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(1)
        children.add(pid)
        for fd in fds:
            os.close(fd)
        sock.sendall(frame(proto.FORKED, rid, to_json({"pid": pid})))


def _become_worker(zygote_socks, wake_r, wake_w, fds, zygote_pid, libc):
    """In the forked child: take the worker's own descriptors as fds 3, 4,
    1 and 2 (which also drops the zygote's channels) and forget the
    zygote's signal set-up."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.close(wake_r)
    os.close(wake_w)
    data, control, out, err = fds
    # Fds 3 and 4 are about to become the worker's own channels: the
    # zygote's socket objects must not close them when they are collected.
    for zs in zygote_socks:
        zs.detach()
    for src, dst in ((data, 3), (control, 4), (out, 1), (err, 2)):
        os.dup2(src, dst)
    for fd in set(fds) - {1, 2, 3, 4}:
        os.close(fd)
    _die_with_parent(libc)
    if os.getppid() != zygote_pid:
        os._exit(0)  # the zygote died between fork and prctl


def _reap(sock, children):
    """Report every forked worker that has exited."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            raise
        if pid == 0:
            return
        children.discard(pid)
        try:
            sock.sendall(frame(proto.EXITED, 0, to_json({"pid": pid, "status": status})))
        except OSError:
            raise ChannelClosed()
