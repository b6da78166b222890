"""The edit-session use case: refine one picture over many turns, branching from any earlier turn."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Callable

from .errors import ImageServerError, OwnImageUnreadable, SessionMovedOn, SessionNotFound, StateStoreError
from .finishing import to_the_end
from .outcomes import Outcome, OutcomeKind, Placement
from .ports import ProgressReporter, SessionRepository
from .render_settings import RenderOptions, RenderOverrides
from .services import DEFAULT_OPTIONS, DEFAULT_PLACEMENT, EditImage, EditInputs, TurnOf, no_progress
from .sessions import LOCAL_OWNER, EditSession, Turn

NO_OVERRIDES = RenderOverrides()


def new_session_id() -> str:
    return f"es_{secrets.token_hex(6)}"


class EditSessions:
    """Iterative editing: each turn edits the previous (or a chosen) turn's image.

    Within a process, turns of one session run one at a time (a per-session lock), and ending a session waits
    for its running turn, so the list of files `end` returns is complete. Across processes the store decides:
    a turn recorded meanwhile by another process makes this one fail with SessionMovedOn, its image kept.
    While a turn runs the session is touched every `keep_alive_s`, so a turn longer than the idle TTL does not
    expire its own session.
    """

    def __init__(
        self,
        edit: EditImage,
        repository: SessionRepository,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_session_id,
        keep_alive_s: float | None = None,
    ) -> None:
        self._edit = edit
        self._repository = repository
        self._clock = clock
        self._new_id = new_id
        self._keep_alive_s = keep_alive_s
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def start(
        self,
        prompt: str,
        inputs: EditInputs,
        options: RenderOptions = DEFAULT_OPTIONS,
        placement: Placement = DEFAULT_PLACEMENT,
        progress: ProgressReporter = no_progress,
    ) -> Outcome:
        session_id = self._new_id()
        outcome = await self._edit.make(
            prompt, inputs, options, placement, progress, TurnOf(session_id, 1), OutcomeKind.SESSION_START
        )
        now = self._clock()
        session = EditSession(id=session_id, created_at=now, options=options, owner=placement.owner,
                              output_dir=placement.output_dir, filename_prefix=placement.filename_prefix)
        turn = session.record(prompt, _paths(outcome), now, None, _ids(outcome))
        return await to_the_end(self._record_start(session, turn, outcome))

    async def _record_start(self, session: EditSession, turn: Turn, outcome: Outcome) -> Outcome:
        try:
            await self._touch_running(session.owner)
            await self._repository.add(session)
        except StateStoreError as e:
            raise _kept(e, await self._edit.record(outcome)) from e
        return await self._edit.record(dataclasses.replace(outcome, session_id=session.id, turn=turn.turn))

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
        owner = placement.owner
        async with self._turn_lock(owner, session_id), self._kept_alive(owner, session_id):
            session = await self._repository.get(owner, session_id)
            base = session.turn(from_turn) if from_turn is not None else session.last
            options = overrides.apply_to(session.options)
            placement = dataclasses.replace(  # where and how the turn is saved: as the session was, unless told
                placement, output_dir=placement.output_dir or session.output_dir,
                filename_prefix=placement.filename_prefix or session.filename_prefix)
            inputs = EditInputs((base.file_paths[0],), mask, own_references=True)
            turn_of = TurnOf(session.id, session.next_turn)
            try:
                outcome = await self._edit.make(prompt, inputs, options, placement, progress, turn_of,
                                                OutcomeKind.SESSION_TURN)
            except OwnImageUnreadable as e:
                raise OwnImageUnreadable(
                    f"Turn {base.turn} of session {session.id} cannot be continued: its image "
                    f"{base.file_paths[0]} can no longer be read (moved, deleted or changed since). Continue from "
                    "another turn with from_turn, or start a new session from a file. Nothing was sent."
                ) from e
            turn = session.record(prompt, _paths(outcome), self._clock(), base.turn, _ids(outcome))
            return await to_the_end(self._record_turn(session, turn, outcome))

    async def _record_turn(self, session: EditSession, turn: Turn, outcome: Outcome) -> Outcome:
        try:
            await self._repository.append_turn(session.owner, session.id, turn)
        except SessionNotFound:
            # Ended (on another replica), evicted or expired while the turn was made: nothing to record it in,
            # and nothing to continue. The paid image is the result all the same.
            note = (f"Session {session.id} ended while this turn was being made (ended, expired, or pushed out by "
                    "newer sessions), so the turn is not recorded in it. Its image is saved and catalogued; "
                    "start_edit_session with it goes on from here.")
            return await self._edit.record(dataclasses.replace(outcome, notes=(*outcome.notes, note)))
        except (SessionMovedOn, StateStoreError) as e:
            raise _kept(e, await self._edit.record(outcome)) from e
        recorded = dataclasses.replace(outcome, session_id=session.id, turn=turn.turn, parent_turn=turn.parent_turn)
        return await self._edit.record(recorded)

    async def end(self, session_id: str, owner: str = LOCAL_OWNER) -> EditSession:
        """Forget the session (its images stay on disk), once any running turn has finished."""
        async with self._turn_lock(owner, session_id):
            session = await self._repository.remove(owner, session_id)
        self._locks.pop((owner, session_id), None)
        return session

    async def list(self, owner: str = LOCAL_OWNER) -> list[EditSession]:
        return await self._repository.list(owner)

    @contextlib.asynccontextmanager
    async def _turn_lock(self, owner: str, session_id: str) -> AsyncIterator[None]:
        key = (owner, session_id)
        try:
            await self._repository.get(owner, session_id)  # fail fast, before waiting on the lock
        except SessionNotFound:
            self._locks.pop(key, None)  # an expired or evicted session's lock
            raise
        async with self._locks.setdefault(key, asyncio.Lock()):
            yield

    @contextlib.asynccontextmanager
    async def _kept_alive(self, owner: str, session_id: str) -> AsyncIterator[None]:
        if not self._keep_alive_s:
            yield
            return
        task = asyncio.create_task(self._touch_every(owner, session_id, self._keep_alive_s))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _touch_running(self, owner: str) -> None:
        """The owner's sessions with a turn running here are in use right now: touched, so that the LRU cap
        pushes out an idle session to make room for a new one, not one whose paid turn is on its way."""
        for (who, session_id), lock in list(self._locks.items()):
            if who == owner and lock.locked():
                with contextlib.suppress(ImageServerError):
                    await self._repository.get(owner, session_id)

    async def _touch_every(self, owner: str, session_id: str, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            with contextlib.suppress(ImageServerError):  # gone or unreachable: the turn's end will say so
                await self._repository.get(owner, session_id)


def _paths(outcome: Outcome) -> tuple[str, ...]:
    return tuple(image.path for image in outcome.images)


def _ids(outcome: Outcome) -> tuple[str, ...]:
    return tuple(image.image_id or "" for image in outcome.images)


def _kept(error: ImageServerError, outcome: Outcome) -> ImageServerError:
    """The same error, saying where the paid-for images of this turn are: they are kept even so."""
    kept = type(error)(f"{error} The image(s) of this call are saved at: {', '.join(_paths(outcome))}.")
    kept.saved_paths = _paths(outcome)
    return kept
