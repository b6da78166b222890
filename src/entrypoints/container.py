"""The one composition root: settings in, use cases out."""

from __future__ import annotations

from dependency_injector import containers, providers

from gpt_image_2_mcp.adapters.filesystem_image_sink import FilesystemImageSink
from gpt_image_2_mcp.adapters.httpx_url_fetcher import HttpxUrlFetcher
from gpt_image_2_mcp.adapters.in_memory_image_catalogue import InMemoryImageCatalogue
from gpt_image_2_mcp.adapters.in_memory_job_store import InMemoryJobStore
from gpt_image_2_mcp.adapters.in_memory_session_repository import InMemorySessionRepository
from gpt_image_2_mcp.adapters.in_memory_spend_ledger import InMemorySpendLedger
from gpt_image_2_mcp.adapters.local_and_http_image_source import LocalAndHttpImageSource
from gpt_image_2_mcp.adapters.missing_key_image_backend import MissingKeyImageBackend
from gpt_image_2_mcp.domain.backlog import StoreBacklog
from gpt_image_2_mcp.domain.edit_sessions import EditSessions
from gpt_image_2_mcp.domain.image_library import ImageLibrary
from gpt_image_2_mcp.domain.job_runner import JobRunner
from gpt_image_2_mcp.domain.services import EditImage, GenerateImage, ImageWorkflow
from gpt_image_2_mcp.domain.spend import SpendGuard, SpendPolicy

from .openai_backend_resource import open_openai_backend, start_sdk_import
from .pillow_adapters import PillowCodecOnFirstUse, fake_image_backend
from .settings import Settings
from .state_resources import (
    open_redis,
    open_sqlite,
    redis_catalogue,
    redis_jobs,
    redis_ledger,
    redis_sessions,
    sqlite_catalogue,
    sqlite_jobs,
    sqlite_ledger,
    sqlite_sessions,
)


def _backend_choice(settings: Settings) -> str:
    choice = settings.resolved_backend
    return "missing_key" if choice == "openai" and not settings.api_key else choice


def _spend_policy(settings: Settings) -> SpendPolicy:
    """The configured budget and confirmation threshold; none for the fake backend, which spends nothing (its
    calls are still on the ledger, at $0)."""
    if _backend_choice(settings) == "fake":
        return SpendPolicy()
    return SpendPolicy(budget_usd_per_day=settings.budget_usd_per_day, confirm_above_usd=settings.confirm_above_usd)


def _state_kind(settings: Settings) -> str:
    return settings.state.kind


def _keep_alive_s(settings: Settings) -> float | None:
    """How often a running turn touches its session: well within the idle TTL (none without a TTL)."""
    return settings.session_ttl_ms / 3000 if settings.session_ttl_ms else None


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings)

    # The SDK is imported in a daemon thread, started ahead of the first call (or by it); the resource waits for
    # it, builds the client off the event loop and closes it on shutdown_resources().
    sdk_import = providers.Singleton(start_sdk_import)
    openai_backend = providers.Resource(open_openai_backend, settings=settings, adapters=sdk_import)
    fake_backend = providers.Singleton(
        fake_image_backend, latency_s=providers.Callable(lambda s: s.fake_latency_ms / 1000, settings)
    )
    backend = providers.Selector(
        providers.Callable(_backend_choice, settings),
        openai=openai_backend,
        fake=fake_backend,
        missing_key=providers.Singleton(MissingKeyImageBackend),
    )

    codec = providers.Singleton(PillowCodecOnFirstUse)
    sink = providers.Singleton(
        FilesystemImageSink,
        configured_dir=settings.provided.output_dir,
        allow_unsafe=settings.provided.allow_unsafe_output_dir,
        confined=providers.Callable(lambda s: s.transport == "http", settings),
    )
    url_fetcher = providers.Singleton(
        HttpxUrlFetcher,
        timeout_s=settings.provided.url_fetch_timeout_s,
        allowed_hosts=settings.provided.url_hosts,
        remote_callers=providers.Callable(lambda s: s.transport == "http", settings),
    )
    image_source = providers.Singleton(
        LocalAndHttpImageSource, codec=codec, fetcher=url_fetcher,
        confined=providers.Callable(lambda s: s.transport == "http", settings),
        own_folder=sink.provided.default_folder,
    )

    # State (GPT_IMAGE_2_STATE_URL): SQLite by default, Redis when shared, memory for throwaway runs.
    sqlite_database = providers.Resource(open_sqlite, settings=settings)
    redis_client = providers.Resource(open_redis, settings=settings)
    session_repository = providers.Selector(
        providers.Callable(_state_kind, settings),
        memory=providers.Singleton(
            InMemorySessionRepository, max_sessions=settings.provided.session_max,
            ttl_ms=settings.provided.session_ttl_ms,
        ),
        sqlite=providers.Singleton(sqlite_sessions, db=sqlite_database, settings=settings),
        redis=providers.Singleton(redis_sessions, client=redis_client, settings=settings),
    )
    image_catalogue = providers.Selector(
        providers.Callable(_state_kind, settings),
        memory=providers.Singleton(InMemoryImageCatalogue),
        sqlite=providers.Singleton(sqlite_catalogue, db=sqlite_database),
        redis=providers.Singleton(redis_catalogue, client=redis_client),
    )

    spend_ledger = providers.Selector(
        providers.Callable(_state_kind, settings),
        memory=providers.Singleton(InMemorySpendLedger),
        sqlite=providers.Singleton(sqlite_ledger, db=sqlite_database),
        redis=providers.Singleton(redis_ledger, client=redis_client),
    )
    spend_policy = providers.Singleton(_spend_policy, settings)
    spend_guard = providers.Singleton(SpendGuard, ledger=spend_ledger, policy=spend_policy)
    # Told of images as they arrive, before they are saved: the MCP server's presenter, which starts their
    # previews then (build_server overrides this); the command line shows no previews, so nothing there.
    arriving_images_observer = providers.Object(None)
    # Bookings and catalogue entries the store refused after the images were saved, tried again until it answers.
    store_backlog = providers.Singleton(StoreBacklog)
    workflow = providers.Singleton(
        ImageWorkflow, sink=sink, codec=codec, catalogue=image_catalogue, spend=spend_guard,
        observer=arriving_images_observer, backlog=store_backlog,
    )
    generate_image = providers.Singleton(GenerateImage, backend=backend, workflow=workflow)
    edit_image = providers.Singleton(EditImage, backend=backend, workflow=workflow, source=image_source)
    edit_sessions = providers.Singleton(
        EditSessions, edit=edit_image, repository=session_repository,
        keep_alive_s=providers.Callable(_keep_alive_s, settings),
    )
    image_library = providers.Singleton(ImageLibrary, catalogue=image_catalogue, sink=sink, codec=codec)
    job_store = providers.Selector(
        providers.Callable(_state_kind, settings),
        memory=providers.Singleton(InMemoryJobStore),
        sqlite=providers.Singleton(sqlite_jobs, db=sqlite_database),
        redis=providers.Singleton(redis_jobs, client=redis_client),
    )
    job_runner = providers.Singleton(JobRunner, store=job_store, heartbeat_s=settings.provided.job_heartbeat_s)
