"""SqliteSessionRepository: edit sessions in a SQLite file, shared by every process that opens it, with an LRU
cap per owner and an idle TTL."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable

from gpt_image_2_mcp.domain.ports import SessionRepository
from gpt_image_2_mcp.domain.sessions import EditSession, Turn

from .in_memory_session_repository import moved_on, not_found
from .sqlite_database import SqliteDatabase
from .state_codec import session_from_json, session_to_json, turn_from_json, turn_to_json

MISSING = -1
"""What a transaction returns for a session that is not there (turn numbers count from 0 up)."""


class SqliteSessionRepository(SessionRepository):
    """The embedded default store of edit sessions. A session is a row, each turn a row of its own, so that
    appending a turn is a single checked insert inside one write transaction.

    `max_sessions=0` means no cap; `ttl_ms=0` means sessions never expire. Recency is a per-owner counter
    bumped on every touch, so the LRU order is the order of touches even when the clock does not move.
    """

    def __init__(self, db: SqliteDatabase, max_sessions: int = 20, ttl_ms: int = 3_600_000,
                 clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._max = max_sessions
        self._ttl_s = ttl_ms / 1000
        self._clock = clock

    async def add(self, session: EditSession) -> None:
        """Store a new session with its turns, then evict the owner's least recently used past the cap."""
        now, owner = self._clock(), session.owner
        data = dump(session_to_json(session))
        turns = [(owner, session.id, t.turn, dump(turn_to_json(t))) for t in session.turns]

        def add(connection: sqlite3.Connection) -> None:
            self._sweep(connection, now)
            connection.execute("DELETE FROM sessions WHERE owner = ? AND id = ?", (owner, session.id))
            connection.execute(
                "INSERT INTO sessions (owner, id, created_at, updated_at, last_used, recency, data) "
                f"VALUES (?, ?, ?, ?, ?, ({NEXT_RECENCY}), ?)",
                (owner, session.id, session.created_at, session.updated_at, now, owner, data))
            connection.executemany("INSERT INTO turns (owner, session_id, turn, data) VALUES (?, ?, ?, ?)", turns)
            if self._max:
                connection.execute(
                    "DELETE FROM sessions WHERE owner = ? AND id IN (SELECT id FROM sessions WHERE owner = ? "
                    "ORDER BY recency DESC LIMIT -1 OFFSET ?)", (owner, owner, self._max))

        await self._db.write(add)

    async def get(self, owner: str, session_id: str) -> EditSession:
        """The live session; reading it counts as a use."""
        now = self._clock()

        def get(connection: sqlite3.Connection) -> EditSession | None:
            self._sweep(connection, now)
            return load(connection, owner, session_id) if touch(connection, owner, session_id, now) else None

        found = await self._db.write(get)
        if found is None:
            raise not_found(session_id)
        return found

    async def append_turn(self, owner: str, session_id: str, turn: Turn) -> None:
        """Insert `turn` only if the stored session still ends at turn.turn - 1; the check and the insert are
        one write transaction, and writers of every process on the file take turns."""
        now, data = self._clock(), dump(turn_to_json(turn))

        def append(connection: sqlite3.Connection) -> int | None:
            self._sweep(connection, now)
            if not touch(connection, owner, session_id, now):
                return MISSING
            last = last_turn(connection, owner, session_id)
            if last != turn.turn - 1:
                return last
            # The primary key (owner, session_id, turn) would refuse a duplicate even if this check were wrong.
            connection.execute("INSERT INTO turns (owner, session_id, turn, data) VALUES (?, ?, ?, ?)",
                               (owner, session_id, turn.turn, data))
            connection.execute("UPDATE sessions SET updated_at = ? WHERE owner = ? AND id = ?",
                               (turn.created_at, owner, session_id))
            return None

        refused = await self._db.write(append)
        if refused == MISSING:
            raise not_found(session_id)
        if refused is not None:
            raise moved_on(session_id, refused)

    async def remove(self, owner: str, session_id: str) -> EditSession:
        """Forget the session (its turns go with it) and return it as it was."""
        now = self._clock()

        def remove(connection: sqlite3.Connection) -> EditSession | None:
            self._sweep(connection, now)
            found = load(connection, owner, session_id)
            connection.execute("DELETE FROM sessions WHERE owner = ? AND id = ?", (owner, session_id))
            return found

        found = await self._db.write(remove)
        if found is None:
            raise not_found(session_id)
        return found

    async def list(self, owner: str) -> list[EditSession]:
        """The owner's live sessions, most recently used first. A read: it touches nothing, and leaves expired
        rows for the next write to sweep (they are filtered out here)."""
        deadline = self._deadline(self._clock())

        def listing(connection: sqlite3.Connection) -> list[EditSession]:
            rows = connection.execute(
                "SELECT id, updated_at, data FROM sessions WHERE owner = ? AND last_used >= ? ORDER BY recency DESC",
                (owner, deadline)).fetchall()
            turns: dict[str, list[Turn]] = {}
            for session_id, turn_data in connection.execute(
                    "SELECT session_id, data FROM turns WHERE owner = ? ORDER BY session_id, turn", (owner,)):
                turns.setdefault(session_id, []).append(turn_from_json(json.loads(turn_data)))
            return [session_of(updated, data, turns.get(session_id, [])) for session_id, updated, data in rows]

        return await self._db.read(listing)

    def _deadline(self, now: float) -> float:
        return now - self._ttl_s if self._ttl_s else -math.inf

    def _sweep(self, connection: sqlite3.Connection, now: float) -> None:
        # Idle TTL: a session last used before the deadline is gone, for every owner (its turns cascade).
        if self._ttl_s:
            connection.execute("DELETE FROM sessions WHERE last_used < ?", (self._deadline(now),))


NEXT_RECENCY = "SELECT IFNULL(MAX(recency), 0) + 1 FROM sessions WHERE owner = ?"
"""The owner's next recency number; the write transaction makes it unique."""


def touch(connection: sqlite3.Connection, owner: str, session_id: str, now: float) -> bool:
    """Mark the session used now; False if there is no such session."""
    cursor = connection.execute(
        f"UPDATE sessions SET last_used = ?, recency = ({NEXT_RECENCY}) WHERE owner = ? AND id = ?",
        (now, owner, owner, session_id))
    return cursor.rowcount == 1


def last_turn(connection: sqlite3.Connection, owner: str, session_id: str) -> int:
    row = connection.execute("SELECT IFNULL(MAX(turn), 0) FROM turns WHERE owner = ? AND session_id = ?",
                             (owner, session_id)).fetchone()
    return row[0]


def load(connection: sqlite3.Connection, owner: str, session_id: str) -> EditSession | None:
    row = connection.execute("SELECT updated_at, data FROM sessions WHERE owner = ? AND id = ?",
                             (owner, session_id)).fetchone()
    if row is None:
        return None
    turns = [turn_from_json(json.loads(data)) for (data,) in connection.execute(
        "SELECT data FROM turns WHERE owner = ? AND session_id = ? ORDER BY turn", (owner, session_id))]
    return session_of(*row, turns)


def session_of(updated_at: float, data: str, turns: list[Turn]) -> EditSession:
    # The row's updated_at moves with each appended turn; the JSON keeps the session as it was added.
    return session_from_json({**json.loads(data), "updated_at": updated_at}, turns)


def dump(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))
