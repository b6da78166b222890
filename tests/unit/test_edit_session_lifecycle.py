"""Edit sessions over time: the idle TTL counts from the last touch, and ending waits for a running turn."""

import asyncio

from gpt_image_2_mcp.adapters.fake_image_backend import FakeImageBackend
from gpt_image_2_mcp.adapters.in_memory_session_repository import InMemorySessionRepository
from gpt_image_2_mcp.domain.edit_sessions import EditSessions
from gpt_image_2_mcp.domain.services import EditInputs
from tests.conftest import make_container, write_png


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class SlowTurnBackend(FakeImageBackend):
    """A fake backend whose edits take `turn_s` seconds of the test's clock."""

    def __init__(self, clock: Clock, turn_s: float) -> None:
        super().__init__()
        self.clock, self.turn_s = clock, turn_s

    async def edit(self, request, on_partial=None):
        self.clock.now += self.turn_s
        return await super().edit(request, on_partial)


def sessions_with(tmp_path, clock, backend, ttl_ms):
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"))
    container.fake_backend.override(backend)
    repository = InMemorySessionRepository(max_sessions=10, ttl_ms=ttl_ms, clock=clock)
    return EditSessions(container.edit_image(), repository, clock=clock)


async def test_a_turn_longer_than_the_idle_ttl_does_not_expire_its_own_session(tmp_path):
    clock = Clock()
    sessions = sessions_with(tmp_path, clock, SlowTurnBackend(clock, turn_s=90), ttl_ms=60_000)
    first = write_png(tmp_path / "a.png", (64, 64))
    started = await sessions.start("x", EditInputs((str(first),)))
    second = await sessions.continue_(started.session_id, "y")
    third = await sessions.continue_(started.session_id, "z")  # right after a 90 s turn with a 60 s TTL
    assert (second.turn, third.turn) == (2, 3)
    assert [s.id for s in sessions.list()] == [started.session_id]


async def test_an_idle_session_still_expires(tmp_path):
    clock = Clock()
    sessions = sessions_with(tmp_path, clock, SlowTurnBackend(clock, turn_s=0), ttl_ms=60_000)
    started = await sessions.start("x", EditInputs((str(write_png(tmp_path / "a.png", (64, 64))),)))
    clock.now += 61
    assert sessions.list() == []
    assert started.session_id


async def test_ending_a_session_waits_for_its_running_turn_and_lists_every_file(tmp_path):
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"))
    sessions = container.edit_sessions()
    started = await sessions.start("x", EditInputs((str(write_png(tmp_path / "a.png", (64, 64))),)))
    container.fake_backend().latency_s = 0.3
    turn = asyncio.create_task(sessions.continue_(started.session_id, "y"))
    await asyncio.sleep(0.05)  # the turn is in the backend now
    ended = await sessions.end(started.session_id)
    finished = await turn
    assert finished.turn == 2
    assert [t.turn for t in ended.turns] == [1, 2]
    assert finished.images[0].path in ended.turns[1].file_paths
    assert sessions.list() == []
