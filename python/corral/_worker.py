"""The worker runtime: boot, HELLO, and the serving loops (docs/PROTOCOL.md)."""

import faulthandler
import io
import os
import signal
import sys
import threading

import corral

from . import _proto as proto
from ._app import load_app
from ._channel import Channel, protocol_error
from ._detect import detect as detect_interface
from ._input import PulledInput
from ._proto import BODY_PULL, HEADER, HEADER_SIZE, U32, ChannelClosed, frame
from ._request import error_payload, to_json
from ._response import FileWrapper
from ._routes import extract as extract_routes

# The default of BOOT's worker_connections (ASGI workers).
DEFAULT_CONNECTIONS = 1000


class Worker:
    """The app and the per-worker environ, served over a Channel."""

    def __init__(self, app, chan, config, threads):
        self.app = app
        self.chan = chan
        self.threads = threads
        base = {"SCRIPT_NAME": "", "wsgi.url_scheme": "http"}
        base.update(config.get("environ") or {})
        base.update(
            {
                "wsgi.version": (1, 0),
                "wsgi.multithread": threads > 1,
                "wsgi.multiprocess": bool(config.get("multiprocess", False)),
                "wsgi.run_once": False,
                "wsgi.errors": sys.stderr,
                "wsgi.file_wrapper": FileWrapper,
                "wsgi.input_terminated": True,
            }
        )
        self.base = base

    def handle(self, req):
        payload = req.payload
        req.payload = None
        n = U32.unpack_from(payload)[0]
        # The hot path: one decode, one split, one dict update.
        parts = payload[4 : 4 + n].decode("latin-1").split("\0")
        if len(parts) & 1:
            protocol_error("odd number of environ strings in REQUEST %d" % req.id)
        environ = self.base.copy()
        pairs = iter(parts)
        environ.update(zip(pairs, pairs))
        body = payload[4 + n :]
        if req.flags & BODY_PULL:
            # Inline bytes, if the master sent any, start the body.
            environ["wsgi.input"] = PulledInput(req.pull, body)
        else:
            environ["wsgi.input"] = io.BytesIO(body)
        try:
            result = self.app(environ, req.start_response)
        except Exception:
            req.fail()
            return
        req.respond(result)

    def install_signals(self):
        """SIGTERM's handler and the wakeup fd. Called before HELLO: the
        master may send SIGTERM as soon as it reads HELLO, and a SIGTERM
        before the handler would kill the worker instead of stopping it."""
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.set_wakeup_fd(self.chan.wake_w, warn_on_full_buffer=False)

    def serve(self, control_sock):
        chan = self.chan
        threading.Thread(
            target=self._control_loop,
            args=(control_sock,),
            name="corral-control",
            daemon=True,
        ).start()
        try:
            if self.threads == 1:
                take = chan.take
                handle = self.handle
                while True:
                    req = take()
                    if req is None:
                        break
                    handle(req)
            else:
                self._serve_threaded()
            chan.return_unstarted()
        except ChannelClosed:
            pass
        return 0

    def _on_sigterm(self, signum, frame):
        # The first SIGTERM is a flag: the wakeup fd makes the main thread's
        # poll return, and the loops stop before starting another request.
        # A second one (the master giving up on a hung request) stops now:
        # SystemExit in the main thread interrupts a sleep or a Python loop
        # in the app and runs its finally blocks; a call blocked in C gets
        # SIGKILL from the master instead.
        if self.chan.stopping:
            raise SystemExit(0)
        self.chan.stopping = True

    def _serve_threaded(self):
        threads = [
            threading.Thread(
                target=self._app_thread, name="corral-app-%d" % (i + 1), daemon=True
            )
            for i in range(self.threads)
        ]
        for thread in threads:
            thread.start()
        self.chan.pump()
        for thread in threads:
            thread.join()

    def _app_thread(self):
        take = self.chan.take_threaded
        try:
            while True:
                req = take()
                if req is None:
                    return
                self.handle(req)
        except ChannelClosed:
            return
        except BaseException:
            # SystemExit and friends from the app: in a thread they would end
            # only the thread and leave its request hanging.
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)

    def _control_loop(self, sock):
        buf = b""
        try:
            while True:
                data = sock.recv(4096)
                if not data:
                    return  # the master closed it; the data socket tells the rest
                buf += data
                while len(buf) >= HEADER_SIZE:
                    kind, flags, reserved, rid, length = HEADER.unpack_from(buf)
                    if kind != proto.STEAL or flags or reserved or rid or length:
                        protocol_error(
                            "unexpected frame type 0x%02x on the control channel"
                            % kind
                        )
                    buf = buf[HEADER_SIZE:]
                    self.chan.steal()
        except (OSError, ChannelClosed):
            return


def _line_buffered():
    """The master logs the worker's output line by line: flush every line."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(line_buffering=True)
            except Exception:
                pass


def _register_dump_signal():
    """A signal that dumps every thread's stack to stderr, for the master to
    send to a worker that hangs."""
    signum = getattr(signal, "SIGRTMIN", None)
    signum = int(signum) + 2 if signum is not None else int(signal.SIGUSR2)
    try:
        faulthandler.register(signum, file=sys.stderr, all_threads=True)
    except (AttributeError, OSError, RuntimeError, ValueError):
        return None
    return signum


def _prepare(config):
    """Everything before serving that may fail because of the app or its
    configuration; the result of loading the app."""
    if config.get("protocol") not in proto.VERSIONS:
        raise ValueError(
            "unsupported protocol version %r (this worker speaks %s)"
            % (config.get("protocol"), " and ".join(map(str, proto.VERSIONS)))
        )
    mode = config.get("mode", "serve")
    if mode not in ("serve", "check", "routes", "zygote"):
        raise ValueError("unknown mode %r" % (mode,))
    threads = config.get("threads", 1)
    if type(threads) is not int or threads < 1:
        raise ValueError("threads must be an integer >= 1, not %r" % (threads,))
    if config.get("chdir"):
        os.chdir(config["chdir"])
    cwd = os.getcwd()
    # Like gunicorn: the working directory is importable, after pythonpath.
    paths = []
    for path in list(config.get("pythonpath") or ()) + [cwd]:
        path = os.path.abspath(path)
        if path not in paths:
            paths.append(path)
    sys.path[:0] = paths
    connections = config.get("worker_connections", DEFAULT_CONNECTIONS)
    if type(connections) is not int or connections < 1:
        raise ValueError(
            "worker_connections must be an integer >= 1, not %r" % (connections,)
        )
    corral._worker_id = config.get("worker_id")
    return load_app(config.get("app"))


def _interface(app, config):
    """What the worker serves: ``(interface, callable)``."""
    interface, app = detect_interface(app, config.get("interface", "auto"), config.get("app"))
    if interface == "asgi" and config.get("protocol") == 1:
        raise ValueError("an ASGI app needs protocol version 2; the master speaks 1")
    return interface, app


def app_files():
    """The source files of the modules the app loaded from its own tree:
    what `corral --reload` watches. Files of the interpreter, of installed
    packages and of corral itself are left out."""
    skip = set()
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        skip.add(os.path.abspath(prefix) + os.sep)
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py") or path.startswith("<"):
            continue
        path = os.path.abspath(path)
        if "site-packages" in path or any(path.startswith(p) for p in skip):
            continue
        files.add(path)
    return sorted(files)


def _hello(config, threads, dump_signal, routes, files, asgi=None):
    hello = {
        "protocol": config.get("protocol", proto.VERSION),
        "pid": os.getpid(),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "implementation": sys.implementation.name,
        "threads": threads,
        "app": config.get("app"),
        "dump_signal": dump_signal,
        "routes": routes,
        "files": files,
    }
    if hello["protocol"] != 1:
        hello["interface"] = "asgi" if asgi is not None else "wsgi"
        hello["asgi"] = asgi
    return to_json(hello)


def _threads(config):
    """HELLO's threads: an ASGI worker's worker_connections."""
    if config.get("_interface") == "asgi":
        return config.get("worker_connections", DEFAULT_CONNECTIONS)
    return config.get("threads", 1)


def _own_sockets(data_sock, control_sock):
    for sock in (data_sock, control_sock):
        sock.setblocking(True)
        # A process the app starts must not hold the channel open after the
        # worker is gone (the master would never see EOF).
        sock.set_inheritable(False)


def _send(sock, data):
    """One frame on a socket that has no Channel (yet, or at all)."""
    try:
        sock.sendall(data)
    except OSError as exc:
        raise ChannelClosed(str(exc)) from None


def _run(app, data_sock, control_sock, config, routes, files):
    """Everything after the app is loaded, for every serving worker: one
    the master spawned (main) and one the zygote forked (_serve_forked)
    alike, so the two cannot drift apart. Makes the channel and sets the
    runtime's module state (worker id, the channel corral.ban() uses),
    registers the signals, says HELLO and serves until EOF or SIGTERM.
    Returns the exit status; a second SIGTERM raises SystemExit."""
    _own_sockets(data_sock, control_sock)
    if config.get("_interface") == "asgi":
        return _run_asgi(app, data_sock, control_sock, config, routes, files)
    threads = config.get("threads", 1)
    dump_signal = _register_dump_signal()
    chan = Channel(data_sock, threaded=threads > 1)
    corral._worker_id = config.get("worker_id")
    corral._master = chan
    worker = Worker(app, chan, config, threads)
    worker.install_signals()
    try:
        chan.send(frame(proto.HELLO, 0, _hello(config, threads, dump_signal, routes, files)))
        return worker.serve(control_sock)
    except ChannelClosed:
        return 0


def _run_asgi(app, data_sock, control_sock, config, routes, files):
    """_run() for an ASGI app: the event loop, lifespan startup before
    HELLO, and requests until EOF or SIGTERM (corral._asgi)."""
    from . import _asgi

    dump_signal = _register_dump_signal()
    corral._worker_id = config.get("worker_id")
    threads = _threads(config)

    def hello(asgi):
        return _hello(config, threads, dump_signal, routes, files, asgi)

    try:
        return _asgi.serve(app, data_sock, control_sock, config, hello)
    except ChannelClosed:
        return 0
    except OSError as exc:
        # BrokenPipe and friends while saying HELLO: the master is gone.
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            return 0
        raise


def _serve_forked(app, config):
    """A worker forked by the zygote: its channels are fds 3 and 4 now.
    Serves through _run(); never returns into the zygote's loop."""
    import socket

    # Forked workers report the zygote's routes and files: same app, same
    # code, and walking sys.modules in every child would cost each fork a
    # few milliseconds of CPU.
    routes = config.get("_routes")
    files = config.get("_files")
    try:
        rc = _run(app, socket.socket(fileno=3), socket.socket(fileno=4), config, routes, files)
    except SystemExit as exc:  # a second SIGTERM
        rc = exc.code if isinstance(exc.code, int) else 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def main(data_sock, control_sock, config):
    """Called by the bootstrap with the BOOT config; returns the exit status."""
    # Before the app is imported: it may start processes, and it gets
    # Ctrl-C from a terminal along with the master, which owns shutdown.
    # A zygote's children inherit the streams and SIGINT; _run() sets up
    # their own sockets.
    _own_sockets(data_sock, control_sock)
    _line_buffered()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        try:
            loaded = _prepare(config)
            interface, app = _interface(loaded, config)
        except BaseException:
            _send(data_sock, frame(proto.BOOTFAIL, 0, error_payload(*sys.exc_info())))
            return 1
        # Never fails: an app whose routes cannot be told gets None.
        script_name = (config.get("environ") or {}).get("SCRIPT_NAME", "")
        routes = extract_routes(loaded, script_name or config.get("root_path") or "")
        files = app_files()
        config = dict(config, _interface=interface)
        mode = config.get("mode", "serve")
        if mode == "serve":
            return _run(app, data_sock, control_sock, config, routes, files)
        # check, routes, zygote: HELLO reports the app; this process serves
        # no requests itself.
        # An ASGI zygote runs no lifespan (each forked worker runs its own),
        # nor do check and routes.
        asgi = None
        if interface == "asgi":
            from ._asgi import hello_info

            asgi = hello_info(config, "off")
        dump_signal = _register_dump_signal()
        _send(data_sock, frame(proto.HELLO, 0, _hello(config, _threads(config), dump_signal, routes, files, asgi)))
        if mode == "zygote":
            from . import _zygote

            config = dict(config, _routes=routes, _files=files)
            return _zygote.serve(app, data_sock, control_sock, config, _serve_forked)
        return 0
    except ChannelClosed:
        return 0
