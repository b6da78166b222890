"""The edit-session use case: refine one picture over many turns, branching from any earlier turn."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Callable

from .errors import SessionNotFound
from .ports import ProgressReporter, SessionRepository
from .render_settings import RenderOptions, RenderOverrides
from .services import (
    DEFAULT_OPTIONS,
    DEFAULT_PLACEMENT,
    EditImage,
    EditInputs,
    Outcome,
    OutcomeKind,
    Placement,
    TurnOf,
    no_progress,
)
from .sessions import EditSession

NO_OVERRIDES = RenderOverrides()


def new_session_id() -> str:
    return f"es_{secrets.token_hex(6)}"


class EditSessions:
    """Iterative editing: each turn edits the previous (or a chosen) turn's image.

    Turns of one session run one at a time (a per-session lock), and ending a session waits for its running
    turn, so the list of files `end` returns is complete.
    """

    def __init__(
        self,
        edit: EditImage,
        repository: SessionRepository,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_session_id,
    ) -> None:
        self._edit = edit
        self._repository = repository
        self._clock = clock
        self._new_id = new_id
        self._locks: dict[str, asyncio.Lock] = {}

    async def start(
        self,
        prompt: str,
        inputs: EditInputs,
        options: RenderOptions = DEFAULT_OPTIONS,
        placement: Placement = DEFAULT_PLACEMENT,
        progress: ProgressReporter = no_progress,
    ) -> Outcome:
        session_id = self._new_id()
        outcome = await self._edit(
            prompt, inputs, options, placement, progress, TurnOf(session_id, 1), OutcomeKind.SESSION_START
        )
        now = self._clock()
        session = EditSession(id=session_id, created_at=now, options=options)
        turn = session.record(prompt, tuple(i.path for i in outcome.images), now, None)
        self._repository.add(session)
        return dataclasses.replace(outcome, session_id=session.id, turn=turn.turn)

    async def continue_(
        self,
        session_id: str,
        prompt: str,
        overrides: RenderOverrides = NO_OVERRIDES,
        from_turn: int | None = None,
        mask: str | None = None,
        placement: Placement = DEFAULT_PLACEMENT,
        progress: ProgressReporter = no_progress,
    ) -> Outcome:
        async with self._turn_lock(session_id):
            session = self._repository.get(session_id)
            base = session.turn(from_turn) if from_turn is not None else session.last
            options = overrides.apply_to(session.options)
            inputs = EditInputs((base.file_paths[0],), mask, own_references=True)
            turn_of = TurnOf(session.id, session.next_turn)
            outcome = await self._edit(prompt, inputs, options, placement, progress, turn_of, OutcomeKind.SESSION_TURN)
            turn = session.record(prompt, tuple(i.path for i in outcome.images), self._clock(), base.turn)
            # Saved at the end of the turn too: the idle TTL counts from the last touch, so a turn longer than
            # the TTL does not expire its own session.
            self._repository.save(session)
        return dataclasses.replace(outcome, session_id=session.id, turn=turn.turn, parent_turn=base.turn)

    async def end(self, session_id: str) -> EditSession:
        """Forget the session (its images stay on disk), once any running turn has finished."""
        async with self._turn_lock(session_id):
            session = self._repository.remove(session_id)
        self._locks.pop(session_id, None)
        return session

    def list(self) -> list[EditSession]:
        return self._repository.list()

    @contextlib.asynccontextmanager
    async def _turn_lock(self, session_id: str) -> AsyncIterator[None]:
        try:
            self._repository.get(session_id)  # fail fast, before waiting on the lock
        except SessionNotFound:
            self._locks.pop(session_id, None)  # an expired or evicted session's lock
            raise
        async with self._locks.setdefault(session_id, asyncio.Lock()):
            yield
