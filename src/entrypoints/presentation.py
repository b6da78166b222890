"""How an Outcome is shown to an MCP client: a text that stands alone, previews, links, structured data."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from gpt_image_2_mcp.adapters.pillow_image_codec import PillowImageCodec, base64_length
from gpt_image_2_mcp.domain.services import Outcome
from gpt_image_2_mcp.domain.sessions import EditSession
from gpt_image_2_mcp.domain.values import SavedImage

log = logging.getLogger(__name__)

InlineMode = Literal["preview", "full", "none"]


class PreviewInfo(BaseModel):
    width: int
    height: int
    mime_type: str
    base64_bytes: int


class ImageInfo(BaseModel):
    file_path: str = Field(description="Absolute path of the full-resolution file")
    filename: str
    width: int
    height: int
    size_bytes: int
    mime_type: str
    uri: str = Field(description="file:// URI; also readable with resources/read")
    rescued: bool = Field(False, description="True if the output folder failed and the image went to the rescue folder")
    inline: PreviewInfo | None = Field(None, description="What was shown inline, if anything")


class UsageInfo(BaseModel):
    input_text_tokens: int
    input_image_tokens: int
    output_tokens: int
    total_tokens: int


class ImageToolOutput(BaseModel):
    """Structured result of every image tool."""

    model: str
    prompt: str
    backend: str = Field(description="'openai', or 'fake' for offline placeholders")
    route: str = Field(description="'images' (direct Images API), 'responses' (Responses API fallback) or 'fake'")
    placeholder: bool = Field(description="True when the image is a placeholder from the fake backend")
    requested: dict[str, Any]
    applied: dict[str, Any]
    images: list[ImageInfo]
    partial_images: list[ImageInfo] = []
    usage: UsageInfo | None
    cost_usd_estimated: float
    request_id: str | None = None
    notes: list[str] = []
    session_id: str | None = None
    turn: int | None = None
    parent_turn: int | None = None


class TurnInfo(BaseModel):
    turn: int
    prompt: str
    file_paths: list[str]
    created_at: float
    parent_turn: int | None


class SessionInfo(BaseModel):
    session_id: str
    created_at: float
    updated_at: float
    turns: int
    last_prompt: str
    last_image_path: str
    history: list[TurnInfo]


class SessionListOutput(BaseModel):
    sessions: list[SessionInfo]


class EndSessionOutput(BaseModel):
    session_id: str
    ended: bool
    turns: int
    file_paths: list[str] = Field(description="Every image the session made; they stay on disk")


def session_info(session: EditSession) -> SessionInfo:
    return SessionInfo(
        session_id=session.id,
        created_at=session.created_at,
        updated_at=session.updated_at,
        turns=len(session.turns),
        last_prompt=session.last.prompt,
        last_image_path=session.last.file_paths[0],
        history=[TurnInfo(turn=t.turn, prompt=t.prompt, file_paths=list(t.file_paths), created_at=t.created_at,
                          parent_turn=t.parent_turn) for t in session.turns],
    )


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


class Presenter:
    """Builds tool results under the client's size limits: previews inline, full files on disk."""

    def __init__(self, codec: PillowImageCodec, max_edge: int, max_bytes: int) -> None:
        self._codec = codec
        self._max_edge = max_edge
        self._max_bytes = max_bytes

    def inline_images(
        self, images: tuple[SavedImage, ...], mode: InlineMode
    ) -> tuple[list[tuple[str, str]], list[PreviewInfo | None], list[str]]:
        """(base64, mime) blocks to show, what each image showed, and notes. Budget is shared by all images."""
        if mode == "none" or not images:
            return [], [None] * len(images), []
        blocks: list[tuple[str, str]] = []
        infos: list[PreviewInfo | None] = []
        notes: list[str] = []
        budget = self._max_bytes // len(images)
        for image in images:
            data = Path(image.path).read_bytes()
            if mode == "full" and base64_length(len(data)) <= budget:
                encoded, mime, width, height = data, image.mime_type, image.width, image.height
            else:
                if mode == "full":
                    notes.append(
                        f"{image.filename} is {_human(image.size_bytes)}, over the inline budget; a preview is "
                        "shown instead. The full file is on disk."
                    )
                preview = self._codec.preview(data, self._max_edge, budget)
                encoded, mime, width, height = preview.data, preview.mime_type, preview.width, preview.height
            if base64_length(len(encoded)) > budget:
                notes.append(f"{image.filename}: even the smallest preview is over the inline budget; not shown.")
                infos.append(None)
                continue
            text = base64.b64encode(encoded).decode()
            blocks.append((text, mime))
            infos.append(PreviewInfo(width=width, height=height, mime_type=mime, base64_bytes=len(text)))
        return blocks, infos, notes

    @staticmethod
    def image_info(image: SavedImage, inline: PreviewInfo | None = None) -> ImageInfo:
        return ImageInfo(
            file_path=image.path, filename=image.filename, width=image.width, height=image.height,
            size_bytes=image.size_bytes, mime_type=image.mime_type, uri=Path(image.path).as_uri(),
            rescued=image.rescued, inline=inline,
        )

    def text(self, outcome: Outcome, infos: list[ImageInfo], notes: list[str]) -> str:
        lines: list[str] = []
        if outcome.placeholder:
            lines.append("⚠ " + outcome.notes[0])
        verb = {"generate": "Generated", "edit": "Edited"}.get(outcome.kind, "Edited")
        where = f" (session {outcome.session_id}, turn {outcome.turn}" if outcome.session_id else ""
        if where and outcome.parent_turn is not None:
            where += f", from turn {outcome.parent_turn}"
        where += ")" if where else ""
        lines.append(f"{verb} {len(infos)} image(s) with {outcome.model}{where} via {outcome.route}:")
        for info in infos:
            shown = (f"; inline preview {info.inline.width}x{info.inline.height} {info.inline.mime_type}"
                     if info.inline else "; not shown inline")
            rescued = " — RESCUED: the output folder failed, the file is in the rescue folder" if info.rescued else ""
            lines.append(f"- {info.file_path} ({info.width}x{info.height}, {_human(info.size_bytes)}, "
                         f"{info.mime_type}{shown}){rescued}")
        settings = ", ".join(f"{k}={v}" for k, v in outcome.applied.items())
        lines.append(f"Settings: {settings}")
        usage = outcome.usage
        if usage:
            lines.append(f"Tokens: {usage.input_text_tokens} text in, {usage.input_image_tokens} image in, "
                         f"{usage.output_tokens} out ({usage.total_tokens} total)")
        cost = f"Estimated cost: ${outcome.cost_usd:.4f}"
        lines.append(cost + (" (placeholder: nothing was spent)" if outcome.placeholder else ""))
        if outcome.request_id:
            lines.append(f"Request id: {outcome.request_id}")
        if outcome.partials:
            lines.append("Partial images saved: " + ", ".join(p.path for p in outcome.partials))
        lines += [n for n in (*outcome.notes, *notes) if not (outcome.placeholder and n == outcome.notes[0])]
        return "\n".join(lines)
