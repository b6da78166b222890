"""The tools' flat arguments: their schemas (what the calling model reads) and how they become domain values."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from gpt_image_2_mcp.domain.outcomes import Placement
from gpt_image_2_mcp.domain.render_settings import RenderOverrides
from gpt_image_2_mcp.domain.spend import CostConfirmer
from gpt_image_2_mcp.domain.values import MAX_EDIT_INPUTS

Prompt = Annotated[str, Field(description="What to draw or change, in plain language (1..32,000 characters).")]
Size = Annotated[str, Field(description="'auto', 1024x1024, 1536x1024 (landscape), 1024x1536 (portrait), or a "
                                         "custom WxH: edges multiples of 16, max 3840, ratio 1:3..3:1, "
                                         "655,360..8,294,400 pixels (e.g. 3840x2160).")]
QualityArg = Annotated[Literal["auto", "low", "medium", "high"],
                       Field(description="Rendering quality; higher is slower and costs more.")]
N = Annotated[int, Field(ge=1, le=10, description="How many images to make (1..10).")]
BackgroundArg = Annotated[Literal["auto", "opaque", "transparent"], Field(
    description="'auto' or 'opaque'. 'transparent' is passed on, but many deployments refuse it for gpt-image-2.")]
FormatArg = Annotated[Literal["png", "jpeg", "webp"], Field(description="File format of the saved image.")]
Compression = Annotated[int | None, Field(ge=0, le=100, description="0..100, jpeg and webp only.")]
ModerationArg = Annotated[Literal["auto", "low"], Field(description="Content moderation strictness.")]
OutputDir = Annotated[str | None, Field(description=(
    "Folder to save into: absolute, ~/..., or file://. A relative folder is taken inside the server's default "
    "output folder (never the server's working directory). Default: the server's output folder."))]
Prefix = Annotated[str | None, Field(description=(
    "Filename prefix, e.g. 'logo' -> logo-20261124-150301-a1b2c3.png. Letters and digits of any script are "
    "kept; other characters become '-'."))]
User = Annotated[str | None, Field(max_length=64, description=(
    "Stable end-user id for OpenAI abuse monitoring (safety_identifier), up to 64 characters. Over HTTP with "
    "sign-in the server sets it from the signed-in user instead."))]
Inline = Annotated[Literal["preview", "full", "none"], Field(
    description="How the image appears in the result: 'preview' (downscaled, default), 'full' (original bytes when "
                "small enough, else a preview) or 'none' (paths and links only).")]
Partials = Annotated[int, Field(ge=0, le=3, description="Stream 0..3 partial images as progress steps (n=1 only; "
                                                         "each costs ~100 extra output tokens).")]
SavePartials = Annotated[bool, Field(description="Also save partial images to disk.")]
Images = Annotated[list[str], Field(min_length=1, max_length=MAX_EDIT_INPUTS, description=(
    "1..16 reference images: absolute or relative paths, file:// URLs, http(s):// URLs or "
    "data:image/...;base64 URLs. PNG, JPEG or WEBP, each under 50 MB. The first is the one edited."))]
Mask = Annotated[str | None, Field(description="Optional PNG mask with an alpha channel, the size of the first "
                                               "image; transparent pixels mark where to edit. Under 4 MB.")]
SessionId = Annotated[str, Field(description="The session_id from start_edit_session or list_edit_sessions.")]
IdempotencyKey = Annotated[str | None, Field(max_length=128, description=(
    "Optional key (up to 128 characters) that makes a retry safe: the same key with the same arguments within "
    "24 h returns the stored result without a new API request; with other arguments it is an error."))]
ConfirmCost = Annotated[bool, Field(description=(
    "Go ahead with a call whose estimated cost is above the server's confirmation threshold "
    "(GPT_IMAGE_2_CONFIRM_ABOVE_USD). Only set it after the user agreed to the cost."))]
JobId = Annotated[str, Field(description="The job_id a result said the image was still being made under.")]
WaitS = Annotated[float, Field(ge=0, le=55, description="Seconds to wait for the job to finish (0..55).")]
FromTurn = Annotated[int | None, Field(ge=1, description=(
    "Edit the image of this earlier turn instead of the latest (undo/branch). Default: latest."))]
SizeOverride = Annotated[str | None, Field(description="Override the session's size.")]
QualityOverride = Annotated[Literal["auto", "low", "medium", "high"] | None,
                            Field(description="Override the session's quality.")]
NOverride = Annotated[int | None, Field(ge=1, le=10, description="Override the session's n.")]
BackgroundOverride = Annotated[Literal["auto", "opaque", "transparent"] | None,
                               Field(description="Override the session's background.")]
FormatOverride = Annotated[Literal["png", "jpeg", "webp"] | None,
                           Field(description="Override the session's output format.")]

_RENDER_FIELDS = ("size", "quality", "n", "background", "output_format", "output_compression", "user",
                  "partial_images")
_NOT_REQUESTED = frozenset({"ctx", "prompt", "self"})
_NOT_IDENTITY = frozenset({"ctx", "self", "inline", "idempotency_key", "confirm_cost"})
"""Arguments that do not change what is made: two calls that differ only in these are the same call."""


def render_overrides(arguments: Mapping[str, Any], where: Placement | None = None) -> RenderOverrides:
    """The output settings among a tool's arguments; an argument a tool does not have stays unset. The server's
    safety identifier for the caller, if it has one, stands in for `user`."""
    given = {name: arguments.get(name) for name in _RENDER_FIELDS}
    if where is not None and where.safety_identifier:
        given["user"] = where.safety_identifier
    return RenderOverrides.parse(**given)


def placement(
    arguments: Mapping[str, Any], roots: tuple[str, ...] | None, owner: str, confirm: CostConfirmer | None = None,
    safety_identifier: str | None = None,
) -> Placement:
    """Whose images a tool call makes and where they go, from its arguments and the client's roots."""
    return Placement(
        output_dir=arguments.get("output_dir"),
        filename_prefix=arguments.get("filename_prefix"),
        roots=roots,
        save_partials=bool(arguments.get("save_partials")),
        owner=owner,
        confirm=confirm,
        inline=arguments.get("inline") or "preview",
        safety_identifier=safety_identifier,
    )


def safety_identifier_of(owner: str) -> str:
    """An authenticated user's safety identifier: stable, and naming nobody to OpenAI (a digest, as its docs
    advise for user names and e-mail addresses)."""
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


def call_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A tool's arguments as a job keeps them: plain values only (no context)."""
    return {name: value for name, value in arguments.items() if name not in ("ctx", "self")}


def identity(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments that decide what a call makes (for merging identical calls and idempotency keys)."""
    return {name: value for name, value in arguments.items() if name not in _NOT_IDENTITY}


def requested(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's arguments as given (minus the context and the prompt), for the structured result."""
    return {
        name: value for name, value in arguments.items()
        if name not in _NOT_REQUESTED and isinstance(value, str | int | float | bool | list)
    }
