"""The OpenAI side of the composition, as a dependency-injector resource.

The OpenAI SDK takes ~0.4 s to import and an offline server (the fake backend) never needs it, so nothing here
imports it at module level: the resource imports the adapters in a worker thread when it is first resolved
(the server warms it up while the client handshakes), and closes the SDK client at shutdown.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from types import ModuleType

import anyio

from gpt_image_2_mcp.domain.ports import ImageBackend

from .settings import Settings

_ADAPTERS = "gpt_image_2_mcp.adapters"


def _import_adapters() -> tuple[ModuleType, ModuleType, ModuleType, ModuleType]:
    return tuple(  # type: ignore[return-value]
        importlib.import_module(f"{_ADAPTERS}.{name}")
        for name in ("openai_common", "openai_retry", "openai_images_backend", "openai_responses_backend")
    )


async def open_openai_backend(settings: Settings) -> AsyncIterator[ImageBackend]:
    """The Images API, falling back to the Responses API for edits, over one SDK client."""
    from gpt_image_2_mcp.adapters.fallback_image_backend import FallbackImageBackend

    common, retries, images, responses = await anyio.to_thread.run_sync(_import_adapters)
    client = common.build_client(
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        base_url=settings.base_url,
        organization=settings.organization,
        project=settings.project,
        timeout_s=settings.request_timeout_s,
    )
    retry = retries.RetryPolicy(max_attempts=settings.max_attempts, max_total_s=settings.retry_max_seconds,
                                attempt_timeout_s=settings.request_timeout_s)
    try:
        yield FallbackImageBackend(
            primary=images.OpenAIImagesBackend(client, retry, settings.secrets),
            fallback=responses.OpenAIResponsesBackend(client, retry, settings.responses_edit_model, settings.secrets),
            force_fallback=settings.force_responses_edits,
        )
    finally:
        await client.close()
