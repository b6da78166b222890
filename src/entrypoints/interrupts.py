"""Ctrl-C while serving on stdio: a quiet exit with code 130, whenever it comes.

Before the event loop runs (importing the SDK, building the server), a KeyboardInterrupt can land inside a C
extension that turns it into another error (pydantic-core reports a SchemaError, with a traceback); nothing is
open yet, so until serving starts Ctrl-C simply ends the process. While serving, asyncio's own handler cancels the
server and the lifespan stops the jobs and closes the state store; but the SDK's stdin reader sits in a worker
thread blocked in read(), which no cancellation stops, so the process would wait for a line that never comes. Once
the lifespan has closed everything, the process leaves instead.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Any


class StdioInterrupts:
    """What Ctrl-C does at each stage of a stdio server's life."""

    def __init__(self, leave: Callable[[int], Any], code: int) -> None:
        self._leave = leave
        self._code = code
        self._seen = False

    def while_starting(self) -> None:
        """Until serving starts, Ctrl-C ends the process at once."""
        signal.signal(signal.SIGINT, lambda signum, frame: self._leave(self._code))

    def before_serving(self) -> None:
        """Give Ctrl-C back to Python, so that the event loop installs its handler (which cancels the server)."""
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch(self) -> None:
        """Inside the running loop: note a Ctrl-C, then let the loop's own handler cancel the server."""
        loop_handler = signal.getsignal(signal.SIGINT)

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            self._seen = True
            if callable(loop_handler):
                loop_handler(signum, frame)

        signal.signal(signal.SIGINT, on_sigint)

    def after_shutdown(self) -> None:
        """The lifespan has closed everything: after a Ctrl-C, leave now rather than wait on stdin."""
        if self._seen:
            self._leave(self._code)
