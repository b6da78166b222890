"""InMemorySessionRepository: edit sessions in a dict per owner, with an LRU cap and an idle TTL."""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable

from gpt_image_2_mcp.domain.errors import SessionMovedOn, SessionNotFound
from gpt_image_2_mcp.domain.ports import SessionRepository
from gpt_image_2_mcp.domain.sessions import EditSession, Turn

NOT_FOUND_HINT = "Call list_edit_sessions to see live sessions, or start_edit_session to begin a new one."


def not_found(session_id: str) -> SessionNotFound:
    return SessionNotFound(f"No live edit session {session_id!r} (unknown, ended or expired). {NOT_FOUND_HINT}")


def moved_on(session_id: str, last_turn: int) -> SessionMovedOn:
    return SessionMovedOn(
        f"Edit session {session_id} moved on to turn {last_turn} in another process while this turn was being "
        "made; this image is kept on disk but not recorded as a turn. Call continue_edit_session again "
        "(from_turn picks the turn to edit)."
    )


def copy_of(session: EditSession) -> EditSession:
    """A copy whose turn list the caller may change without changing what is stored (as in any real store)."""
    return dataclasses.replace(session, turns=list(session.turns))


class InMemorySessionRepository(SessionRepository):
    """For throwaway runs (`memory://`) and tests: gone with the process.

    `max_sessions=0` means no cap; `ttl_ms=0` means sessions never expire.
    """

    def __init__(self, max_sessions: int = 20, ttl_ms: int = 3_600_000, clock: Callable[[], float] = time.time):
        self._max = max_sessions
        self._ttl_s = ttl_ms / 1000
        self._clock = clock
        self._owners: dict[str, OrderedDict[str, tuple[EditSession, float]]] = {}

    async def add(self, session: EditSession) -> None:
        sessions = self._live(session.owner)
        sessions[session.id] = (copy_of(session), self._clock())
        while self._max and len(sessions) > self._max:
            sessions.popitem(last=False)

    async def get(self, owner: str, session_id: str) -> EditSession:
        return copy_of(self._touch(owner, session_id))

    async def append_turn(self, owner: str, session_id: str, turn: Turn) -> None:
        session = self._touch(owner, session_id)
        if turn.turn != session.next_turn:
            raise moved_on(session_id, len(session.turns))
        session.turns.append(turn)
        session.updated_at = turn.created_at

    async def remove(self, owner: str, session_id: str) -> EditSession:
        session = self._touch(owner, session_id)
        del self._owners[owner][session_id]
        return session

    async def list(self, owner: str) -> list[EditSession]:
        return [copy_of(session) for session, _ in reversed(self._live(owner).values())]

    def _touch(self, owner: str, session_id: str) -> EditSession:
        sessions = self._live(owner)
        if session_id not in sessions:
            raise not_found(session_id)
        session, _ = sessions[session_id]
        sessions[session_id] = (session, self._clock())
        sessions.move_to_end(session_id)
        return session

    def _live(self, owner: str) -> OrderedDict[str, tuple[EditSession, float]]:
        sessions = self._owners.setdefault(owner, OrderedDict())
        if self._ttl_s:
            deadline = self._clock() - self._ttl_s
            for session_id in [s for s, (_, used) in sessions.items() if used < deadline]:
                del sessions[session_id]
        return sessions
