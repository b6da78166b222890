"""What both OpenAI adapters share: the SDK client, the output settings as the APIs name them, image data."""

from __future__ import annotations

import binascii
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import httpx2
import openai
import pybase64

from gpt_image_2_mcp.domain import errors
from gpt_image_2_mcp.domain.render_settings import RenderOptions


def output_fields(options: RenderOptions) -> dict[str, Any]:
    """The output settings as both APIs name them (the Images API's parameters, the image_generation tool's)."""
    fields: dict[str, Any] = {
        "size": str(options.size),
        "quality": options.quality.value,
        "background": options.background.value,
        "output_format": options.output_format.value,
    }
    if options.output_compression is not None:
        fields["output_compression"] = options.output_compression
    return fields


def build_client(
    api_key: str | None,
    base_url: str | None,
    organization: str | None,
    project: str | None,
    timeout_s: float,
) -> openai.AsyncOpenAI:
    """An SDK client with its own retries off: retries live in RetryPolicy, or they would stack."""
    return openai.AsyncOpenAI(
        api_key=api_key or "missing",
        base_url=base_url or None,
        organization=organization or None,
        project=project or None,
        max_retries=0,
        timeout=httpx2.Timeout(timeout_s, connect=10.0),
    )


async def run_concurrently(calls: Iterable[Callable[[], Awaitable[None]]]) -> None:
    """Run calls together; the first failure cancels the rest and is raised as itself, not as a group."""
    try:
        async with anyio.create_task_group() as group:
            for call in calls:
                group.start_soon(call)
    except BaseExceptionGroup as grouped:
        leaves = list(_leaves(grouped))
        cancelled = anyio.get_cancelled_exc_class()
        raise next((e for e in leaves if not isinstance(e, cancelled)), leaves[0]) from None


def _leaves(group: BaseExceptionGroup) -> Iterable[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def decode_b64(data: str | None, request_id: str | None) -> bytes:
    if not data:
        raise errors.BackendProtocolError("The API answered without image data. Try again.", request_id=request_id)
    try:
        # pybase64 (SIMD): ~20x the standard library's speed, strict alike; a 4K PNG's 16 MB of base64 decode in
        # ~3 ms instead of ~50 ms on the event loop.
        return pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise errors.BackendProtocolError(
            "The API answered with image data that is not valid base64. Try again.", request_id=request_id
        ) from e
