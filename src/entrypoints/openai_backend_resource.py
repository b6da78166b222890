"""The OpenAI side of the composition, as a dependency-injector resource.

The OpenAI SDK takes ~0.3 s to import and an offline server (the fake backend) never needs it, so nothing here
imports it at module level: `start_sdk_import` imports the adapters in a daemon thread (the server starts it once
the handshake's first message is handled, see warm_up.py), the resource waits for that import when first resolved,
and closes the SDK client at shutdown. A daemon thread rather than a task: shutting down never waits for an
import nobody needs any more.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import AsyncIterator
from concurrent.futures import Future
from types import ModuleType

import anyio

from gpt_image_2_mcp.domain.ports import ImageBackend

from .settings import Settings

_ADAPTERS = "gpt_image_2_mcp.adapters"
Adapters = tuple[ModuleType, ModuleType, ModuleType, ModuleType]


def _import_adapters() -> Adapters:
    return tuple(  # type: ignore[return-value]
        importlib.import_module(f"{_ADAPTERS}.{name}")
        for name in ("openai_common", "openai_retry", "openai_images_backend", "openai_responses_backend")
    )


def start_sdk_import() -> Future[Adapters]:
    """Import the OpenAI adapters (and so the SDK) in a daemon thread; the future holds the modules."""
    future: Future[Adapters] = Future()

    def run() -> None:
        try:
            future.set_result(_import_adapters())
        except BaseException as e:  # re-raised where the resource waits for it
            future.set_exception(e)

    threading.Thread(target=run, name="openai-sdk-import", daemon=True).start()
    return future


async def open_openai_backend(settings: Settings, adapters: Future[Adapters]) -> AsyncIterator[ImageBackend]:
    """The Images API, falling back to the Responses API for edits, over one SDK client."""
    from gpt_image_2_mcp.adapters.fallback_image_backend import FallbackImageBackend

    common, retries, images, responses = await anyio.to_thread.run_sync(adapters.result, abandon_on_cancel=True)
    # In a worker thread too: the client's SSL context reads the system's CA store (~30 ms).
    client = await anyio.to_thread.run_sync(functools.partial(
        common.build_client,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        base_url=settings.base_url,
        organization=settings.organization,
        project=settings.project,
        timeout_s=settings.request_timeout_s,
    ))
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
