"""The one composition root: settings in, use cases out."""

from __future__ import annotations

from dependency_injector import containers, providers

from gpt_image_2_mcp.adapters.fake_image_backend import FakeImageBackend
from gpt_image_2_mcp.adapters.filesystem_image_sink import FilesystemImageSink
from gpt_image_2_mcp.adapters.httpx_url_fetcher import HttpxUrlFetcher
from gpt_image_2_mcp.adapters.in_memory_session_repository import InMemorySessionRepository
from gpt_image_2_mcp.adapters.local_and_http_image_source import LocalAndHttpImageSource
from gpt_image_2_mcp.adapters.missing_key_image_backend import MissingKeyImageBackend
from gpt_image_2_mcp.adapters.pillow_image_codec import PillowImageCodec
from gpt_image_2_mcp.domain.edit_sessions import EditSessions
from gpt_image_2_mcp.domain.services import EditImage, GenerateImage, ImageWorkflow

from .openai_backend_resource import open_openai_backend
from .settings import Settings


def _backend_choice(settings: Settings) -> str:
    choice = settings.resolved_backend
    return "missing_key" if choice == "openai" and not settings.api_key else choice


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings)

    # A resource: imports the SDK off the event loop on first use, closes its client on shutdown_resources().
    openai_backend = providers.Resource(open_openai_backend, settings=settings)
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

    workflow = providers.Singleton(ImageWorkflow, sink=sink, codec=codec)
    generate_image = providers.Singleton(GenerateImage, backend=backend, workflow=workflow)
    edit_image = providers.Singleton(EditImage, backend=backend, workflow=workflow, source=image_source)
    edit_sessions = providers.Singleton(EditSessions, edit=edit_image, repository=session_repository)
