import pytest

from gpt_image_2_mcp.adapters.in_memory_session_repository import InMemorySessionRepository
from gpt_image_2_mcp.domain.errors import SessionNotFound
from gpt_image_2_mcp.domain.render_settings import RenderOptions
from gpt_image_2_mcp.domain.sessions import EditSession


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def session(i, now=1000.0):
    s = EditSession(id=f"es_{i}", created_at=now, options=RenderOptions())
    s.record("p", (f"/tmp/{i}.png",), now, None)
    return s


def test_the_least_recently_used_session_is_evicted_past_the_cap():
    repo = InMemorySessionRepository(max_sessions=2, ttl_ms=0)
    repo.add(session(1))
    repo.add(session(2))
    repo.get("es_1")  # touch: 2 is now the least recently used
    repo.add(session(3))
    assert [s.id for s in repo.list()] == ["es_3", "es_1"]
    with pytest.raises(SessionNotFound, match="list_edit_sessions"):
        repo.get("es_2")


def test_zero_means_no_cap():
    repo = InMemorySessionRepository(max_sessions=0, ttl_ms=0)
    for i in range(50):
        repo.add(session(i))
    assert len(repo.list()) == 50


def test_idle_sessions_expire_after_the_ttl_and_use_keeps_them_alive():
    clock = Clock()
    repo = InMemorySessionRepository(max_sessions=0, ttl_ms=10_000, clock=clock)
    repo.add(session(1))
    repo.add(session(2))
    clock.now += 8
    repo.get("es_1")
    clock.now += 8
    assert [s.id for s in repo.list()] == ["es_1"]
    with pytest.raises(SessionNotFound, match="start_edit_session"):
        repo.get("es_2")


def test_removed_sessions_are_gone():
    repo = InMemorySessionRepository()
    repo.add(session(1))
    assert repo.remove("es_1").id == "es_1"
    with pytest.raises(SessionNotFound):
        repo.remove("es_1")
