"""The state stores the contract suites run against: each makes a session repository and an image catalogue
over one store, can reopen them (a new process on the same store) and can let time pass."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio

from gpt_image_2_mcp.adapters.in_memory_image_catalogue import InMemoryImageCatalogue
from gpt_image_2_mcp.adapters.in_memory_job_store import InMemoryJobStore
from gpt_image_2_mcp.adapters.in_memory_session_repository import InMemorySessionRepository
from gpt_image_2_mcp.adapters.in_memory_spend_ledger import InMemorySpendLedger
from gpt_image_2_mcp.adapters.redis_image_catalogue import RedisImageCatalogue
from gpt_image_2_mcp.adapters.redis_job_store import RedisJobStore
from gpt_image_2_mcp.adapters.redis_session_repository import RedisSessionRepository
from gpt_image_2_mcp.adapters.redis_spend_ledger import RedisSpendLedger
from gpt_image_2_mcp.adapters.sqlite_database import SqliteDatabase
from gpt_image_2_mcp.adapters.sqlite_image_catalogue import SqliteImageCatalogue
from gpt_image_2_mcp.adapters.sqlite_job_store import SqliteJobStore
from gpt_image_2_mcp.adapters.sqlite_session_repository import SqliteSessionRepository
from gpt_image_2_mcp.adapters.sqlite_spend_ledger import SqliteSpendLedger
from gpt_image_2_mcp.domain.ports import ImageCatalogue, JobStore, SessionRepository, SpendLedger

CONTRACT_NOW = float(int(time.time()))
"""The contracts' "now": recent, since jobs also expire by the real clock (Redis key expiry)."""


class Clock:
    def __init__(self) -> None:
        self.now = CONTRACT_NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Store:
    """One store under test. Each call of `sessions`, `catalogue`, `jobs` or `ledger` is a new adapter on the same
    data, as a new process would open it (memory:// has one process only, so it returns the same one)."""

    sessions: Callable[..., SessionRepository]
    catalogue: Callable[[], ImageCatalogue]
    advance: Callable[[float], Any]
    close: Callable[[], Any] = lambda: None
    jobs: Callable[[], JobStore] | None = None
    ledger: Callable[[], SpendLedger] | None = None


def memory_store(tmp_path, request) -> Store:
    clock = Clock()
    repositories: dict[str, Any] = {}

    def sessions(max_sessions: int = 20, ttl_ms: int = 3_600_000) -> SessionRepository:
        # One repository per store: memory has nothing to reopen, so "reopening" returns the same one.
        return repositories.setdefault("sessions", InMemorySessionRepository(max_sessions, ttl_ms, clock=clock))

    def catalogue() -> ImageCatalogue:
        return repositories.setdefault("catalogue", InMemoryImageCatalogue())

    def advance(seconds: float) -> None:
        clock.now += seconds

    def jobs() -> JobStore:
        return repositories.setdefault("jobs", InMemoryJobStore())

    def ledger() -> SpendLedger:
        return repositories.setdefault("ledger", InMemorySpendLedger())

    return Store(sessions, catalogue, advance, jobs=jobs, ledger=ledger)


def sqlite_store(tmp_path, request) -> Store:
    clock = Clock()
    path = str(tmp_path / "state.sqlite3")
    opened: list[SqliteDatabase] = []

    def database() -> SqliteDatabase:
        # A new database object is a new connection to the file, as a new process would open it.
        opened.append(SqliteDatabase(path))
        return opened[-1]

    def sessions(max_sessions: int = 20, ttl_ms: int = 3_600_000) -> SessionRepository:
        return SqliteSessionRepository(database(), max_sessions, ttl_ms, clock=clock)

    def catalogue() -> ImageCatalogue:
        return SqliteImageCatalogue(database())

    def jobs() -> JobStore:
        return SqliteJobStore(database(), clock=clock)

    def ledger() -> SpendLedger:
        return SqliteSpendLedger(database())

    def advance(seconds: float) -> None:
        clock.now += seconds

    def close() -> None:
        for db in opened:
            db.close()

    return Store(sessions, catalogue, advance, jobs=jobs, ledger=ledger, close=close)


def redis_store(tmp_path, request) -> Store:
    """A real redis-server (the session's `redis_server`), a namespace of this test's own, and a new client per
    adapter, as a new process would open. Redis expires keys on its own clock, so `advance` really waits (and
    moves the clock the job stores read, which starts where the contracts' times do)."""
    server = request.getfixturevalue("redis_server")
    clock = Clock()
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    clients: list[redis.asyncio.Redis] = []

    def client() -> redis.asyncio.Redis:
        clients.append(redis.asyncio.Redis.from_url(server.url))
        return clients[-1]

    def sessions(max_sessions: int = 20, ttl_ms: int = 3_600_000) -> SessionRepository:
        return RedisSessionRepository(client(), max_sessions, ttl_ms, namespace)

    def catalogue() -> ImageCatalogue:
        return RedisImageCatalogue(client(), namespace)

    def jobs() -> JobStore:
        return RedisJobStore(client(), namespace, clock=clock)

    def ledger() -> SpendLedger:
        return RedisSpendLedger(client(), namespace)

    def advance(seconds: float) -> None:
        clock.now += seconds
        time.sleep(seconds)

    async def close() -> None:
        if clients:
            keys = [key async for key in clients[0].scan_iter(match=f"{namespace}:*")]
            if keys:
                await clients[0].delete(*keys)
        for made in clients:
            await made.aclose()

    return Store(sessions, catalogue, advance, jobs=jobs, ledger=ledger, close=close)


STORES: dict[str, Callable[..., Store]] = {"memory": memory_store, "sqlite": sqlite_store, "redis": redis_store}
"""Every store, by name; the contract suites run once per store."""
PERSISTENT = frozenset(STORES) - {"memory"}
"""The stores whose data outlives the process: the durability tests run on these."""
JOB_STORES = frozenset({"memory", "sqlite", "redis"})
"""The stores with a JobStore adapter: the job contract runs on these."""
LEDGER_STORES = frozenset({"memory", "sqlite", "redis"})
"""The stores with a SpendLedger adapter: the ledger contract runs on these."""
