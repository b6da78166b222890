"""RetryPolicy on its own: real attempt counts, per-attempt deadlines, and readable Retry-After hints only."""

import anyio
import httpx2
import openai
import pytest

from gpt_image_2_mcp.adapters.openai_errors import translate
from gpt_image_2_mcp.adapters.openai_retry import CallFailed, DeadlineExceeded, RetryPolicy, retry_after_seconds
from gpt_image_2_mcp.domain import errors

FAST = {"backoff_base_s": 0.001, "backoff_max_s": 0.002}


def connection_error() -> openai.APIConnectionError:
    return openai.APIConnectionError(request=httpx2.Request("POST", "http://127.0.0.1/v1/images/generations"))


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/images/generations")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    return openai.APIStatusError("failed", response=response, body=None)


class Flaky:
    """Fails with `error` the first `failures` times, then answers "ok"; counts the calls."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


async def test_a_call_that_recovers_returns_its_answer():
    call = Flaky(2, connection_error())
    assert await RetryPolicy(max_attempts=3, **FAST).run(call) == "ok"
    assert call.calls == 3


@pytest.mark.parametrize(("max_attempts", "text"), [(1, ""), (2, " after 2 attempts"), (4, " after 4 attempts")])
async def test_the_count_is_the_attempts_really_made(max_attempts, text):
    call = Flaky(99, connection_error())
    with pytest.raises(CallFailed) as caught:
        await RetryPolicy(max_attempts=max_attempts, **FAST).run(call)
    assert caught.value.attempts == call.calls == max_attempts
    assert caught.value.attempts_text == text
    assert isinstance(caught.value.error, openai.APIConnectionError)


async def test_a_retry_after_beyond_the_budget_stops_after_one_attempt_and_says_so():
    call = Flaky(99, status_error(429, {"retry-after": "60"}))
    with pytest.raises(CallFailed) as caught:
        await RetryPolicy(max_attempts=4, max_total_s=5, **FAST).run(call)
    assert call.calls == 1 and caught.value.attempts_text == " after 1 attempt"
    assert "after 1 attempt (" in str(translate(caught.value))


async def test_an_error_that_is_never_retried_carries_no_count():
    call = Flaky(99, status_error(400))
    with pytest.raises(CallFailed) as caught:
        await RetryPolicy(max_attempts=4, **FAST).run(call)
    assert call.calls == 1 and caught.value.attempts_text == ""


async def test_domain_errors_pass_through_untouched():
    async def refuse() -> None:
        raise errors.BackendProtocolError("no image")

    with pytest.raises(errors.BackendProtocolError):
        await RetryPolicy(max_attempts=3, **FAST).run(refuse)


async def test_each_attempt_has_a_deadline_and_a_timeout_is_retried():
    calls = 0

    async def hang() -> None:
        nonlocal calls
        calls += 1
        await anyio.sleep_forever()

    policy = RetryPolicy(max_attempts=3, max_total_s=5, attempt_timeout_s=0.05, **FAST)
    with pytest.raises(CallFailed) as caught:
        await policy.run(hang)
    assert isinstance(caught.value.error, DeadlineExceeded) and calls == caught.value.attempts == 3
    message = str(translate(caught.value))
    assert "within 0.05s after 3 attempts" in message and "GPT_IMAGE_2_REQUEST_TIMEOUT_S" in message


async def test_the_retry_budget_bounds_the_number_of_timed_out_attempts():
    """max_total_s stops new attempts: the whole call ends within max_total_s + attempt_timeout_s."""
    calls = 0

    async def hang() -> None:
        nonlocal calls
        calls += 1
        await anyio.sleep_forever()

    policy = RetryPolicy(max_attempts=10, max_total_s=0.25, attempt_timeout_s=0.1, **FAST)
    assert policy.call_deadline_s == pytest.approx(0.35)
    with pytest.raises(CallFailed) as caught:
        await policy.run(hang)
    assert caught.value.attempts == calls < 10


async def test_consuming_a_stream_shares_the_deadline_of_the_attempt_that_opened_it_and_is_not_retried():
    opened = 0

    async def open_stream() -> str:
        nonlocal opened
        opened += 1
        return "stream"

    async def consume(stream: str) -> str:
        await anyio.sleep_forever()
        return stream

    policy = RetryPolicy(max_attempts=3, max_total_s=5, attempt_timeout_s=0.05, **FAST)
    with pytest.raises(CallFailed) as caught:
        await policy.run_streaming(open_stream, consume)
    assert isinstance(caught.value.error, DeadlineExceeded) and opened == caught.value.attempts == 1


async def test_an_outside_cancellation_is_not_a_deadline():
    async def hang() -> None:
        await anyio.sleep_forever()

    policy = RetryPolicy(max_attempts=3, attempt_timeout_s=60, **FAST)
    with anyio.move_on_after(0.05) as scope:
        await policy.run(hang)
    assert scope.cancelled_caught


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after-ms": "300"}, 0.3),
    ({"retry-after": "2"}, 2.0),
    ({"retry-after": " 2 "}, 2.0),
    ({"retry-after": "0"}, 0.0),
    ({"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0),  # a date in the past: now
    ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
    ({"retry-after": "soon"}, None),
    ({"retry-after": ""}, None),
    ({"retry-after": "-1"}, None),
    ({"retry-after": "nan"}, None),
    ({"retry-after": "inf"}, None),
    ({"retry-after": "1e999"}, None),
    ({"retry-after-ms": "-300"}, None),
    ({"retry-after": "Mon, 32 Foo 2025 99:99:99 GMT"}, None),
    ({"retry-after": "Mon, 01 Jan 99999 00:00:00 GMT"}, None),
    ({}, None),
])
def test_retry_after_hints_that_cannot_be_read_are_ignored(headers, expected):
    got = retry_after_seconds(status_error(503, headers))
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_an_http_date_without_a_zone_is_read_as_gmt():
    got = retry_after_seconds(status_error(503, {"retry-after": "Fri, 01 Jan 2100 00:00:00 -0000"}))
    assert got is not None and got > 0
