"""The image catalogue's record: every saved image, with a stable id, whose it is and how it was made."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from .values import SavedImage


def new_image_id() -> str:
    return f"img_{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One saved image as the catalogue keeps it. `owner` is a plain string: 'local' over stdio, the
    authenticated subject over HTTP; every query is by owner."""

    image_id: str
    owner: str
    image: SavedImage
    prompt: str
    created_at: float
    settings: dict[str, object] = field(default_factory=dict)
    session_id: str | None = None
    turn: int | None = None


@dataclass(frozen=True, slots=True)
class ImagePage:
    """One page of an owner's images, newest first; `next_cursor` is None on the last page."""

    records: tuple[ImageRecord, ...]
    next_cursor: str | None = None
