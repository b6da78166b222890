"""How sessions and image records are written into a state store (SQLite, Redis): plain JSON-able dicts, and
the page cursor of the image catalogue. One codec, so every store reads what any other wrote the same way."""

from __future__ import annotations

from typing import Any

from gpt_image_2_mcp.domain.catalogue import ImageRecord
from gpt_image_2_mcp.domain.errors import InvalidRequest
from gpt_image_2_mcp.domain.render_settings import RenderOptions, RenderOverrides
from gpt_image_2_mcp.domain.sessions import EditSession, Turn
from gpt_image_2_mcp.domain.values import SavedImage

SCHEMA_VERSION = 1


def options_to_json(options: RenderOptions) -> dict[str, Any]:
    return {**options.applied(), "user": options.user, "partial_images": options.partial_images}


def options_from_json(data: dict[str, Any]) -> RenderOptions:
    return RenderOverrides.parse(
        size=data.get("size"), quality=data.get("quality"), n=data.get("n"), background=data.get("background"),
        output_format=data.get("output_format"), output_compression=data.get("output_compression"),
        user=data.get("user"), partial_images=data.get("partial_images"),
    ).apply_to(RenderOptions())


def turn_to_json(turn: Turn) -> dict[str, Any]:
    return {"turn": turn.turn, "prompt": turn.prompt, "file_paths": list(turn.file_paths),
            "created_at": turn.created_at, "parent_turn": turn.parent_turn, "image_ids": list(turn.image_ids)}


def turn_from_json(data: dict[str, Any]) -> Turn:
    return Turn(data["turn"], data["prompt"], tuple(data["file_paths"]), data["created_at"], data.get("parent_turn"),
                tuple(data.get("image_ids") or ()))


def session_to_json(session: EditSession) -> dict[str, Any]:
    """A session's own fields; its turns are stored one by one (appending a turn must be atomic)."""
    return {"id": session.id, "owner": session.owner, "created_at": session.created_at,
            "updated_at": session.updated_at, "options": options_to_json(session.options)}


def session_from_json(data: dict[str, Any], turns: list[Turn]) -> EditSession:
    updated = max([data["updated_at"], *(t.created_at for t in turns)])
    return EditSession(id=data["id"], created_at=data["created_at"], options=options_from_json(data["options"]),
                       turns=turns, updated_at=updated, owner=data["owner"])


def record_to_json(record: ImageRecord) -> dict[str, Any]:
    image = record.image
    return {
        "image_id": record.image_id, "owner": record.owner, "prompt": record.prompt,
        "created_at": record.created_at, "settings": record.settings, "session_id": record.session_id,
        "turn": record.turn, "path": image.path, "filename": image.filename, "width": image.width,
        "height": image.height, "size_bytes": image.size_bytes, "mime_type": image.mime_type,
        "rescued": image.rescued, "file_id": list(image.file_id) if image.file_id else None,
    }


def record_from_json(data: dict[str, Any]) -> ImageRecord:
    file_id = data.get("file_id")
    image = SavedImage(data["path"], data["filename"], data["width"], data["height"], data["size_bytes"],
                       data["mime_type"], data.get("rescued", False), tuple(file_id) if file_id else None,
                       data["image_id"])
    return ImageRecord(data["image_id"], data["owner"], image, data["prompt"], data["created_at"],
                       data.get("settings") or {}, data.get("session_id"), data.get("turn"))


def newest_first(record: ImageRecord) -> tuple[float, str]:
    """The catalogue's order: newest first, ties by id."""
    return (-record.created_at, record.image_id)


def encode_cursor(record: ImageRecord) -> str:
    """The position just after `record` in newest-first order: new images never shift later pages."""
    return f"{record.created_at!r}|{record.image_id}"


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The (created_at, image_id) a cursor stands for. Raises InvalidRequest for one this server never gave."""
    created, separator, image_id = cursor.partition("|")
    try:
        if not separator:
            raise ValueError(cursor)
        return float(created), image_id
    except ValueError:
        raise InvalidRequest(f"The cursor {cursor!r} is not one this server gave out; start again without it.") \
            from None
