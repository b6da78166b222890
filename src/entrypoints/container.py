"""The one composition root: settings in, use cases out."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from dependency_injector import containers, providers

from gpt_image_2_mcp.adapters.fake_image_backend import FakeImageBackend
from gpt_image_2_mcp.adapters.fallback_image_backend import FallbackImageBackend
from gpt_image_2_mcp.adapters.filesystem_image_sink import FilesystemImageSink
from gpt_image_2_mcp.adapters.httpx_url_fetcher import HttpxUrlFetcher
from gpt_image_2_mcp.adapters.in_memory_session_repository import InMemorySessionRepository
from gpt_image_2_mcp.adapters.local_and_http_image_source import LocalAndHttpImageSource
from gpt_image_2_mcp.adapters.missing_key_image_backend import MissingKeyImageBackend
from gpt_image_2_mcp.adapters.pillow_image_codec import PillowImageCodec
from gpt_image_2_mcp.domain.services import EditImage, EditSessions, GenerateImage, ImageWorkflow

from .settings import Settings

_OPENAI = "gpt_image_2_mcp.adapters."


def _lazy(path: str) -> Callable[..., Any]:
    """A factory for `module:name` that imports it on first use. The OpenAI SDK takes ~0.4 s to import and
    an offline server (the fake backend) never needs it, so start-up does not pay for it."""

    def build(*args: Any, **kwargs: Any) -> Any:
        module, _, name = path.partition(":")
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    build.__qualname__ = build.__name__ = path.rpartition(":")[2]
    return build


def _backend_choice(settings: Settings) -> str:
    choice = settings.resolved_backend
    return "missing_key" if choice == "openai" and not settings.api_key else choice


def _api_key(settings: Settings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key else None


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings)

    retry_policy = providers.Singleton(
        _lazy(_OPENAI + "openai_common:RetryPolicy"),
        max_attempts=settings.provided.max_attempts,
        max_total_s=settings.provided.retry_max_seconds,
        attempt_timeout_s=settings.provided.request_timeout_s,
    )
    openai_client = providers.Singleton(
        _lazy(_OPENAI + "openai_common:build_client"),
        api_key=providers.Callable(_api_key, settings),
        base_url=settings.provided.base_url,
        organization=settings.provided.organization,
        project=settings.provided.project,
        timeout_s=settings.provided.request_timeout_s,
    )
    images_backend = providers.Singleton(
        _lazy(_OPENAI + "openai_images_backend:OpenAIImagesBackend"),
        client=openai_client,
        retry=retry_policy,
        secrets=settings.provided.secrets,
    )
    responses_backend = providers.Singleton(
        _lazy(_OPENAI + "openai_responses_backend:OpenAIResponsesBackend"),
        client=openai_client,
        retry=retry_policy,
        host_model=settings.provided.responses_edit_model,
        secrets=settings.provided.secrets,
    )
    openai_backend = providers.Singleton(
        FallbackImageBackend,
        primary=images_backend,
        fallback=responses_backend,
        force_fallback=settings.provided.force_responses_edits,
    )
    fake_backend = providers.Singleton(
        FakeImageBackend, latency_s=providers.Callable(lambda s: s.fake_latency_ms / 1000, settings)
    )
    backend = providers.Selector(
        providers.Callable(_backend_choice, settings),
        openai=openai_backend,
        fake=fake_backend,
        missing_key=providers.Singleton(MissingKeyImageBackend),
    )

    codec = providers.Singleton(PillowImageCodec)
    sink = providers.Singleton(
        FilesystemImageSink,
        configured_dir=settings.provided.output_dir,
        allow_unsafe=settings.provided.allow_unsafe_output_dir,
    )
    url_fetcher = providers.Singleton(
        HttpxUrlFetcher,
        timeout_s=settings.provided.url_fetch_timeout_s,
        allowed_hosts=settings.provided.url_hosts,
    )
    image_source = providers.Singleton(LocalAndHttpImageSource, codec=codec, fetcher=url_fetcher)
    session_repository = providers.Singleton(
        InMemorySessionRepository,
        max_sessions=settings.provided.session_max,
        ttl_ms=settings.provided.session_ttl_ms,
    )

    workflow = providers.Singleton(ImageWorkflow, backend=backend, sink=sink, codec=codec)
    generate_image = providers.Singleton(GenerateImage, workflow=workflow)
    edit_image = providers.Singleton(EditImage, workflow=workflow, source=image_source)
    edit_sessions = providers.Singleton(EditSessions, edit=edit_image, repository=session_repository)
