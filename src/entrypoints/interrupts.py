"""Ctrl-C while serving on stdio: a quiet exit with code 130, whenever it comes; SIGTERM alike, with 143.

Before the event loop runs (importing the SDK, building the server), a KeyboardInterrupt can land inside a C
extension that turns it into another error (pydantic-core reports a SchemaError, with a traceback); nothing is
open yet, so until serving starts Ctrl-C simply ends the process. While serving, asyncio's own handler cancels the
server and the lifespan stops the jobs and closes the state store; but the SDK's stdin reader sits in a worker
thread blocked in read(), which no cancellation stops, so the process would wait for a line that never comes. Once
the lifespan has closed everything, the process leaves instead.

SIGTERM is what a client sends when the server has not left soon enough after stdin closed (the MCP lifecycle), and
what systemd or `docker stop` send. While serving it takes Ctrl-C's path, so a call in flight is cancelled and
recorded as such and its estimate released, instead of the process ending on the spot with its jobs left working.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Any


class StdioInterrupts:
    """What Ctrl-C does at each stage of a stdio server's life."""

    def __init__(self, leave: Callable[[int], Any], code: int, terminated_code: int) -> None:
        self._leave = leave
        self._code = code
        self._terminated_code = terminated_code
        self._seen: int | None = None  # the exit code of the signal that stopped the server

    def while_starting(self) -> None:
        """Until serving starts, Ctrl-C ends the process at once."""
        signal.signal(signal.SIGINT, lambda signum, frame: self._leave(self._code))

    def before_serving(self) -> None:
        """Give Ctrl-C back to Python, so that the event loop installs its handler (which cancels the server),
        and SIGTERM its default: uvicorn (HTTP) takes it over and, after its clean shutdown, ends the process by
        the signal itself, the ending a service manager counts as clean (an exit code 143 it would not)."""
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch(self) -> None:
        """Inside the running loop: note a Ctrl-C or SIGTERM, then let the loop's Ctrl-C handler cancel the
        server."""
        loop_handler = signal.getsignal(signal.SIGINT)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self._seen = self._terminated_code if signum == signal.SIGTERM else self._code
            if callable(loop_handler):
                loop_handler(signal.SIGINT, frame)

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

    def after_shutdown(self) -> None:
        """The lifespan has closed everything: after a signal, leave now rather than wait on stdin."""
        if self._seen is not None:
            self._leave(self._seen)


def pass_on(handler: Any, signum: int, frame: FrameType | None) -> None:
    """Hand a signal to a Ctrl-C handler from signal.getsignal (the event loop's, ours, or none set from Python:
    then Python's own, which raises KeyboardInterrupt)."""
    (handler if callable(handler) else signal.default_int_handler)(signum, frame)
