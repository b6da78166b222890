"""The state stores as dependency-injector resources: opened on first use, closed on shutdown.

Redis's client takes ~80 ms to import, a cost a server on the embedded SQLite default never needs to pay, so it
is imported in a worker thread, on first use, like the OpenAI SDK. The SQLite adapters are imported on first use
too (sqlite3 is ~1 MiB resident that answering `initialize` does not need).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import anyio

from gpt_image_2_mcp.domain.ports import ImageCatalogue, JobStore, SessionRepository, SpendLedger

from .settings import Settings

if TYPE_CHECKING:
    from gpt_image_2_mcp.adapters.sqlite_database import SqliteDatabase


def open_sqlite(settings: Settings) -> Iterator[SqliteDatabase]:
    """The SQLite state file (opened lazily by the database itself on first query)."""
    from gpt_image_2_mcp.adapters.sqlite_database import SqliteDatabase

    database = SqliteDatabase(settings.state.path or "")
    try:
        yield database
    finally:
        database.close()


def sqlite_sessions(db: SqliteDatabase, settings: Settings) -> SessionRepository:
    from gpt_image_2_mcp.adapters.sqlite_session_repository import SqliteSessionRepository

    return SqliteSessionRepository(db, max_sessions=settings.session_max, ttl_ms=settings.session_ttl_ms)


def sqlite_catalogue(db: SqliteDatabase) -> ImageCatalogue:
    from gpt_image_2_mcp.adapters.sqlite_image_catalogue import SqliteImageCatalogue

    return SqliteImageCatalogue(db)


def sqlite_jobs(db: SqliteDatabase) -> JobStore:
    from gpt_image_2_mcp.adapters.sqlite_job_store import SqliteJobStore

    return SqliteJobStore(db)


def sqlite_ledger(db: SqliteDatabase) -> SpendLedger:
    from gpt_image_2_mcp.adapters.sqlite_spend_ledger import SqliteSpendLedger

    return SqliteSpendLedger(db)


async def open_redis(settings: Settings) -> AsyncIterator[Any]:
    """A Redis client for GPT_IMAGE_2_STATE_URL; the connection pool is closed on shutdown."""
    common = await anyio.to_thread.run_sync(importlib.import_module, "gpt_image_2_mcp.adapters.redis_common")
    await anyio.to_thread.run_sync(importlib.import_module, "gpt_image_2_mcp.adapters.redis_session_repository")
    await anyio.to_thread.run_sync(importlib.import_module, "gpt_image_2_mcp.adapters.redis_image_catalogue")
    for adapter in ("redis_job_store", "redis_spend_ledger"):
        await anyio.to_thread.run_sync(importlib.import_module, f"gpt_image_2_mcp.adapters.{adapter}")
    client = common.redis_client(settings.state.url)
    try:
        yield client
    finally:
        await client.aclose()


def redis_sessions(client: Any, settings: Settings) -> SessionRepository:
    from gpt_image_2_mcp.adapters.redis_session_repository import RedisSessionRepository

    return RedisSessionRepository(client, max_sessions=settings.session_max, ttl_ms=settings.session_ttl_ms)


def redis_jobs(client: Any) -> JobStore:
    from gpt_image_2_mcp.adapters.redis_job_store import RedisJobStore

    return RedisJobStore(client)


def redis_ledger(client: Any) -> SpendLedger:
    from gpt_image_2_mcp.adapters.redis_spend_ledger import RedisSpendLedger

    return RedisSpendLedger(client)


def redis_catalogue(client: Any) -> ImageCatalogue:
    from gpt_image_2_mcp.adapters.redis_image_catalogue import RedisImageCatalogue

    return RedisImageCatalogue(client)
