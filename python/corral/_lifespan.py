"""The ASGI lifespan protocol for one worker (docs/PROTOCOL.md, "Lifespan").

Startup runs after the app is loaded and before HELLO; shutdown when the
worker exits, after its requests have finished. No frames: the result of
startup is HELLO or BOOTFAIL, problems at shutdown go to the log.
"""

import asyncio

from ._request import _describe, _format_traceback

LIFESPAN_ASGI = {"version": "3.0", "spec_version": "2.0"}


class StartupFailed(Exception):
    """Lifespan startup failed: ``error`` and ``traceback`` for BOOTFAIL."""

    def __init__(self, error, traceback=""):
        Exception.__init__(self, error)
        self.error = error
        self.traceback = traceback


class Lifespan:
    """Runs the app's lifespan scope as one task.

    ``mode`` is "auto", "on" or "off"; ``status`` becomes "on" (startup
    completed), "off" (not run) or "unsupported" (the app raised on the
    lifespan scope, or returned, without completing startup).
    """

    def __init__(self, app, mode):
        self.app = app
        self.mode = mode
        self.status = "off"
        self.state = {}
        self.task = None
        self.sent = False
        self.startup_sent = False
        self.shutdown_sent = False
        self.startup_done = None
        self.shutdown_asked = None
        self.shutdown_done = None

    async def startup(self):
        """Run startup; raises StartupFailed."""
        if self.mode == "off":
            return
        loop = asyncio.get_running_loop()
        self.startup_done = loop.create_future()
        self.shutdown_asked = loop.create_future()
        self.shutdown_done = loop.create_future()
        scope = {"type": "lifespan", "asgi": dict(LIFESPAN_ASGI), "state": self.state}
        self.task = loop.create_task(self._main(scope))
        await asyncio.wait({self.startup_done, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if self.startup_done.done():
            failed = self.startup_done.result()
            if failed is not None:
                raise StartupFailed(failed)
            self.status = "on"
            return
        exc = self.task.exception() if not self.task.cancelled() else asyncio.CancelledError()
        if exc is None:
            # Returned without a word: the app does not do lifespan.
            self.status = "unsupported"
            return
        if self.mode == "auto" and not self.sent:
            self.status = "unsupported"
            return
        raise StartupFailed(
            _describe(type(exc), exc), _format_traceback(type(exc), exc, exc.__traceback__)
        )

    async def _main(self, scope):
        await self.app(scope, self.receive, self.send)

    async def receive(self):
        if not self.startup_sent:
            self.startup_sent = True
            return {"type": "lifespan.startup"}
        if not self.shutdown_sent:
            await self.shutdown_asked
            self.shutdown_sent = True
            return {"type": "lifespan.shutdown"}
        await asyncio.get_running_loop().create_future()  # nothing more, ever

    async def send(self, message):
        try:
            kind = message["type"]
        except (TypeError, KeyError):
            kind = None
        self.sent = True
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            if self.startup_done.done():
                raise RuntimeError("ASGI protocol violation: %s sent twice" % kind)
            if kind == "lifespan.startup.failed":
                self.startup_done.set_result(_message(message, kind))
            else:
                self.startup_done.set_result(None)
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            if not self.shutdown_sent:
                raise RuntimeError("ASGI protocol violation: %s before lifespan.shutdown" % kind)
            if self.shutdown_done.done():
                raise RuntimeError("ASGI protocol violation: %s sent twice" % kind)
            if kind == "lifespan.shutdown.failed":
                self.shutdown_done.set_result(_message(message, kind))
            else:
                self.shutdown_done.set_result(None)
        else:
            raise RuntimeError(
                "ASGI protocol violation: unexpected message %r in the lifespan scope" % (message,)
            )

    async def shutdown(self, timeout, log):
        """Run shutdown, at most ``timeout`` seconds; problems go to
        ``log(level, message)``. Never raises."""
        if self.status != "on":
            return
        task = self.task
        if task.done():
            self._report_task(log)
            return
        self.shutdown_asked.set_result(None)
        await asyncio.wait({self.shutdown_done, task}, timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        if self.shutdown_done.done():
            failed = self.shutdown_done.result()
            if failed is not None:
                log("error", "lifespan shutdown failed: %s" % failed)
        elif task.done():
            self._report_task(log)
        else:
            log("error", "lifespan shutdown did not complete within %g seconds" % timeout)
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)

    def _report_task(self, log):
        if self.task.cancelled():
            return
        exc = self.task.exception()
        if exc is None:
            return
        log("error", "lifespan: the app raised: %s\n%s" % (
            _describe(type(exc), exc), _format_traceback(type(exc), exc, exc.__traceback__)))


def _message(message, kind):
    text = message.get("message", "")
    text = "" if text is None else str(text)
    return text or kind
