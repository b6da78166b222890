"""The backlog of state-store writes: tried again until they succeed, once more on stopping, logged if lost."""

from __future__ import annotations

import asyncio
import logging

from gpt_image_2_mcp.domain.backlog import StoreBacklog
from gpt_image_2_mcp.domain.errors import StateStoreError


class Store:
    """A write that fails while the store is down and counts its attempts."""

    def __init__(self) -> None:
        self.down = True
        self.attempts = 0
        self.written = asyncio.Event()
        self.tried_thrice = asyncio.Event()

    async def write(self) -> None:
        self.attempts += 1
        if self.attempts >= 3:
            self.tried_thrice.set()
        if self.down:
            raise StateStoreError("the state store is not answering")
        self.written.set()


async def test_a_write_is_tried_again_until_the_store_answers():
    backlog, store = StoreBacklog(retry_every_s=0.01), Store()
    backlog.later("cataloguing /out/a.png", store.write)
    await asyncio.wait_for(store.tried_thrice.wait(), 5)
    assert backlog.pending == 1 and not store.written.is_set()
    store.down = False
    await asyncio.wait_for(store.written.wait(), 5)
    await asyncio.sleep(0)
    assert backlog.pending == 0


async def test_on_stopping_each_pending_write_gets_a_last_try_and_a_lost_one_is_logged(caplog):
    backlog, lost, saved = StoreBacklog(retry_every_s=60), Store(), Store()
    backlog.later("cataloguing /out/lost.png", lost.write)
    backlog.later("booking $0.0400 for call c1", saved.write)
    saved.down = False  # back just before the process stops, before the next retry
    with caplog.at_level(logging.INFO):
        await backlog.finish()
    assert saved.written.is_set() and (lost.attempts, saved.attempts) == (1, 1)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "cataloguing /out/lost.png: not done" in errors[0]


async def test_a_write_is_given_up_after_the_time_allowed(caplog):
    backlog, store = StoreBacklog(retry_every_s=0.01, give_up_after_s=0.05), Store()
    backlog.later("booking $0.0100 for call c2", store.write)
    [retrying] = [task for task in asyncio.all_tasks() if task.get_name().startswith("backlog: ")]
    with caplog.at_level(logging.ERROR):
        await asyncio.wait_for(retrying, 5)
    assert backlog.pending == 0 and store.attempts >= 2 and "booking $0.0100 for call c2: given up" in caplog.text
