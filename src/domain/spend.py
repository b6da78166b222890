"""Spend control: every call's estimated cost (before) and actual cost (after) in a ledger per owner, a daily
budget checked before any money is spent, and a threshold above which the caller must confirm."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from .errors import InvalidRequest

if TYPE_CHECKING:  # the port is declared in ports.py, which imports this module's values
    from .ports import SpendLedger

DAY_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class SpendEntry:
    """One paid call. `actual_usd` is None until the call finished (and stays None if it failed)."""

    owner: str
    call_id: str
    tool: str
    estimated_usd: float
    at: float
    actual_usd: float | None = None

    @property
    def counted_usd(self) -> float:
        """What the call counts against a budget: what it cost, or what it may cost while it runs."""
        return self.estimated_usd if self.actual_usd is None else self.actual_usd


@dataclass(frozen=True, slots=True)
class Booking:
    """What SpendLedger.book_within did: whether it stored the entry, and what the owner's calls counted
    against the budget just before (the figures of a refusal)."""

    booked: bool
    spent_usd: float

    @classmethod
    def judged(cls, spent_usd: float, entry: SpendEntry, budget_usd: float | None) -> Booking:
        """What a ledger that has just summed `spent_usd` does with `entry`: books it if it fits the budget."""
        return cls(booked=within_budget(spent_usd, entry.estimated_usd, budget_usd), spent_usd=spent_usd)


@dataclass(frozen=True, slots=True)
class DayTotal:
    day: str
    """The UTC date, YYYY-MM-DD."""
    calls: int
    estimated_usd: float
    actual_usd: float


class BudgetExceeded(InvalidRequest):
    """The call's estimate would take the owner past the daily budget; nothing was sent."""


class ConfirmationNeeded(InvalidRequest):
    """The call's estimate is above the confirmation threshold and the caller has not confirmed it."""


def start_of_utc_day(now: float) -> float:
    return now - now % DAY_S


def within_budget(spent_usd: float, estimate_usd: float, budget_usd: float | None) -> bool:
    """Whether a call estimated at `estimate_usd` fits a budget of which `spent_usd` is gone (None: no budget).
    The one rule: the policy and every ledger's atomic booking apply it alike."""
    return budget_usd is None or spent_usd + estimate_usd <= budget_usd


@dataclass(frozen=True, slots=True)
class SpendPolicy:
    """The limits from configuration: a daily budget per owner and a confirmation threshold (None: none)."""

    budget_usd_per_day: float | None = None
    confirm_above_usd: float | None = None

    def needs_confirmation(self, estimate_usd: float) -> bool:
        return self.confirm_above_usd is not None and estimate_usd > self.confirm_above_usd

    def check_budget(self, estimate_usd: float, spent_today_usd: float) -> None:
        """Raises BudgetExceeded, with the figures, if the call would take the owner past today's budget."""
        if not within_budget(spent_today_usd, estimate_usd, self.budget_usd_per_day):
            raise self.refusal(estimate_usd, spent_today_usd)

    def refusal(self, estimate_usd: float, spent_today_usd: float) -> BudgetExceeded:
        """The error for a call the budget refuses, with the figures and what to do."""
        budget = self.budget_usd_per_day or 0.0
        remaining = max(0.0, budget - spent_today_usd)
        return BudgetExceeded(
            f"This call is estimated at ${estimate_usd:.4f}, but only ${remaining:.4f} of today's "
            f"${budget:.2f} budget is left (${spent_today_usd:.4f} spent since 00:00 UTC). Nothing was sent. "
            "Lower the quality, size or n, wait until tomorrow (UTC), or raise GPT_IMAGE_2_BUDGET_USD_PER_DAY."
        )


Clock = Callable[[], float]
default_clock: Clock = time.time


class Confirmation(StrEnum):
    """What became of asking to go ahead with an expensive call."""

    CONFIRMED = "confirmed"
    DECLINED = "declined"
    """The user was asked and said no (or cancelled): their answer, not something to work around."""
    NOT_ASKED = "not asked"
    """Nobody could be asked (no elicitation, a task running unattended)."""


CostConfirmer = Callable[[float], Awaitable[Confirmation]]
"""Asks whoever is behind a call whether to go ahead at this estimate (USD); True means go ahead."""


class SpendGuard:
    """Checks a call against the spend policy before any money is spent, and books what it cost after."""

    def __init__(self, ledger: SpendLedger, policy: SpendPolicy, clock: Clock = default_clock) -> None:
        self._ledger = ledger
        self._policy = policy
        self._clock = clock

    async def authorize(self, owner: str, tool: str, estimate_usd: float, confirm: CostConfirmer | None) -> SpendEntry:
        """Refuse (BudgetExceeded, ConfirmationNeeded) or book the estimate; returns the booked entry."""
        if self._policy.needs_confirmation(estimate_usd):
            await self._check_budget(owner, estimate_usd)  # never ask the user about a call the budget refuses
            answer = Confirmation.NOT_ASKED if confirm is None else await confirm(estimate_usd)
            if answer is Confirmation.DECLINED:
                raise ConfirmationNeeded(
                    f"The user declined this call, estimated at ${estimate_usd:.4f}. Nothing was sent. Do not "
                    "make it again unless the user asks for it; a lower quality, size or n costs less.")
            if answer is not Confirmation.CONFIRMED:
                raise ConfirmationNeeded(
                    f"This call is estimated at ${estimate_usd:.4f}, above the ${self._policy.confirm_above_usd:.4f} "
                    "that needs a confirmation (GPT_IMAGE_2_CONFIRM_ABOVE_USD). Nothing was sent. To go ahead, "
                    "call again with confirm_cost: true (--confirm-cost on the command line); or lower the "
                    "quality, size or n."
                )
        entry = SpendEntry(owner=owner, call_id=f"call_{secrets.token_hex(8)}", tool=tool,
                           estimated_usd=estimate_usd, at=self._clock())
        # Check and book in one step of the ledger, atomic with every other process on the store: calls sent
        # together (to one replica or several) cannot each see the spend from before the others were booked.
        booked = await self._ledger.book_within(entry, start_of_utc_day(entry.at), self._policy.budget_usd_per_day)
        if not booked.booked:
            raise self._policy.refusal(estimate_usd, booked.spent_usd)
        return entry

    async def _check_budget(self, owner: str, estimate_usd: float) -> None:
        spent = await self._ledger.spent_since(owner, start_of_utc_day(self._clock()))
        self._policy.check_budget(estimate_usd, spent)

    async def settle(self, entry: SpendEntry, actual_usd: float) -> None:
        """Book what the call really cost (0 for a placeholder or a call that returned nothing)."""
        await self._ledger.record(replace(entry, actual_usd=round(actual_usd, 6)))

    async def totals(self, owner: str, days: int) -> list[DayTotal]:
        since = start_of_utc_day(self._clock()) - (max(1, days) - 1) * DAY_S
        return await self._ledger.totals(owner, since)
