"""Finishing what was paid for: once the images are bought and saved, stopping only loses them."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def to_the_end(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` to its end even if this task is cancelled meanwhile (Ctrl-C, a client that left, a cancel
    from another process), and return its result.

    For the steps after the images are saved (booking the cost, cataloguing, recording a session's turn):
    a cancellation there would leave paid-for files unreported, uncatalogued and off the ledger. One that
    arrives meanwhile is let go (uncancel, as asyncio asks of code that declines a cancellation); whatever
    still wants this task stopped stops it at its next await, with the outcome already in hand."""
    task = asyncio.ensure_future(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # the work itself was cancelled (the loop is closing): nothing to finish
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
