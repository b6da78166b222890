"""The tenacity retry edge of the OpenAI adapters: which failures are retried, how long to wait, and deadlines
for each attempt and for the whole call."""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar

import anyio
import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from gpt_image_2_mcp.domain import errors

log = logging.getLogger(__name__)
T = TypeVar("T")
U = TypeVar("U")

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's requested wait, from retry-after-ms or Retry-After (seconds or an HTTP date).

    A hint that cannot be read (`Retry-After: soon`, a negative, NaN or infinite number, a malformed date) is
    ignored: None, so the caller backs off as usual rather than failing on the server's typo."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    if (ms := _seconds(headers.get("retry-after-ms"))) is not None:
        return ms / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    if (seconds := _seconds(value)) is not None:
        return seconds
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # RFC 9110: HTTP dates are GMT
        parsed = parsed.replace(tzinfo=UTC)
    return max(0.0, parsed.timestamp() - time.time())  # a date in the past means "now"


def _seconds(value: str | None) -> float | None:
    """A non-negative, finite number of seconds, or None."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


class DeadlineExceeded(Exception):
    """An attempt (or the whole call) ran past its deadline: counts as a timeout, so it is retryable."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within {seconds:g}s")
        self.seconds = seconds


class CallFailed(Exception):
    """What RetryPolicy raises when a call failed for good: the last error and how many attempts were REALLY made
    (a Retry-After beyond the budget, or the deadline, can end the retries before max_attempts)."""

    def __init__(self, error: BaseException, attempts: int, max_attempts: int) -> None:
        super().__init__(f"{type(error).__name__} after {attempts} of at most {max_attempts} attempt(s)")
        self.error = error
        self.attempts = attempts
        self.max_attempts = max_attempts

    @property
    def attempts_text(self) -> str:
        """' after 3 attempts' / ' after 1 attempt' for failures that could have been retried; '' when a single
        attempt was the only one possible, or the error is one that is never retried."""
        if self.max_attempts <= 1 or not is_retryable(self.error):
            return ""
        return f" after {self.attempts} attempt{'' if self.attempts == 1 else 's'}"


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APIConnectionError, DeadlineExceeded)):  # includes the SDK's timeouts
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRYABLE_STATUS or exc.status_code >= 500
    return False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries at the adapter edge: a persistent failure surfaces in seconds, not minutes.

    Three bounds, all real deadlines (not per-read timeouts, which a server dripping a byte at a time never
    trips):
    - `attempt_timeout_s` (GPT_IMAGE_2_REQUEST_TIMEOUT_S): each attempt, from sending to the last byte of the
      answer, and for streams to the last event.
    - `max_total_s` (GPT_IMAGE_2_RETRY_MAX_SECONDS) keeps its meaning, the retry budget: no wait and no new
      attempt starts if it would begin after max_total_s from the first attempt (a longer Retry-After therefore
      fails at once). It is not the whole call's bound, as a single high-quality image may legitimately take
      longer than the retry budget.
    - The whole call, all attempts and waits: max_total_s + attempt_timeout_s, i.e. the last attempt may start
      just before the retry budget ends and still gets its own full deadline. Every attempt's deadline is capped
      at this one, so the bound holds whatever the waits and attempt times turn out to be.
    """

    max_attempts: int = 4
    max_total_s: float = 30.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    attempt_timeout_s: float = 300.0

    @property
    def call_deadline_s(self) -> float:
        """The bound on a whole call: every attempt and every wait between them."""
        return self.max_total_s + self.attempt_timeout_s

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        requested = retry_after_seconds(exc) if exc else None
        if requested is not None:
            return requested
        return wait_random_exponential(multiplier=self.backoff_base_s, max=self.backoff_max_s)(state)

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "OpenAI call failed (%s); attempt %d, retrying in %.2fs",
            type(exc).__name__, state.attempt_number, state.upcoming_sleep,
        )

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()` with retries, each attempt under its deadline. Raises CallFailed (or a domain error as is)."""
        return await self._run(call, None)

    async def run_streaming(self, open_stream: Callable[[], Awaitable[T]], consume: Callable[[T], Awaitable[U]]) -> U:
        """Open a stream with retries, then consume it within the REMAINING time of the attempt that opened it.

        One deadline covers the stream's whole answer, as for a plain request (a stream that drips events is as
        stuck as a body that drips bytes). Consuming is never retried, a timeout included: partial images may
        already have reached the caller (its progress and saved partials cannot be taken back) and the server
        is already generating the image, so a second attempt would bill twice for nothing the caller can use."""
        return await self._run(open_stream, consume)

    async def _run(self, call: Callable[[], Awaitable[Any]], consume: Callable[[Any], Awaitable[Any]] | None) -> Any:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(self.max_total_s),
            wait=self._wait,
            retry=retry_if_exception(is_retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )
        call_deadline = anyio.current_time() + self.call_deadline_s
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    deadline = min(anyio.current_time() + self.attempt_timeout_s, call_deadline)
                    result = await self._within(deadline, call)
            if consume is not None:
                result = await self._within(deadline, lambda: consume(result))
        except errors.ImageServerError:
            raise
        except Exception as e:
            raise CallFailed(e, attempts, self.max_attempts) from e
        return result

    async def _within(self, deadline: float, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`, cancelled at `deadline` (event-loop time) and then raising DeadlineExceeded."""
        scope = anyio.CancelScope(deadline=deadline)
        try:
            with scope:
                return await call()
        except Exception as e:
            if scope.cancel_called:  # the call turned our cancellation into an error of its own
                raise DeadlineExceeded(self.attempt_timeout_s) from e
            raise
        # Only reached when the scope swallowed its own cancellation: the deadline passed.
        raise DeadlineExceeded(self.attempt_timeout_s)
