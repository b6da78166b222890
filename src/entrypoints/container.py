"""The one composition root: settings in, use cases out."""

from __future__ import annotations

from dependency_injector import containers, providers

from gpt_image_2_mcp.adapters.fake_image_backend import FakeImageBackend
from gpt_image_2_mcp.adapters.fallback_image_backend import FallbackImageBackend
from gpt_image_2_mcp.adapters.filesystem_image_sink import FilesystemImageSink
from gpt_image_2_mcp.adapters.httpx_url_fetcher import HttpxUrlFetcher
from gpt_image_2_mcp.adapters.in_memory_session_repository import InMemorySessionRepository
from gpt_image_2_mcp.adapters.local_and_http_image_source import LocalAndHttpImageSource
from gpt_image_2_mcp.adapters.missing_key_image_backend import MissingKeyImageBackend
from gpt_image_2_mcp.adapters.openai_common import RetryPolicy, build_client
from gpt_image_2_mcp.adapters.openai_images_backend import OpenAIImagesBackend
from gpt_image_2_mcp.adapters.openai_responses_backend import OpenAIResponsesBackend
from gpt_image_2_mcp.adapters.pillow_image_codec import PillowImageCodec
from gpt_image_2_mcp.domain.services import EditImage, EditSessions, GenerateImage, ImageWorkflow

from .settings import Settings


def _backend_choice(settings: Settings) -> str:
    choice = settings.resolved_backend
    return "missing_key" if choice == "openai" and not settings.api_key else choice


def _api_key(settings: Settings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key else None


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings)

    retry_policy = providers.Singleton(
        RetryPolicy,
        max_attempts=settings.provided.max_attempts,
        max_total_s=settings.provided.retry_max_seconds,
    )
    openai_client = providers.Singleton(
        build_client,
        api_key=providers.Callable(_api_key, settings),
        base_url=settings.provided.base_url,
        organization=settings.provided.organization,
        project=settings.provided.project,
        timeout_s=settings.provided.request_timeout_s,
    )
    images_backend = providers.Singleton(
        OpenAIImagesBackend, client=openai_client, retry=retry_policy, secrets=settings.provided.secrets
    )
    responses_backend = providers.Singleton(
        OpenAIResponsesBackend,
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
