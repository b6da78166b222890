"""What the Redis state adapters share: key naming, turning Redis failures into StateStoreError, and the
schema version check."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import quote

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import AuthenticationError, ConnectionError, RedisError, TimeoutError

from gpt_image_2_mcp.domain.errors import StateStoreError

from .redaction import scrub
from .state_codec import SCHEMA_VERSION

DEFAULT_NAMESPACE = "gpt-image-2-mcp"

RECONNECT = Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=5)
"""A command that meets a dropped or refused connection is tried again for about a second and a half: a Redis
restart or failover mid-call then costs a pause, not a failed call (or a paid image left off the catalogue and
the ledger). Safe to repeat: every write here is a whole-value replace or a compare-and-set script, and the
budget's WATCH transaction starts over by itself. A store that stays down still fails within that time."""


def redis_client(url: str) -> Redis:
    """The client every Redis adapter shares, for a redis:// / rediss:// / unix:// URL."""
    return Redis.from_url(url, retry=RECONNECT, retry_on_error=[ConnectionError, TimeoutError])

P = ParamSpec("P")
R = TypeVar("R")
Method = Callable[Concatenate[Any, P], Awaitable[R]]


def owner_part(owner: str) -> str:
    """An owner as one key segment. Percent-encoded so it never holds ':' (owner 'a:b' with session 'c' and
    owner 'a' with session 'b:c' must not share a key) nor '{', which Redis Cluster would read as a hash tag."""
    return quote(owner, safe="")


def as_text(value: bytes | str) -> str:
    """A reply as text, whether or not the client was made with decode_responses."""
    return value.decode() if isinstance(value, bytes) else value


def describe(client: Redis) -> str:
    """The store as a URL without credentials, e.g. redis://127.0.0.1:6379/0, for error messages."""
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    scheme = "rediss" if "SSL" in pool.connection_class.__name__ else "redis"
    return f"{scheme}://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def store_error(client: Redis, error: BaseException) -> StateStoreError:
    """A StateStoreError naming the store and what to do; never the password, even if a reply echoes it."""
    where = describe(client)
    password = client.connection_pool.connection_kwargs.get("password")
    detail = scrub(str(error) or type(error).__name__, [password]).rstrip(".")
    if isinstance(error, AuthenticationError):
        advice = f"The Redis state store at {where} refused the credentials ({detail}). Check the user name and " \
                 "password in the state store URL."
    elif isinstance(error, ConnectionError | TimeoutError | OSError):
        advice = f"The Redis state store at {where} cannot be reached ({detail}). Check that Redis is running " \
                 "there and that the state store URL (host, port, redis:// or rediss://) is right."
    else:
        advice = f"The Redis state store at {where} failed ({detail}). Check the Redis server (its log, memory " \
                 "limit, whether it is a read-only replica) and try again."
    return StateStoreError(advice)


def guarded(*, writes: bool) -> Callable[[Method[P, R]], Method[P, R]]:
    """Wrap an adapter method so Redis failures surface as StateStoreError (domain errors pass through) and
    the schema is checked first. The adapter must have `_client` and `_schema` (a SchemaCheck)."""

    def decorate(method: Method[P, R]) -> Method[P, R]:
        @functools.wraps(method)
        async def wrapper(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                await self._schema.check(writes)
                return await method(self, *args, **kwargs)
            except (RedisError, OSError) as error:
                raise store_error(self._client, error) from error

        return wrapper

    return decorate


class SchemaCheck:
    """`{namespace}:schema` holds the layout version, set on the first write (by SET NX, so a race between
    processes is harmless). A version this code does not know stops every call, before it reads or writes."""

    def __init__(self, client: Redis, namespace: str) -> None:
        self._client = client
        self._key = f"{namespace}:schema"
        self._known = False  # the stored version (or its absence) was checked
        self._written = False  # the key is known to exist

    async def check(self, write: bool) -> None:
        if self._written or (self._known and not write):
            return
        stored = await self._client.get(self._key)
        if stored is None and write:
            await self._client.set(self._key, SCHEMA_VERSION, nx=True)
            stored = await self._client.get(self._key)
        self._known = True
        if stored is None:
            return  # nothing stored yet: nothing to be incompatible with
        self._refuse_unknown(as_text(stored))
        self._written = True

    def _refuse_unknown(self, version: str) -> None:
        where = describe(self._client)
        if not version.isdigit():
            raise StateStoreError(
                f"The Redis state store at {where} has {self._key} = {version!r}, not a gpt-image-2-mcp schema "
                "version: something else uses this namespace. Give this server a namespace of its own."
            )
        if int(version) > SCHEMA_VERSION:
            raise StateStoreError(
                f"The Redis state store at {where} holds state written by a newer gpt-image-2-mcp (schema "
                f"{version}; this one knows up to {SCHEMA_VERSION}). Upgrade this server, or give it a namespace "
                "of its own."
            )
