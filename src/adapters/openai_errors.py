"""SDK exceptions as domain errors whose text says what to do next, and never holds a key."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx2
import openai

from gpt_image_2_mcp.domain import errors

from .openai_retry import CallFailed, DeadlineExceeded, retry_after_seconds
from .redaction import scrub


def _error_details(exc: openai.APIStatusError) -> tuple[str, str | None, str | None]:
    body: Any = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict):
        return str(body.get("message") or exc.message), body.get("code"), body.get("param")
    return exc.message, exc.code, exc.param


def translate(exc: BaseException, *, secrets: Iterable[str] = (), attempts: str = "") -> errors.ImageServerError:
    """An SDK exception as a domain error. A CallFailed from RetryPolicy is unwrapped and its real attempt count
    goes into the text."""
    secrets = tuple(secrets)
    if isinstance(exc, CallFailed):
        return translate(exc.error, secrets=secrets, attempts=exc.attempts_text)
    if isinstance(exc, errors.ImageServerError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc, secrets, attempts)
    return _from_transport(exc, secrets, attempts)


def _from_transport(exc: BaseException, secrets: tuple[str, ...], attempts: str) -> errors.ImageServerError:
    """Failures before an HTTP status: deadlines, connections, unreadable answers."""
    if isinstance(exc, (openai.APITimeoutError, DeadlineExceeded)):
        within = f" within {exc.seconds:g}s" if isinstance(exc, DeadlineExceeded) else " in time"
        return errors.BackendUnavailable(
            f"The image API did not complete the request{within}{attempts}. High-quality and large images can "
            "take minutes: raise GPT_IMAGE_2_REQUEST_TIMEOUT_S, or try a lower quality or a smaller size."
        )
    if isinstance(exc, openai.APIConnectionError):
        return errors.BackendUnavailable(
            f"Could not reach the image API{attempts} ({scrub(str(exc.__cause__ or exc), secrets)}). Check the "
            "network and OPENAI_BASE_URL, then try again."
        )
    if isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError)):
        return errors.BackendProtocolError(
            "The image API answered with something that is not valid JSON; nothing was saved. Try again; if it "
            "persists, check OPENAI_BASE_URL points at an OpenAI-compatible /v1 endpoint.")
    if isinstance(exc, (httpx2.HTTPError, openai.APIError)):
        return errors.BackendUnavailable(
            f"The connection to the image API broke off ({type(exc).__name__}: {scrub(str(exc), secrets)}). "
            "Try again.")
    return errors.BackendError(f"Unexpected failure talking to the image API: {type(exc).__name__}. Try again.")


def _from_status(exc: openai.APIStatusError, secrets: tuple[str, ...], attempts: str) -> errors.ImageServerError:
    """An HTTP error status, by what the caller can do about it."""
    message, code, param = _error_details(exc)
    message = scrub(message, secrets)
    status, rid = exc.status_code, exc.request_id
    if status == 401:
        return errors.BackendAuthenticationFailed(
            f"OpenAI rejected the API key (401: {message}). Check OPENAI_API_KEY (and OPENAI_ORG_ID / "
            "OPENAI_PROJECT_ID if set), then restart the server.", status=status, request_id=rid)
    if status == 403:
        return errors.BackendPermissionDenied(
            f"OpenAI refused access (403: {message}). gpt-image-2 needs a verified organization: verify it "
            "under Settings > Organization > General on platform.openai.com (it can take a few minutes to "
            "apply), and check that the key's project may use gpt-image-2.", status=status, request_id=rid)
    if status == 429:
        return _rate_limited(exc, message, code, attempts)
    if status >= 500:
        return errors.BackendUnavailable(
            f"The image API failed with {status}{attempts} ({message}). It is usually temporary: try again "
            "in a minute.", status=status, request_id=rid)
    return _rejected(status, message, code, param, rid)


def _rate_limited(exc: openai.APIStatusError, message: str, code: str | None, attempts: str) -> errors.BackendError:
    status, rid = exc.status_code, exc.request_id
    if code == "insufficient_quota":
        return errors.BackendRateLimited(
            f"The OpenAI account is out of quota ({message}). Add credit or raise the budget in the "
            "billing settings, then try again.", status=status, request_id=rid)
    wait = retry_after_seconds(exc)
    hint = f" The API asked to wait {wait:.0f}s." if wait else ""
    return errors.BackendRateLimited(
        f"Rate limited by OpenAI{attempts} ({message}).{hint} Wait a minute and try again, or lower n; "
        "image limits per minute depend on the account's usage tier.", status=status, request_id=rid)


def _rejected(status: int, message: str, code: str | None, param: str | None, rid: str | None) -> errors.BackendError:
    """A 4xx the API will answer again: the request itself must change."""
    if code in ("moderation_blocked", "content_policy_violation") or "safety system" in message.lower():
        return errors.ContentPolicyViolation(
            f"OpenAI's safety system blocked this request ({code or 'moderation'}: {message}). Rephrase the "
            "prompt or use other images; repeating it as is will be blocked again.", status=status,
            request_id=rid)
    if param == "model":
        return errors.ModelNotSupportedOnEndpoint(
            f"This endpoint does not accept gpt-image-2 ({status}: {message}).", status=status, request_id=rid)
    if "transparent" in message.lower():
        return errors.BackendRejected(
            f"The API refused a transparent background ({message}). Use background='opaque' (or 'auto').",
            status=status, request_id=rid)
    where = f" (parameter {param})" if param else ""
    return errors.BackendRejected(
        f"OpenAI rejected the request{where} with {status}: {message}. Fix the request; repeating it as is "
        "will fail again.", status=status, request_id=rid)
