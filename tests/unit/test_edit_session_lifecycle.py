"""Edit sessions over time: the idle TTL counts from the last touch, and ending waits for a running turn."""

import asyncio

from gpt_image_2_mcp.adapters.in_memory_session_repository import InMemorySessionRepository
from gpt_image_2_mcp.domain.edit_sessions import EditSessions
from gpt_image_2_mcp.domain.services import EditInputs
from tests.conftest import make_container, write_png
from tests.contracts.stores import Clock


async def in_the_backend(container, calls: int) -> None:
    """Until the fake backend has been called `calls` times (the last one is making its image now)."""
    for _ in range(500):
        if len(container.fake_backend().calls) >= calls:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the backend was not called {calls} times")


async def test_a_turn_longer_than_the_idle_ttl_does_not_expire_its_own_session(tmp_path):
    # A real clock and a short TTL: the 0.6 s turn outlasts the 0.3 s TTL, as a 4K image outlasts a short one.
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), session_ttl_ms=300,
                               state_url="memory://")
    sessions = container.edit_sessions()
    started = await sessions.start("x", EditInputs((str(write_png(tmp_path / "a.png", (64, 64))),)))
    container.fake_backend().latency_s = 0.6
    second = await sessions.continue_(started.session_id, "y")
    container.fake_backend().latency_s = 0
    third = await sessions.continue_(started.session_id, "z")  # right after the long turn
    assert (second.turn, third.turn) == (2, 3)
    assert [s.id for s in await sessions.list()] == [started.session_id]


async def test_an_idle_session_still_expires(tmp_path):
    clock = Clock()
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"))
    repository = InMemorySessionRepository(max_sessions=10, ttl_ms=60_000, clock=clock)
    sessions = EditSessions(container.edit_image(), repository, clock=clock, keep_alive_s=20)
    started = await sessions.start("x", EditInputs((str(write_png(tmp_path / "a.png", (64, 64))),)))
    assert [s.id for s in await sessions.list()] == [started.session_id]
    clock.now += 61
    assert await sessions.list() == []


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
    assert await sessions.list() == []


async def test_a_turn_whose_session_was_ended_elsewhere_meanwhile_returns_its_paid_image_with_a_note(tmp_path):
    # Another replica ends the session (its wait for running turns is its own process's): this turn's image
    # was paid for and saved, so it is the result, catalogued, with a note that the session is gone.
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url="memory://")
    here = container.edit_sessions()
    elsewhere = EditSessions(container.edit_image(), container.session_repository())  # the same store
    started = await here.start("x", EditInputs((str(write_png(tmp_path / "a.png", (64, 64))),)))
    container.fake_backend().latency_s = 0.3
    turn = asyncio.create_task(here.continue_(started.session_id, "y"))
    await in_the_backend(container, calls=2)
    await elsewhere.end(started.session_id)  # does not wait: the turn runs in "another process"
    finished = await turn
    assert finished.images and (tmp_path / "out" / finished.images[0].filename).is_file()
    assert any("ended while this turn was being made" in note for note in finished.notes)
    catalogued = await container.image_catalogue().get(finished.owner, finished.images[0].image_id)
    assert catalogued.image.path == finished.images[0].path


async def test_a_new_session_pushes_out_an_idle_one_not_one_whose_turn_is_running(tmp_path):
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url="memory://",
                               session_max=2)
    sessions = container.edit_sessions()
    image = EditInputs((str(write_png(tmp_path / "a.png", (64, 64))),))
    running = await sessions.start("running", image)
    container.fake_backend().latency_s = 0.3
    turn = asyncio.create_task(sessions.continue_(running.session_id, "y"))
    await in_the_backend(container, calls=2)
    container.fake_backend().latency_s = 0
    idle = await sessions.start("idle", image)  # used after `running` was: by recency alone, `running` goes first
    await sessions.start("new", image)
    finished = await turn
    assert finished.turn == 2 and not any("ended while this turn" in note for note in finished.notes)
    left = {s.id for s in await sessions.list()}
    assert running.session_id in left and idle.session_id not in left and len(left) == 2
