"""TokensFileVerifier: bearer tokens for small teams without an identity provider.

The file holds one line per user, `<subject> sha256:<64 hex digits>`, the digest of that user's token; `#` starts
a comment. Plain tokens are never stored: a copy of the file grants nothing. The file is read again when it
changes, so adding or removing a user needs no restart."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from gpt_image_2_mcp.domain.access import VerifiedToken
from gpt_image_2_mcp.domain.ports import AccessTokenVerifier

log = logging.getLogger(__name__)

ISSUER = "tokens-file"
"""The issuer part of these callers' owners: a tokens-file "alice" is never an identity provider's "alice"."""
TOKEN_PREFIX = "gi2_"
_LINE = re.compile(r"^(?P<subject>[^\s#]+)\s+sha256:(?P<digest>[0-9a-fA-F]{64})$")
_SUBJECT = re.compile(r"^[^\s#]{1,200}$")


class TokensFileError(ValueError):
    """The tokens file cannot be read or holds a line that is not `<subject> sha256:<hex>`."""


@dataclass(frozen=True, slots=True)
class _Entry:
    subject: str
    digest: bytes


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(subject: str) -> tuple[str, str]:
    """A fresh random token and the line that grants it to `subject` (the token itself is shown once)."""
    if not _SUBJECT.match(subject):
        raise TokensFileError(f"subject {subject!r} must be 1..200 characters without spaces or '#'")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, f"{subject} sha256:{digest_of(token)}"


def parse(text: str, source: str = "tokens file") -> tuple[_Entry, ...]:
    """The entries of a tokens file; raises TokensFileError naming the first bad line."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()  # neither a subject nor a digest holds '#'

        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            raise TokensFileError(f"{source} line {number} is not `<subject> sha256:<64 hex digits>`")
        entries.append(_Entry(match["subject"], bytes.fromhex(match["digest"])))
    return tuple(entries)


class TokensFileVerifier(AccessTokenVerifier):
    """Compares the digest of a presented token with every line, in constant time per line and without
    stopping at a match, so timing tells nothing about which line (or how much of a digest) matched."""

    def __init__(self, path: str | os.PathLike[str], scopes: frozenset[str]) -> None:
        self._path = Path(path)
        self._scopes = scopes
        self._stamp: tuple[int, int] | None = None
        self._entries: tuple[_Entry, ...] = ()
        self._reload()  # a bad file at start-up is a configuration error, raised now

    async def verify(self, token: str) -> VerifiedToken | None:
        try:
            self._reload()
        except TokensFileError as e:  # a bad edit while running: keep the last good entries, say why
            log.error("%s; still using the previous version of the file", e)
        presented = hashlib.sha256(token.encode()).digest()
        found = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, presented):
                found = entry
        if found is None:
            return None
        return VerifiedToken(subject=found.subject, issuer=ISSUER, scopes=self._scopes, client_id=found.subject)

    def _reload(self) -> None:
        try:
            status = self._path.stat()
            stamp = (status.st_mtime_ns, status.st_size)
            if stamp == self._stamp:
                return
            text = self._path.read_text(encoding="utf-8")
        except OSError as e:
            raise TokensFileError(f"cannot read the tokens file {self._path}: {e.strerror or e}") from None
        self._entries = parse(text, str(self._path))
        self._stamp = stamp
        log.info("tokens file %s: %d user(s)", self._path, len(self._entries))
