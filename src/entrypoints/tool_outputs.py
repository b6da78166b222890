"""The structured results of the tools (their outputSchema), as pydantic models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from gpt_image_2_mcp.domain.sessions import EditSession


class PreviewInfo(BaseModel):
    shown: Literal["full", "preview"] = Field(description="'full': the original file; 'preview': a smaller copy")
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
    uri: str = Field(description="image://<image_id>: readable with resources/read, from any process, later too")
    image_id: str | None = Field(None, description="The image's stable id in the catalogue")
    rescued: bool = Field(False, description="True if the output folder failed and the image went to the rescue folder")
    inline: PreviewInfo | None = Field(None, description="What was shown inline, if anything")
    download_url: str | None = Field(None, description="A signed link that downloads the full image over HTTP "
                                                       "without a token, until it expires (HTTP servers only)")


class UsageInfo(BaseModel):
    input_text_tokens: int
    input_image_tokens: int
    output_tokens: int
    total_tokens: int


class ImageToolOutput(BaseModel):
    """Structured result of every image tool: the images made, or (status 'working') the job to come back to."""

    status: Literal["completed", "working"] = Field(
        "completed", description="'working': the image is still being made; call get_image_job with job_id")
    job_id: str | None = Field(None, description="The job behind this call (get_image_job, or an MCP task)")
    model: str
    prompt: str
    revised_prompt: str | None = Field(None, description="The prompt as the API rewrote it, when it says so")
    backend: str = Field("", description="'openai', or 'fake' for offline placeholders")
    route: str = Field("", description="'images' (direct Images API), 'responses' (Responses API fallback) or 'fake'")
    placeholder: bool = Field(False, description="True when the image is a placeholder from the fake backend")
    requested: dict[str, Any] = {}
    applied: dict[str, Any] = {}
    images: list[ImageInfo] = []
    partial_images: list[ImageInfo] = []
    usage: UsageInfo | None = None
    cost_usd_estimated: float = 0.0
    request_id: str | None = None
    notes: list[str] = []
    session_id: str | None = None
    turn: int | None = None
    parent_turn: int | None = None


class TurnInfo(BaseModel):
    turn: int
    prompt: str
    file_paths: list[str]
    created_at: str = Field(description="ISO 8601 with time zone")
    parent_turn: int | None


class SessionInfo(BaseModel):
    session_id: str
    created_at: str = Field(description="ISO 8601 with time zone")
    updated_at: str = Field(description="ISO 8601 with time zone")
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


def iso_time(epoch_s: float) -> str:
    """A Unix time as ISO 8601 in UTC, to the second: what a person and a model both read."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")


def session_info(session: EditSession) -> SessionInfo:
    return SessionInfo(
        session_id=session.id,
        created_at=iso_time(session.created_at),
        updated_at=iso_time(session.updated_at),
        turns=len(session.turns),
        last_prompt=session.last.prompt,
        last_image_path=session.last.file_paths[0],
        history=[TurnInfo(turn=t.turn, prompt=t.prompt, file_paths=list(t.file_paths),
                          created_at=iso_time(t.created_at), parent_turn=t.parent_turn) for t in session.turns],
    )


def end_session_output(session: EditSession) -> EndSessionOutput:
    paths = [path for turn in session.turns for path in turn.file_paths]
    return EndSessionOutput(session_id=session.id, ended=True, turns=len(session.turns), file_paths=paths)
