"""One contract for every SpendLedger: memory, SQLite and Redis behave alike."""

from __future__ import annotations

import asyncio

import pytest

from gpt_image_2_mcp.domain.spend import DAY_S, DayTotal, SpendEntry, start_of_utc_day
from tests.contracts.stores import CONTRACT_NOW

TODAY = start_of_utc_day(CONTRACT_NOW)


def entry(call: str, estimated: float, actual: float | None = None, owner: str = "alice", at: float = TODAY + 60,
          ) -> SpendEntry:
    return SpendEntry(owner=owner, call_id=call, tool="generate_image", estimated_usd=estimated, at=at,
                      actual_usd=actual)


async def test_spent_counts_actual_costs_and_the_estimates_of_running_calls(ledger_store):
    ledger = ledger_store.ledger()
    await ledger.record(entry("a", 0.05, 0.04))
    await ledger.record(entry("b", 0.2))  # still running: its estimate counts
    await ledger.record(entry("c", 0.1, 0.0))  # a placeholder or a failure: nothing spent
    assert await ledger.spent_since("alice", TODAY) == pytest.approx(0.24)


async def test_recording_the_actual_cost_replaces_the_estimate(ledger_store):
    ledger = ledger_store.ledger()
    await ledger.record(entry("a", 0.2))
    await ledger_store.ledger().record(entry("a", 0.2, 0.15))
    assert await ledger.spent_since("alice", TODAY) == pytest.approx(0.15)


async def test_owners_and_days_are_kept_apart(ledger_store):
    ledger = ledger_store.ledger()
    await ledger.record(entry("a", 0.05, 0.05, owner="alice"))
    await ledger.record(entry("b", 1.0, 1.0, owner="bob"))
    await ledger.record(entry("c", 0.3, 0.3, at=TODAY - DAY_S + 10))  # yesterday
    assert await ledger.spent_since("alice", TODAY) == pytest.approx(0.05)
    assert await ledger.spent_since("bob", TODAY) == pytest.approx(1.0)
    assert await ledger.spent_since("carol", TODAY) == 0


async def test_totals_are_per_utc_day_oldest_first(ledger_store):
    ledger = ledger_store.ledger()
    await ledger.record(entry("old", 0.3, 0.25, at=TODAY - DAY_S + 10))
    await ledger.record(entry("a", 0.05, 0.04))
    await ledger.record(entry("b", 0.2))
    await ledger.record(entry("x", 9.0, 9.0, owner="bob"))
    totals = await ledger.totals("alice", TODAY - DAY_S)
    assert [t.day for t in totals] == sorted(t.day for t in totals) and len(totals) == 2
    assert totals[0] == DayTotal(totals[0].day, 1, 0.3, 0.25)
    assert (totals[1].calls, totals[1].estimated_usd, totals[1].actual_usd) == (2, pytest.approx(0.25),
                                                                                  pytest.approx(0.04))
    assert [t.calls for t in await ledger.totals("alice", TODAY)] == [2]


async def test_a_booking_within_the_budget_is_stored_and_one_past_it_is_not(ledger_store):
    ledger = ledger_store.ledger()
    await ledger.record(entry("earlier", 0.05, 0.04))
    booked = await ledger.book_within(entry("fits", 0.01), TODAY, 0.05)
    refused = await ledger.book_within(entry("too much", 0.01), TODAY, 0.05)
    assert (booked.booked, booked.spent_usd) == (True, pytest.approx(0.04))
    assert (refused.booked, refused.spent_usd) == (False, pytest.approx(0.05))
    assert await ledger.spent_since("alice", TODAY) == pytest.approx(0.05)  # the refused one left no trace
    assert (await ledger.book_within(entry("no budget", 7.0), TODAY, None)).booked


async def test_bookings_sent_together_from_many_processes_never_pass_the_budget(ledger_store):
    # Each ledger is its own connection, as each replica has its own: the sum and the store must be one step
    # of the store itself, or the twenty would each see the spend from before the others.
    ledgers = [ledger_store.ledger() for _ in range(20)]
    results = await asyncio.gather(*(ledger.book_within(entry(f"call {i}", 0.006), TODAY, 0.05)
                                     for i, ledger in enumerate(ledgers)))
    assert sum(r.booked for r in results) == 8  # 8 x $0.006 fit in $0.05; a ninth would not
    assert await ledgers[0].spent_since("alice", TODAY) == pytest.approx(0.048)
    assert sorted(r.spent_usd for r in results if r.booked) == pytest.approx([0.006 * i for i in range(8)])


async def test_a_booking_counts_a_settled_cost_above_its_estimate(ledger_store):
    ledger = ledger_store.ledger()
    await ledger.record(entry("a", 0.01))
    await ledger_store.ledger().record(entry("a", 0.01, 0.045))  # settled elsewhere, above its estimate
    assert not (await ledger.book_within(entry("b", 0.01), TODAY, 0.05)).booked
