"""Writes the state store refused after the images were saved, tried again until it answers.

A paid image's booking and its catalogue entry are written after its file (the file first: nothing paid for is
lost). The adapters retry a dropped connection for a second or two; an outage longer than that used to leave
the image off the ledger and out of the catalogue for good. The backlog keeps such writes and tries them again
in the background, and once more when the process stops; what still fails then is logged, naming the images.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from .errors import ImageServerError

log = logging.getLogger(__name__)

Write = Callable[[], Awaitable[object]]


class StoreBacklog:
    """The writes waiting for the state store, each retried in a task of its own."""

    def __init__(self, retry_every_s: float = 5.0, give_up_after_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._every = retry_every_s
        self._give_up_after = give_up_after_s
        self._clock = clock
        self._pending: dict[asyncio.Task[None], tuple[str, Write]] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def later(self, what: str, write: Write) -> None:
        """Try `write` again every few seconds until it succeeds (it must be safe to repeat). `what` says, for
        the log, what it writes."""
        task = asyncio.create_task(self._until_written(what, write), name=f"backlog: {what}")
        self._pending[task] = (what, write)
        task.add_done_callback(lambda done: self._pending.pop(done, None))

    async def finish(self) -> None:
        """The process is stopping: one last try of each write still pending, and an error in the log for each
        that fails (with what it was), since nothing tries it after this."""
        waiting = list(self._pending.items())
        for task, _ in waiting:
            task.cancel()
        for task, (what, write) in waiting:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            try:
                await write()
                log.info("%s: done on stopping", what)
            except ImageServerError as e:
                log.error("%s: not done, the state store did not answer before this process stopped (%s)", what, e)

    async def _until_written(self, what: str, write: Write) -> None:
        give_up_at = self._clock() + self._give_up_after
        while True:
            await asyncio.sleep(self._every)
            try:
                await write()
            except ImageServerError as e:
                if self._clock() >= give_up_at:
                    log.error("%s: given up, the state store did not answer for %.0f s (%s)", what,
                              self._give_up_after, e)
                    return
                continue
            log.info("%s: done once the state store answered again", what)
            return
