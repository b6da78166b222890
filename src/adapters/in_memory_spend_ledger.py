"""InMemorySpendLedger: the spend ledger in a dict, for throwaway runs (`memory://`) and tests."""

from __future__ import annotations

import time
from collections import defaultdict

from gpt_image_2_mcp.domain.ports import SpendLedger
from gpt_image_2_mcp.domain.spend import Booking, DayTotal, SpendEntry


def day_of(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def day_totals(entries: list[SpendEntry]) -> list[DayTotal]:
    """Entries summed per UTC day, oldest first (shared by the stores that sum in Python)."""
    days: dict[str, list[SpendEntry]] = defaultdict(list)
    for entry in entries:
        days[day_of(entry.at)].append(entry)
    return [
        DayTotal(day, len(items), round(sum(e.estimated_usd for e in items), 6),
                 round(sum(e.actual_usd or 0.0 for e in items), 6))
        for day, items in sorted(days.items())
    ]


def spent_of(entries: list[SpendEntry]) -> float:
    """What entries count against a budget, rounded as every ledger rounds it (shared by the stores that sum
    in Python)."""
    return round(sum(e.counted_usd for e in entries), 6)


class InMemorySpendLedger(SpendLedger):
    """Gone with the process."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], SpendEntry] = {}

    async def record(self, entry: SpendEntry) -> None:
        self._entries[(entry.owner, entry.call_id)] = entry

    async def book_within(self, entry: SpendEntry, since: float, budget_usd: float | None) -> Booking:
        # No await between the sum and the store: atomic for the one event loop that holds the dict.
        booking = Booking.judged(self._spent(entry.owner, since), entry, budget_usd)
        if booking.booked:
            self._entries[(entry.owner, entry.call_id)] = entry
        return booking

    async def spent_since(self, owner: str, since: float) -> float:
        return self._spent(owner, since)

    async def totals(self, owner: str, since: float) -> list[DayTotal]:
        return day_totals(self._owned(owner, since))

    def _spent(self, owner: str, since: float) -> float:
        return spent_of(self._owned(owner, since))

    def _owned(self, owner: str, since: float) -> list[SpendEntry]:
        return [e for (o, _), e in self._entries.items() if o == owner and e.at >= since]
