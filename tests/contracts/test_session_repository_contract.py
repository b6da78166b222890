"""One contract for every SessionRepository: memory, SQLite and Redis behave alike."""

from __future__ import annotations

import asyncio

import pytest

from gpt_image_2_mcp.domain.errors import SessionMovedOn, SessionNotFound
from gpt_image_2_mcp.domain.render_settings import ImageSize, OutputFormat, Quality, RenderOptions
from gpt_image_2_mcp.domain.sessions import EditSession, Turn

NOW = 1_700_000_000.0


def session(number: int, owner: str = "alice", turns: int = 1) -> EditSession:
    options = RenderOptions(size=ImageSize(1536, 1024), quality=Quality.LOW, output_format=OutputFormat.WEBP,
                            output_compression=60, user="u-1")
    made = EditSession(id=f"es_{number}", created_at=NOW, options=options, owner=owner,
                       output_dir=f"project-{number}", filename_prefix="hero")
    for index in range(turns):
        made.record(f"prompt {index + 1}", (f"/images/{number}-{index + 1}.png",), NOW + index,
                    index or None, (f"img_{number}_{index + 1}",))
    return made


def next_turn(of: EditSession, prompt: str = "next", parent: int | None = None) -> Turn:
    return Turn(of.next_turn, prompt, (f"/images/{of.id}-{of.next_turn}.png",), NOW + 100, parent or len(of.turns),
                (f"img_{of.id}_{of.next_turn}",))


async def test_a_session_comes_back_as_it_was_stored(store):
    repository = store.sessions()
    original = session(1, turns=2)
    await repository.add(original)
    loaded = await repository.get("alice", "es_1")
    assert (loaded.id, loaded.owner, loaded.created_at, loaded.options) == (
        "es_1", "alice", NOW, original.options)
    assert (loaded.output_dir, loaded.filename_prefix) == ("project-1", "hero")
    assert loaded.turns == original.turns
    assert loaded.last.image_ids == ("img_1_2",) and loaded.last.parent_turn == 1


async def test_an_unknown_session_says_how_to_find_one(store):
    with pytest.raises(SessionNotFound, match="list_edit_sessions"):
        await store.sessions().get("alice", "es_nope")


async def test_another_owner_sees_nothing_of_a_session(store):
    repository = store.sessions()
    await repository.add(session(1, owner="alice"))
    assert await repository.list("bob") == []
    for attempt in (repository.get("bob", "es_1"), repository.remove("bob", "es_1"),
                    repository.append_turn("bob", "es_1", next_turn(session(1)))):
        with pytest.raises(SessionNotFound):
            await attempt
    assert [s.id for s in await repository.list("alice")] == ["es_1"]


async def test_a_turn_is_appended_once_and_a_stale_turn_is_refused_naming_the_latest(store):
    repository = store.sessions()
    await repository.add(session(1))
    stored = await repository.get("alice", "es_1")
    turn = next_turn(stored)
    await repository.append_turn("alice", "es_1", turn)
    with pytest.raises(SessionMovedOn, match="moved on to turn 2"):
        await repository.append_turn("alice", "es_1", turn)  # the same turn number again
    loaded = await repository.get("alice", "es_1")
    assert [t.turn for t in loaded.turns] == [1, 2] and loaded.last == turn
    assert loaded.updated_at == turn.created_at


async def test_two_writers_racing_for_one_turn_number_leave_one_turn(store):
    first, second = store.sessions(), store.sessions()  # two processes on one store, where it persists
    await first.add(session(1))
    base = await first.get("alice", "es_1")
    results = await asyncio.gather(
        first.append_turn("alice", "es_1", next_turn(base, "from A")),
        second.append_turn("alice", "es_1", next_turn(base, "from B")),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, SessionMovedOn) for r in results) == 1
    assert [t.turn for t in (await first.get("alice", "es_1")).turns] == [1, 2]


async def test_the_least_recently_used_session_of_an_owner_is_evicted_past_the_cap(store):
    repository = store.sessions(max_sessions=2)
    await repository.add(session(1))
    store.advance(1)
    await repository.add(session(2))
    store.advance(1)
    await repository.get("alice", "es_1")  # a touch: es_2 is now the least recently used
    store.advance(1)
    await repository.add(session(3))
    await repository.add(session(9, owner="bob"))  # another owner's session evicts nothing of alice's
    assert [s.id for s in await repository.list("alice")] == ["es_3", "es_1"]
    with pytest.raises(SessionNotFound):
        await repository.get("alice", "es_2")


async def test_an_idle_session_expires_and_every_touch_keeps_it_alive(store):
    repository = store.sessions(ttl_ms=1_000)
    await repository.add(session(1))
    await repository.add(session(2))
    for _ in range(3):
        store.advance(0.6)
        await repository.append_turn("alice", "es_1", next_turn(await repository.get("alice", "es_1")))
    store.advance(0.6)
    assert [s.id for s in await repository.list("alice")] == ["es_1"]
    with pytest.raises(SessionNotFound):
        await repository.get("alice", "es_2")


async def test_removing_returns_the_session_and_forgets_it(store):
    repository = store.sessions()
    await repository.add(session(1, turns=3))
    removed = await repository.remove("alice", "es_1")
    assert [t.turn for t in removed.turns] == [1, 2, 3]
    with pytest.raises(SessionNotFound):
        await repository.get("alice", "es_1")
    with pytest.raises(SessionNotFound):
        await repository.remove("alice", "es_1")


async def test_sessions_are_listed_most_recently_used_first(store):
    repository = store.sessions()
    for number in (1, 2, 3):
        await repository.add(session(number))
        store.advance(1)
    await repository.get("alice", "es_2")
    assert [s.id for s in await repository.list("alice")] == ["es_2", "es_3", "es_1"]


async def test_a_new_process_on_the_same_store_sees_the_sessions(persistent_store):
    store = persistent_store
    await store.sessions().add(session(1, turns=2))
    reopened = store.sessions()
    assert [t.turn for t in (await reopened.get("alice", "es_1")).turns] == [1, 2]
