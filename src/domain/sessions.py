"""The edit session entity: a history of turns, each an image on disk."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import InvalidRequest
from .render_settings import RenderOptions

LOCAL_OWNER = "local"
"""The owner of everything made over stdio: the one user at the keyboard."""


@dataclass(frozen=True, slots=True)
class Turn:
    """One edit in a session: the files it made (and their catalogue ids), and the turn it was made from."""

    turn: int
    prompt: str
    file_paths: tuple[str, ...]
    created_at: float
    parent_turn: int | None = None
    image_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class EditSession:
    """An image refined over many turns. Turns count from 1. Holds paths and image ids, never image bytes."""

    id: str
    created_at: float
    options: RenderOptions
    turns: list[Turn] = field(default_factory=list)
    updated_at: float = 0.0
    owner: str = LOCAL_OWNER
    output_dir: str | None = None
    """Where the turns are saved, as given at the start (None: the default folder); a turn may say otherwise."""
    filename_prefix: str | None = None
    """How the turns' files are named, as given at the start; a turn may say otherwise."""

    def __post_init__(self) -> None:
        self.updated_at = self.updated_at or self.created_at

    @property
    def last(self) -> Turn:
        return self.turns[-1]

    @property
    def next_turn(self) -> int:
        return len(self.turns) + 1

    def turn(self, number: int) -> Turn:
        for turn in self.turns:
            if turn.turn == number:
                return turn
        raise InvalidRequest(
            f"Session {self.id} has turns 1..{len(self.turns)}; there is no turn {number}. "
            "Pick from_turn within that range, or leave it out to continue from the latest turn."
        )

    def record(
        self,
        prompt: str,
        file_paths: tuple[str, ...],
        now: float,
        parent_turn: int | None,
        image_ids: tuple[str, ...] = (),
    ) -> Turn:
        turn = Turn(self.next_turn, prompt, file_paths, now, parent_turn, image_ids)
        self.turns.append(turn)
        self.updated_at = now
        return turn
