"""Domain errors. Every message tells the caller what to do next."""

from __future__ import annotations


class ImageServerError(Exception):
    """Base of every error this server reports to a caller."""

    saved_paths: tuple[str, ...] = ()
    """Paid-for images the failed call saved all the same: a caller told the error in other words still hears
    where they are."""


class InvalidRequest(ImageServerError):
    """The caller's arguments break a rule; nothing was sent, nothing was spent."""


class InputImageError(InvalidRequest):
    """A reference image or mask cannot be used as it is."""


class OwnImageUnreadable(InputImageError):
    """An image this server made, given back as a reference (an edit session's turn), can no longer be read:
    moved, deleted or changed since. The session words it; the reader's own reason is the cause."""


class OutputLocationError(InvalidRequest):
    """The output folder is refused or unusable."""


class UrlFetchRefused(InvalidRequest):
    """The URL may not be fetched: not http(s), malformed, or a host that resolves to a non-public address."""


class UrlFetchFailed(ImageServerError):
    """The fetch was allowed but produced no body: DNS, connection, TLS, timeout, HTTP status, size, redirects."""


class SessionNotFound(ImageServerError):
    """No live edit session has that id."""


class SessionMovedOn(ImageServerError):
    """Another process recorded a turn in the session while this one was being made."""


class ImageNotFound(ImageServerError):
    """No catalogued image has that id for this owner, or its file is gone."""


class JobNotFound(ImageServerError):
    """No job (or task) of this owner has that id, or it expired."""


class IdempotencyConflict(InvalidRequest):
    """An idempotency key was used before with other arguments."""


class StateStoreError(ImageServerError):
    """The state store (SQLite file or Redis) failed or cannot be reached."""


class NotConfigured(ImageServerError):
    """The backend needs configuration it does not have (an API key, usually)."""


class BackendError(ImageServerError):
    """The image API failed. Carries what the caller needs to follow up."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None) -> None:
        if request_id:
            message = f"{message} (request id: {request_id})"
        super().__init__(message)
        self.status = status
        self.request_id = request_id


class BackendAuthenticationFailed(BackendError):
    """401: the key is missing, wrong or revoked."""


class BackendPermissionDenied(BackendError):
    """403: usually organization verification for gpt-image models."""


class BackendRateLimited(BackendError):
    """429 after the retry budget ran out."""


class BackendUnavailable(BackendError):
    """Connection errors, timeouts and 5xx after the retry budget ran out."""


class BackendRejected(BackendError):
    """A 4xx the API will keep answering: fix the request, do not retry as is."""


class ContentPolicyViolation(BackendRejected):
    """The moderation system blocked the prompt or an image."""


class ModelNotSupportedOnEndpoint(BackendRejected):
    """The direct edits endpoint refused gpt-image-2 (the launch-time 'must be dall-e-2' 400)."""


class BackendProtocolError(BackendError):
    """The API answered 200 with something unreadable, no image, or a stream cut short."""
