"""Ports: what the use cases need from the outside world, as protocols the adapters implement."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .access import VerifiedToken
from .catalogue import ImagePage, ImageRecord
from .jobs import Job, JobPage, Precedents
from .sessions import EditSession, Turn
from .spend import Booking, DayTotal, SpendEntry
from .values import ArrivedImage, BackendResult, EditRequest, GenerationRequest, InputImage, Preview, SavedImage

PartialImageHandler = Callable[[int, bytes], Awaitable[None]]
"""Called with (index, image bytes) for each partial image a streaming call yields."""


class ProgressReporter(Protocol):
    """Receives progress steps; a no-op when nobody listens."""

    async def __call__(self, progress: float, total: float | None, message: str) -> None: ...


class ImageBackend(Protocol):
    """Something that turns a request into images: the OpenAI APIs, or a fake."""

    @abstractmethod
    async def generate(
        self, request: GenerationRequest, on_partial: PartialImageHandler | None = None
    ) -> BackendResult:
        """Create images from a prompt. Raises a BackendError subclass on failure."""

    @abstractmethod
    async def edit(self, request: EditRequest, on_partial: PartialImageHandler | None = None) -> BackendResult:
        """Edit or compose reference images. Raises a BackendError subclass on failure."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """Where the sink put the bytes."""

    path: str
    filename: str
    size_bytes: int
    rescued: bool = False
    file_id: tuple[int, int] | None = None
    """(device, inode) of the file written, so a later read can check it is still that file."""


class ImageSink(Protocol):
    """Stores image bytes durably, atomically and without overwriting anything."""

    @abstractmethod
    def prepare(self, output_dir: str | None, roots: Sequence[str] | None = None) -> str:
        """Resolve and check the folder images of one call will go to. Raises OutputLocationError."""

    @abstractmethod
    def save(self, data: bytes, *, folder: str, extension: str, prefix: str | None, label: str | None) -> StoredFile:
        """Write one image; if `folder` fails, rescue it to a fallback folder rather than lose it."""

    @abstractmethod
    def is_intact(self, image: SavedImage) -> bool:
        """Whether the file this sink wrote is still there, unchanged (a cheap check, no read)."""

    @abstractmethod
    def read_back(self, image: SavedImage) -> bytes:
        """The bytes of an image this sink wrote, only if the file is still the one it wrote (no link or
        replacement put in its place). Raises OutputLocationError otherwise."""

    @abstractmethod
    def discard(self, image: SavedImage) -> None:
        """Remove a file this sink wrote, if it is still the one it wrote (the partial images of a call that was
        then cancelled); anything else at that path is left alone."""


class ImageCodec(Protocol):
    """Reads image bytes: what they are, how big, and a small copy to show."""

    @abstractmethod
    def probe(self, data: bytes) -> tuple[int, int, str]:
        """(width, height, mime type) of encoded image bytes. Raises InputImageError if unreadable."""

    @abstractmethod
    def decode_input(self, data: bytes, source: str) -> InputImage:
        """Check that `data` is a whole image of an accepted format and size. Raises InputImageError."""

    @abstractmethod
    def preview(self, data: bytes, max_edge: int, max_bytes: int) -> Preview:
        """A copy no longer than `max_edge` whose base64 fits `max_bytes` (or the smallest one possible)."""


class ArrivingImagesObserver(Protocol):
    """Told of a call's images as they arrive, just before they are saved: work on them (a preview) can then run
    on another core during the save and while the call books, catalogues and returns them."""

    @abstractmethod
    def arriving(self, images: Sequence[ArrivedImage], inline: str) -> None:
        """A call's `images`, for a caller who wants them shown `inline` (Placement.inline). Called on the event
        loop right before the save: start work, do not do it here (the save waits), do not touch the files (they
        are being written), and never raise (nothing may stand between paid-for bytes and the disk)."""


class ImageSource(Protocol):
    """Loads a reference image from a path, file:// URL, http(s) URL or data URL."""

    @abstractmethod
    async def load(self, reference: str, *, role: str, roots: Sequence[str] | None = None) -> InputImage:
        """Read and decode one input. Raises InputImageError naming the input and the problem."""

    @abstractmethod
    async def digest(self, reference: str, *, role: str, roots: Sequence[str] | None = None) -> str:
        """What identifies the input's content, cheaply: a hash of a local file's bytes (read under the same
        rules as `load`), of a data URL, or the URL itself for http(s). Raises InputImageError."""


class UrlFetcher(Protocol):
    """Fetches an http(s) URL without becoming a way to reach internal hosts."""

    @abstractmethod
    async def fetch(self, url: str) -> tuple[bytes, str | None]:
        """(body, content type) of `url`. Raises UrlFetchRefused or UrlFetchFailed."""


class SessionRepository(Protocol):
    """Keeps edit sessions between calls, processes and restarts. Every query is by owner. The LRU cap and the
    idle TTL hold per owner; a session counts as used whenever it is read or a turn is added."""

    @abstractmethod
    async def add(self, session: EditSession) -> None:
        """Store a new session with its first turn, evicting the owner's least recently used past the cap."""

    @abstractmethod
    async def get(self, owner: str, session_id: str) -> EditSession:
        """The live session with that id. Raises SessionNotFound if unknown, ended, expired or another's."""

    @abstractmethod
    async def append_turn(self, owner: str, session_id: str, turn: Turn) -> None:
        """Record `turn` atomically as the session's next turn. Raises SessionMovedOn (naming the latest
        turn) if the session no longer ends at turn.turn - 1, SessionNotFound if it is gone."""

    @abstractmethod
    async def remove(self, owner: str, session_id: str) -> EditSession:
        """Forget a session and return it. Raises SessionNotFound."""

    @abstractmethod
    async def list(self, owner: str) -> list[EditSession]:
        """The owner's live sessions, most recently used first."""


class ImageCatalogue(Protocol):
    """Every saved image by a stable id, so any process can serve it later. Every query is by owner."""

    @abstractmethod
    async def add(self, records: Sequence[ImageRecord]) -> None:
        """Catalogue saved images. Raises StateStoreError."""

    @abstractmethod
    async def get(self, owner: str, image_id: str) -> ImageRecord:
        """One image. Raises ImageNotFound if unknown or another owner's."""

    @abstractmethod
    async def page(self, owner: str, cursor: str | None = None, limit: int = 50) -> ImagePage:
        """The owner's images, newest first, `limit` at a time from `cursor` (None: the newest)."""

    @abstractmethod
    async def remove(self, owner: str, image_id: str) -> None:
        """Forget an image (its file is not touched); nothing happens if it is unknown."""


class JobStore(Protocol):
    """Jobs (paid calls that may outlive their request) by owner, shared by every process on the store."""

    @abstractmethod
    async def add(self, job: Job) -> None:
        """Store a new job."""

    @abstractmethod
    async def save(self, job: Job) -> None:
        """Store a job's new state (status, message, outcome, liveness). What other processes asked of it
        (`cancel_requested`, `callers_elsewhere`) stays as the store holds it, in the same atomic step."""

    @abstractmethod
    async def add_unless_overtaken(self, job: Job, seen: Precedents) -> bool:
        """Store a new job only if the owner's newest live jobs with its idempotency key (when it has one,
        created since seen.key_since) and with its fingerprint (since seen.fingerprint_since, unless that is
        None) are still those `seen` names, in one atomic step for every process on the store. False, storing
        nothing, when another process added such a job meanwhile."""

    @abstractmethod
    async def request_cancel(self, owner: str, job_id: str) -> Job:
        """Ask the process running a job to cancel it, in one atomic step: set `cancel_requested` only if the
        job is still working (one that finished meanwhile is left exactly as it is). Returns the job as it
        stands. Raises JobNotFound."""

    @abstractmethod
    async def count_caller_elsewhere(self, owner: str, job_id: str, change: int) -> None:
        """A caller in a process other than the job's holder began (+1) or stopped (-1) waiting for it: adds
        `change` to `callers_elsewhere` in one atomic step. Nothing happens if the job is gone."""

    @abstractmethod
    async def get(self, owner: str, job_id: str) -> Job:
        """One job. Raises JobNotFound if unknown, expired or another owner's."""

    @abstractmethod
    async def page(self, owner: str, cursor: str | None = None, limit: int = 50) -> JobPage:
        """The owner's jobs, newest first, `limit` at a time from `cursor`."""

    @abstractmethod
    async def find(
        self, owner: str, *, fingerprint: str | None = None, idempotency_key: str | None = None,
        since: float = 0.0,
    ) -> Job | None:
        """The newest job of the owner created at or after `since` with that fingerprint or that key."""

    @abstractmethod
    async def sweep(self, now: float) -> int:
        """Forget jobs whose ttl has run out; returns how many."""


class SpendLedger(Protocol):
    """What every owner's calls were estimated to cost and did cost, shared by every process on the store."""

    @abstractmethod
    async def record(self, entry: SpendEntry) -> None:
        """Store an entry, replacing an earlier one with the same owner and call_id (the estimate, then the
        actual cost)."""

    @abstractmethod
    async def book_within(self, entry: SpendEntry, since: float, budget_usd: float | None) -> Booking:
        """Store `entry` (a new call's estimate) only if it fits: spent_since(entry.owner, since) plus its
        estimate `within_budget`. The sum and the store are one atomic step for every process on the store."""

    @abstractmethod
    async def spent_since(self, owner: str, since: float) -> float:
        """What the owner's calls since `since` count against a budget (actual cost, or the estimate while
        a call runs)."""

    @abstractmethod
    async def totals(self, owner: str, since: float) -> list[DayTotal]:
        """Per UTC day since `since`, oldest first: number of calls, estimated and actual cost."""


class AccessTokenVerifier(Protocol):
    """Checks a bearer token presented over HTTP: a JWT from the identity provider, or a tokens-file token."""

    @abstractmethod
    async def verify(self, token: str) -> VerifiedToken | None:
        """What the token says about its holder, or None if it is not valid here (bad signature or digest,
        expired, another issuer or audience, malformed). Never raises: a failure to check is a refusal."""
