"""What a call asks for and what it produced: where images go, and the outcome shown to the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .sessions import LOCAL_OWNER
from .spend import CostConfirmer
from .values import MODEL, Route, SavedImage, Usage


class OutcomeKind(StrEnum):
    """What kind of call produced an outcome."""

    GENERATE = "generate"
    EDIT = "edit"
    SESSION_START = "session_start"
    SESSION_TURN = "session_turn"


@dataclass(frozen=True, slots=True)
class Placement:
    """Whose images a call makes, where and how they are written, and which folders the caller may use."""

    output_dir: str | None = None
    filename_prefix: str | None = None
    roots: tuple[str, ...] | None = None
    save_partials: bool = False
    owner: str = LOCAL_OWNER
    confirm: CostConfirmer | None = None
    """Asked before a call above the confirmation threshold is sent (None: such a call is refused)."""
    inline: str = "preview"
    """How the caller will be shown the images ("preview", "full" or "none"), so that only the work its result
    needs is started early."""
    safety_identifier: str | None = None
    """Who OpenAI's abuse monitoring should hold responsible, when the server knows (an authenticated remote
    caller): it replaces the caller's own `user` argument, which anyone could set to anyone."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a call produced, ready for presentation."""

    kind: OutcomeKind
    owner: str
    prompt: str
    images: tuple[SavedImage, ...]
    usage: Usage | None
    cost_usd: float
    route: Route
    applied: dict[str, object]
    placeholder: bool = False
    notes: tuple[str, ...] = ()
    request_id: str | None = None
    revised_prompt: str | None = None
    partials: tuple[SavedImage, ...] = ()
    session_id: str | None = None
    turn: int | None = None
    parent_turn: int | None = None
    model: str = MODEL
    contents: tuple[bytes, ...] = field(default=(), repr=False, compare=False)
    """The bytes of each image exactly as the sink wrote them, in the order of `images`: previews are made from
    these, so what a result shows is what was saved, without reading the file back. Empty for an outcome read
    back from the job store (another process made it): the presenter then reads the files back, checked."""

    @property
    def backend(self) -> str:
        return self.route.backend
