"""Keeps API keys out of anything that leaves the process: results, logs, exception texts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,}|sess-[A-Za-z0-9]{10,})")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace the given secrets, and anything shaped like an OpenAI key, with [redacted]."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _KEY_PATTERN.sub("[redacted]", text)


def scrub_all(value: Any, secrets: Iterable[str] = ()) -> Any:
    """`scrub` applied to every string inside nested dicts, lists and tuples (structured results)."""
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {key: scrub_all(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_all(item, secrets) for item in value)
    return value
