"""GPT_IMAGE_2_STATE_URL: where sessions, the image catalogue and (later) jobs are kept."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

import platformdirs

APP_NAME = "gpt-image-2-mcp"
ACCEPTED = ("sqlite:///ABSOLUTE/PATH.sqlite3, redis://[:PASSWORD@]HOST:PORT/DB, rediss://… or memory:// "
            "(unset: an SQLite file in the user data folder)")
_CREDENTIALS = re.compile(r"(?<=://)[^/@]*@")


def default_state_file() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "state.sqlite3"


def without_credentials(url: str) -> str:
    """The URL as it may be shown or logged: no user name or password."""
    return _CREDENTIALS.sub("***@", url)


@dataclass(frozen=True, slots=True)
class StateLocation:
    """A parsed GPT_IMAGE_2_STATE_URL: the kind of store and where it is."""

    kind: Literal["memory", "sqlite", "redis"]
    url: str
    path: str | None = None
    """The SQLite file (sqlite only)."""

    @classmethod
    def parse(cls, text: str | None) -> StateLocation:
        """Read the variable; a value that names no store raises ValueError saying what is accepted."""
        if text is None or not text.strip():
            path = default_state_file()
            return cls("sqlite", path.as_uri().replace("file:", "sqlite:", 1), str(path))
        text = text.strip()
        scheme = text.split(":", 1)[0].lower()
        if scheme == "memory" and text.lower() in ("memory://", "memory:"):
            return cls("memory", "memory://")
        if scheme == "sqlite":
            return cls._sqlite(text)
        if scheme in ("redis", "rediss"):
            return cls._redis(text)
        raise ValueError(f"one of {ACCEPTED}")

    @classmethod
    def _sqlite(cls, text: str) -> StateLocation:
        parts = urlsplit(text)
        path = unquote(parts.path)
        if re.match(r"^/+[A-Za-z]:[/\\]", path):  # sqlite:///C:/Users/... on Windows
            path = path.lstrip("/")
        elif path.startswith("/"):
            path = "/" + path.lstrip("/")  # sqlite:////tmp/x (the SQLAlchemy spelling) means /tmp/x as well
        names_a_file = Path(path).is_absolute() and not path.endswith(("/", "\\")) and Path(path).name
        if parts.netloc or not text.lower().startswith("sqlite:///") or not names_a_file:
            raise ValueError("sqlite:/// followed by an absolute path, e.g. sqlite:///home/me/state.sqlite3")
        return cls("sqlite", text, path)

    @classmethod
    def _redis(cls, text: str) -> StateLocation:
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise ValueError("redis://[:PASSWORD@]HOST:PORT/DB with a numeric port") from None
        if not parts.hostname:
            raise ValueError("redis://[:PASSWORD@]HOST:PORT/DB with a host")
        database = parts.path.strip("/")
        if database and not database.isdigit():
            raise ValueError("redis://[:PASSWORD@]HOST:PORT/DB whose database is a number, e.g. /0")
        return cls("redis", text)

    def __str__(self) -> str:
        return without_credentials(self.url)
