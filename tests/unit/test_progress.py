"""Heartbeats between progress steps: they creep towards the next step and never pass the total."""

from __future__ import annotations

import anyio

from gpt_image_2_mcp.entrypoints.progress import HeartbeatReporter


class Sent:
    """What a request context would send to the client as progress notifications."""

    def __init__(self) -> None:
        self.notifications: list[tuple[float, float | None, str]] = []
        self.some_beats = anyio.Event()

    async def report_progress(self, progress: float, total: float | None, message: str) -> None:
        self.notifications.append((progress, total, message))
        if len(self.notifications) >= 4:
            self.some_beats.set()


async def test_heartbeats_creep_between_steps_and_stop_once_the_last_step_is_reported():
    sent = Sent()
    reporter = HeartbeatReporter(sent)
    async with anyio.create_task_group() as group:
        group.start_soon(reporter.beat_every, 0.001)
        await reporter.report(1, 2, "drawing")
        await sent.some_beats.wait()
        await reporter.report(2, 2, "saved")  # the job still has its record to write: beats go on meanwhile
        await anyio.sleep(0.05)
        group.cancel_scope.cancel()
    progress = [p for p, _, _ in sent.notifications]
    assert progress == sorted(set(progress))  # every notification increases
    assert all(p < 2 for p in progress[:-1]) and sent.notifications[-1] == (2, 2, "saved")


async def test_a_step_that_comes_after_heartbeats_crept_past_it_is_sent_above_them():
    # The first step of a slow start (or one after a long cost confirmation) comes after heartbeats were sent.
    sent = Sent()
    reporter = HeartbeatReporter(sent)
    async with anyio.create_task_group() as group:
        group.start_soon(reporter.beat_every, 0.001)
        await sent.some_beats.wait()  # beats before any step: 0.45, 0.6, 0.675, ...
        await reporter.report(0, 2, "request accepted")
        await reporter.report(1, 2, "partial image 1 of 1 received")
        await anyio.sleep(0.02)
        await reporter.report(2, 2, "saved")
        group.cancel_scope.cancel()
    progress = [p for p, _, _ in sent.notifications]
    assert progress == sorted(set(progress)) and all(p < 2 for p in progress[:-1])
    assert sent.notifications[-1] == (2, 2, "saved") and (1, 2, "partial image 1 of 1 received") in sent.notifications
