"""Spend control: every call's estimated cost (before) and actual cost (after) in a ledger per owner, a daily
budget checked before any money is spent, and a threshold above which the caller must confirm."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import InvalidRequest

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


@dataclass(frozen=True, slots=True)
class SpendPolicy:
    """The limits from configuration: a daily budget per owner and a confirmation threshold (None: none)."""

    budget_usd_per_day: float | None = None
    confirm_above_usd: float | None = None

    def needs_confirmation(self, estimate_usd: float) -> bool:
        return self.confirm_above_usd is not None and estimate_usd > self.confirm_above_usd

    def check_budget(self, estimate_usd: float, spent_today_usd: float) -> None:
        """Raises BudgetExceeded, with the figures, if the call would take the owner past today's budget."""
        budget = self.budget_usd_per_day
        if budget is None or spent_today_usd + estimate_usd <= budget:
            return
        remaining = max(0.0, budget - spent_today_usd)
        raise BudgetExceeded(
            f"This call is estimated at ${estimate_usd:.4f}, but only ${remaining:.4f} of today's "
            f"${budget:.2f} budget is left (${spent_today_usd:.4f} spent since 00:00 UTC). Nothing was sent. "
            "Lower the quality, size or n, wait until tomorrow (UTC), or raise GPT_IMAGE_2_BUDGET_USD_PER_DAY."
        )


Clock = Callable[[], float]
default_clock: Clock = time.time
