"""SqliteDatabase: one SQLite file of durable state (edit sessions, the image catalogue, jobs, spend), its schema
migrations, and transactions run in a worker thread so the event loop never waits on the disk."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random_exponential

from gpt_image_2_mcp.domain.errors import StateStoreError

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
"""How long a write waits for another process's write to finish before giving up."""

MIGRATIONS: tuple[str, ...] = (
    # 1: sessions with their turns one row each (so appending a turn is one insert), and the image catalogue.
    """
    CREATE TABLE sessions (
        owner TEXT NOT NULL,
        id TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        last_used REAL NOT NULL,
        recency INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (owner, id)
    );
    CREATE INDEX sessions_by_recency ON sessions (owner, recency);
    CREATE INDEX sessions_by_last_used ON sessions (last_used);
    CREATE TABLE turns (
        owner TEXT NOT NULL,
        session_id TEXT NOT NULL,
        turn INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (owner, session_id, turn),
        FOREIGN KEY (owner, session_id) REFERENCES sessions (owner, id) ON DELETE CASCADE
    );
    CREATE TABLE images (
        owner TEXT NOT NULL,
        image_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (owner, image_id)
    );
    CREATE INDEX images_newest_first ON images (owner, created_at DESC, image_id);
    """,
    # 2: jobs, the job as JSON plus the columns that find, page and sweep search by. expires_at is created_at +
    # ttl (NULL: never). Each query has an index in its own order, so none of them sorts; the idempotency-key
    # index leaves out the many jobs without a key.
    """
    CREATE TABLE jobs (
        owner TEXT NOT NULL,
        job_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        fingerprint TEXT NOT NULL,
        idempotency_key TEXT,
        expires_at REAL,
        data TEXT NOT NULL,
        PRIMARY KEY (owner, job_id)
    );
    CREATE INDEX jobs_newest_first ON jobs (owner, created_at DESC, job_id);
    CREATE INDEX jobs_by_fingerprint ON jobs (owner, fingerprint, created_at DESC, job_id);
    CREATE INDEX jobs_by_idempotency_key ON jobs (owner, idempotency_key, created_at DESC, job_id)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX jobs_by_expiry ON jobs (expires_at) WHERE expires_at IS NOT NULL;
    """,
    # 3: the spend ledger, one row per paid call (the estimate, replaced by the actual cost when it finishes).
    # actual_usd is NULL while the call runs or if it failed. Every read is one owner's rows since a time, so
    # the index is (owner, at) and a day's sums read a range of it.
    """
    CREATE TABLE spend (
        owner TEXT NOT NULL,
        call_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        estimated_usd REAL NOT NULL,
        actual_usd REAL,
        at REAL NOT NULL,
        PRIMARY KEY (owner, call_id)
    );
    CREATE INDEX spend_by_time ON spend (owner, at);
    """,
)
"""Forward migrations: entry i takes a file from schema version i to i + 1 (PRAGMA user_version). Append only."""


class SqliteDatabase:
    """One SQLite file, opened on first use with WAL, a busy timeout and foreign keys on, and brought up to the
    newest schema. One connection per object, used by one worker thread at a time; writes run inside
    BEGIN IMMEDIATE, so writers in other processes on the same file wait for each other instead of interleaving."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` in a worker thread inside one read transaction (a consistent snapshot)."""
        return await anyio.to_thread.run_sync(self._run, fn, "BEGIN")

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` in a worker thread inside one write transaction: all of it or nothing."""
        return await anyio.to_thread.run_sync(self._run, fn, "BEGIN IMMEDIATE")

    def close(self) -> None:
        """Close the connection; the next use opens it again."""
        with self._lock:
            self._drop()

    def _run(self, fn: Callable[[sqlite3.Connection], T], begin: str) -> T:
        with self._lock:
            try:
                return transaction(self._connect(), fn, begin)
            except sqlite3.Error as error:
                self._drop()  # the next call opens the file afresh: it may have been a passing fault
                raise self._failure(error) from error

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = open_file(self.path)
            try:
                migrate(connection, self.path)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def _failure(self, error: sqlite3.Error) -> StateStoreError:
        return StateStoreError(
            f"The state file {self.path} failed: {error}. Check that its folder is writable, the disk has space "
            "and no other program holds the file locked, or point the state store at another file."
        )


def transaction(connection: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T], begin: str) -> T:
    """`fn` inside BEGIN … COMMIT, rolled back if it raises (a domain error as much as a database one)."""
    connection.execute(begin)
    try:
        result = fn(connection)
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # keep the error that made us roll back, not a second one
            connection.rollback()
        raise
    connection.execute("COMMIT")
    return result


def open_file(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode (isolation_level=None), so the transactions are the ones we begin."""
    if path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StateStoreError(
                f"Cannot create the folder of the state file {path}: {error}. Create it, or point the state store "
                "at a writable place."
            ) from error
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        use_wal(connection)
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a power cut loses the last commits only
    except BaseException:
        connection.close()
        raise
    return connection


def _is_busy(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


@retry(retry=retry_if_exception(_is_busy), wait=wait_random_exponential(multiplier=0.01, max=0.2),
       stop=stop_after_delay(BUSY_TIMEOUT_MS / 1000), reraise=True)
def use_wal(connection: sqlite3.Connection) -> None:
    """Switch the file to WAL (a no-op once it is). The switch needs a lock that SQLite does not wait for with
    the busy timeout: processes opening a new file at the same moment got "database is locked" (1 in ~800 of
    twenty at once, under load), so it is tried again here for as long as a write would wait."""
    connection.execute("PRAGMA journal_mode = WAL")


def migrate(connection: sqlite3.Connection, path: str) -> None:
    """Bring the file up to len(MIGRATIONS), each step in one write transaction. Refuses a newer file."""
    version = schema_version(connection)
    refuse_newer(version, path)
    if version == len(MIGRATIONS):
        return

    def step(connection: sqlite3.Connection) -> None:
        # Read the version again under the write lock: another process may have migrated meanwhile.
        version = schema_version(connection)
        refuse_newer(version, path)
        for number in range(version, len(MIGRATIONS)):
            # Statement by statement: executescript would COMMIT first and break the migration's transaction.
            for statement in MIGRATIONS[number].split(";"):
                if statement.strip():
                    connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    transaction(connection, step, "BEGIN IMMEDIATE")


def schema_version(connection: sqlite3.Connection) -> int:
    return connection.execute("PRAGMA user_version").fetchone()[0]


def refuse_newer(version: int, path: str) -> None:
    if version > len(MIGRATIONS):
        raise StateStoreError(
            f"The state file {path} has schema version {version}, but this gpt-image-2-mcp knows versions up to "
            f"{len(MIGRATIONS)}: a newer release wrote it. Upgrade gpt-image-2-mcp, or point the state store at "
            "another file."
        )
