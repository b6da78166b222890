"""Who is calling: what a verified bearer token says about its holder."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A bearer token whose signature (or digest), expiry, issuer and audience checked out.

    `subject` is unique only per `issuer`, so the two together name the caller (see `owner`)."""

    subject: str
    issuer: str
    scopes: frozenset[str]
    client_id: str
    expires_at: int | None = None
    """Seconds since the epoch; None: the token does not expire (a tokens-file token)."""

    def __post_init__(self) -> None:
        if not self.subject or not self.issuer:
            raise ValueError("a verified token names its subject and its issuer")

    @property
    def owner(self) -> str:
        """The owner every session, image, job and ledger entry of this caller is kept under.

        Issuer-qualified: two identity providers (or an identity provider and the tokens file) may both have
        a subject "alice", and no subject may ever coincide with the stdio user, "local"."""
        return owner_name(self.issuer, self.subject)


def owner_name(issuer: str, subject: str) -> str:
    """`issuer#subject`: '#' never appears in "local", so no caller can become the stdio user."""
    return f"{issuer}#{subject}"
