"""How sessions and image records are written into a state store (SQLite, Redis): plain JSON-able dicts, and
the page cursor of the image catalogue. One codec, so every store reads what any other wrote the same way."""

from __future__ import annotations

from typing import Any

from gpt_image_2_mcp.domain.catalogue import ImageRecord
from gpt_image_2_mcp.domain.errors import InvalidRequest
from gpt_image_2_mcp.domain.jobs import Job, JobStatus
from gpt_image_2_mcp.domain.outcomes import Outcome, OutcomeKind
from gpt_image_2_mcp.domain.render_settings import RenderOptions, RenderOverrides
from gpt_image_2_mcp.domain.sessions import EditSession, Turn
from gpt_image_2_mcp.domain.values import MODEL, Route, SavedImage, Usage

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
            "updated_at": session.updated_at, "options": options_to_json(session.options),
            "output_dir": session.output_dir, "filename_prefix": session.filename_prefix}


def session_from_json(data: dict[str, Any], turns: list[Turn]) -> EditSession:
    updated = max([data["updated_at"], *(t.created_at for t in turns)])
    return EditSession(id=data["id"], created_at=data["created_at"], options=options_from_json(data["options"]),
                       turns=turns, updated_at=updated, owner=data["owner"],
                       # .get: sessions stored before these were kept have none
                       output_dir=data.get("output_dir"), filename_prefix=data.get("filename_prefix"))


def record_to_json(record: ImageRecord) -> dict[str, Any]:
    return {
        "owner": record.owner, "prompt": record.prompt, "created_at": record.created_at,
        "settings": record.settings, "session_id": record.session_id, "turn": record.turn,
        **_image_to_json(record.image), "image_id": record.image_id,
    }


def record_from_json(data: dict[str, Any]) -> ImageRecord:
    image = _image_from_json(data)
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


def outcome_to_json(outcome: Outcome) -> dict[str, Any]:
    """An outcome as a job keeps it: enough to show the result again, from any process."""
    usage = outcome.usage
    return {
        "kind": outcome.kind.value, "owner": outcome.owner, "prompt": outcome.prompt,
        "images": [_image_to_json(image) for image in outcome.images],
        "partials": [_image_to_json(image) for image in outcome.partials],
        "usage": None if usage is None else {
            "input_text_tokens": usage.input_text_tokens, "input_image_tokens": usage.input_image_tokens,
            "output_tokens": usage.output_tokens, "cached_input_tokens": usage.cached_input_tokens,
            "host_model": usage.host_model, "host_input_tokens": usage.host_input_tokens,
            "host_output_tokens": usage.host_output_tokens},
        "cost_usd": outcome.cost_usd, "route": outcome.route.value, "applied": outcome.applied,
        "placeholder": outcome.placeholder, "notes": list(outcome.notes), "request_id": outcome.request_id,
        "revised_prompt": outcome.revised_prompt, "session_id": outcome.session_id, "turn": outcome.turn,
        "parent_turn": outcome.parent_turn, "model": outcome.model,
    }


def outcome_from_json(data: dict[str, Any]) -> Outcome:
    usage = data.get("usage")
    return Outcome(
        kind=OutcomeKind(data["kind"]), owner=data["owner"], prompt=data["prompt"],
        images=tuple(_image_from_json(i) for i in data["images"]), usage=None if usage is None else Usage(**usage),
        cost_usd=data["cost_usd"], route=Route(data["route"]), applied=data.get("applied") or {},
        placeholder=data.get("placeholder", False), notes=tuple(data.get("notes") or ()),
        request_id=data.get("request_id"), revised_prompt=data.get("revised_prompt"),
        partials=tuple(_image_from_json(i) for i in data.get("partials") or ()), session_id=data.get("session_id"),
        turn=data.get("turn"), parent_turn=data.get("parent_turn"), model=data.get("model") or MODEL,
    )


def _image_to_json(image: SavedImage) -> dict[str, Any]:
    return {"path": image.path, "filename": image.filename, "width": image.width, "height": image.height,
            "size_bytes": image.size_bytes, "mime_type": image.mime_type, "rescued": image.rescued,
            "file_id": list(image.file_id) if image.file_id else None, "image_id": image.image_id}


def _image_from_json(data: dict[str, Any]) -> SavedImage:
    file_id = data.get("file_id")
    return SavedImage(data["path"], data["filename"], data["width"], data["height"], data["size_bytes"],
                      data["mime_type"], data.get("rescued", False), tuple(file_id) if file_id else None,
                      data.get("image_id"))


def job_to_json(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id, "owner": job.owner, "tool": job.tool, "fingerprint": job.fingerprint,
        "created_at": job.created_at, "ttl_ms": job.ttl_ms, "status": job.status.value,
        "updated_at": job.updated_at, "status_message": job.status_message,
        "outcome": None if job.outcome is None else outcome_to_json(job.outcome), "error": job.error,
        "is_error": job.is_error, "idempotency_key": job.idempotency_key, "holder": job.holder,
        "alive_at": job.alive_at, "delivered": job.delivered, "cancel_requested": job.cancel_requested,
        "callers_elsewhere": job.callers_elsewhere, "arguments": job.arguments, "shares": job.shares,
    }


def job_from_json(data: dict[str, Any]) -> Job:
    outcome = data.get("outcome")
    return Job(
        job_id=data["job_id"], owner=data["owner"], tool=data["tool"], fingerprint=data["fingerprint"],
        created_at=data["created_at"], ttl_ms=data.get("ttl_ms"), status=JobStatus(data["status"]),
        updated_at=data.get("updated_at", 0.0), status_message=data.get("status_message", ""),
        outcome=None if outcome is None else outcome_from_json(outcome), error=data.get("error"),
        is_error=data.get("is_error", False), idempotency_key=data.get("idempotency_key"),
        holder=data.get("holder", ""), alive_at=data.get("alive_at", 0.0), delivered=data.get("delivered", False),
        cancel_requested=data.get("cancel_requested", False), callers_elsewhere=data.get("callers_elsewhere", 0),
        arguments=data.get("arguments") or {}, shares=data.get("shares"),
    )


def encode_job_cursor(job: Job) -> str:
    """The position just after `job` in newest-first order (the same shape as the image cursor)."""
    return f"{job.created_at!r}|{job.job_id}"
