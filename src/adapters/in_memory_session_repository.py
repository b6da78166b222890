"""InMemorySessionRepository: edit sessions in a dict, with an LRU cap and an idle TTL."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from gpt_image_2_mcp.domain.errors import SessionNotFound
from gpt_image_2_mcp.domain.ports import SessionRepository
from gpt_image_2_mcp.domain.sessions import EditSession

NOT_FOUND_HINT = "Call list_edit_sessions to see live sessions, or start_edit_session to begin a new one."


class InMemorySessionRepository(SessionRepository):
    """Holds paths and metadata only (images stay on disk), so the cap is bookkeeping, not memory.

    `max_sessions=0` means no cap; `ttl_ms=0` means sessions never expire.
    """

    def __init__(self, max_sessions: int = 20, ttl_ms: int = 3_600_000, clock: Callable[[], float] = time.time):
        self._max = max_sessions
        self._ttl_s = ttl_ms / 1000
        self._clock = clock
        self._sessions: OrderedDict[str, EditSession] = OrderedDict()
        self._last_used: dict[str, float] = {}

    def add(self, session: EditSession) -> None:
        self._expire()
        self._sessions[session.id] = session
        self._last_used[session.id] = self._clock()
        while self._max and len(self._sessions) > self._max:
            evicted, _ = self._sessions.popitem(last=False)
            self._last_used.pop(evicted, None)

    def save(self, session: EditSession) -> None:
        # An upsert: a session that expired while its turn ran comes back with that turn.
        self._sessions[session.id] = session
        self._sessions.move_to_end(session.id)
        self._last_used[session.id] = self._clock()

    def get(self, session_id: str) -> EditSession:
        self._expire()
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionNotFound(f"No live edit session {session_id!r} (unknown, ended or expired). {NOT_FOUND_HINT}")
        self._sessions.move_to_end(session_id)
        self._last_used[session_id] = self._clock()
        return session

    def remove(self, session_id: str) -> EditSession:
        session = self.get(session_id)
        del self._sessions[session_id]
        self._last_used.pop(session_id, None)
        return session

    def list(self) -> list[EditSession]:
        self._expire()
        return list(reversed(self._sessions.values()))

    def _expire(self) -> None:
        if not self._ttl_s:
            return
        deadline = self._clock() - self._ttl_s
        for session_id in [s for s, used in self._last_used.items() if used < deadline]:
            self._sessions.pop(session_id, None)
            self._last_used.pop(session_id, None)
