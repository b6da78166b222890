"""SqliteSpendLedger: the spend ledger in a SQLite file (the `spend` table of migration 3), shared by every
process that opens it, so a daily budget holds across them."""

from __future__ import annotations

import sqlite3

from gpt_image_2_mcp.domain.ports import SpendLedger
from gpt_image_2_mcp.domain.spend import Booking, DayTotal, SpendEntry

from .sqlite_database import SqliteDatabase

UPSERT = (
    # The whole entry: the actual cost replaces the estimate of the same call (and a None actual clears one).
    "INSERT INTO spend (owner, call_id, tool, estimated_usd, actual_usd, at) "
    "VALUES (:owner, :call_id, :tool, :estimated_usd, :actual_usd, :at) "
    "ON CONFLICT (owner, call_id) DO UPDATE SET tool = excluded.tool, estimated_usd = excluded.estimated_usd, "
    "actual_usd = excluded.actual_usd, at = excluded.at"
)
SPENT = (
    # SpendEntry.counted_usd in SQL: what a call cost, or its estimate while it runs.
    "SELECT TOTAL(COALESCE(actual_usd, estimated_usd)) FROM spend WHERE owner = :owner AND at >= :since"
)
DAY = "strftime('%Y-%m-%d', CAST(at AS INTEGER) - (at < CAST(at AS INTEGER)), 'unixepoch')"
"""The UTC date of `at`, as in_memory_spend_ledger.day_of. From floor(at), because SQLite rounds a fractional
'unixepoch' to the millisecond: 23:59:59.9996 would fall on the next day, where time.gmtime keeps it."""
TOTALS = (
    f"SELECT {DAY} AS day, COUNT(*), TOTAL(estimated_usd), TOTAL(COALESCE(actual_usd, 0)) FROM spend "
    "WHERE owner = :owner AND at >= :since GROUP BY day ORDER BY day"
)


def row_of(entry: SpendEntry) -> dict[str, object]:
    return {"owner": entry.owner, "call_id": entry.call_id, "tool": entry.tool,
            "estimated_usd": entry.estimated_usd, "actual_usd": entry.actual_usd, "at": entry.at}


def spent_in(connection: sqlite3.Connection, owner: str, since: float) -> float:
    return round(connection.execute(SPENT, {"owner": owner, "since": since}).fetchone()[0], 6)


class SqliteSpendLedger(SpendLedger):
    """One row per (owner, call_id). Sums and per-day groups are computed by SQLite over the (owner, at) index,
    so a read costs one query however many calls the owner made; results are rounded to 6 decimals as the
    in-memory ledger's are."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def record(self, entry: SpendEntry) -> None:
        """Store an entry, replacing an earlier one with the same owner and call_id."""

        def record(connection: sqlite3.Connection) -> None:
            connection.execute(UPSERT, row_of(entry))

        await self._db.write(record)

    async def book_within(self, entry: SpendEntry, since: float, budget_usd: float | None) -> Booking:
        """The sum and the insert in one write transaction: BEGIN IMMEDIATE takes the file's write lock first,
        so a booking in another process waits for this one and then sees it."""

        def book(connection: sqlite3.Connection) -> Booking:
            booking = Booking.judged(spent_in(connection, entry.owner, since), entry, budget_usd)
            if booking.booked:
                connection.execute(UPSERT, row_of(entry))
            return booking

        return await self._db.write(book)

    async def spent_since(self, owner: str, since: float) -> float:
        """What the owner's calls since `since` count against a budget."""
        return await self._db.read(lambda connection: spent_in(connection, owner, since))

    async def totals(self, owner: str, since: float) -> list[DayTotal]:
        """Per UTC day since `since`, oldest first: number of calls, estimated and actual cost."""

        def totals(connection: sqlite3.Connection) -> list[tuple[str, int, float, float]]:
            return connection.execute(TOTALS, {"owner": owner, "since": since}).fetchall()

        return [DayTotal(day, calls, round(estimated, 6), round(actual, 6))
                for day, calls, estimated, actual in await self._db.read(totals)]
