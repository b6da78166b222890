"""Validation failures told in the server's own voice: which argument (or environment variable), what was given,
what is accepted. Pydantic's own text names internal models and links to its docs."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .state_location import without_credentials

_SHOWN_MAX = 80


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 1] + "…"


def _accepted(error: ErrorDetails) -> str:
    """What the argument accepts, from the failed rule."""
    ctx = error.get("ctx") or {}
    kind = error["type"]
    bounds = {
        "greater_than_equal": "at least {ge}", "greater_than": "more than {gt}",
        "less_than_equal": "at most {le}", "less_than": "less than {lt}",
        "too_short": "at least {min_length} item(s)", "too_long": "at most {max_length} item(s)",
        "literal_error": "one of {expected}", "enum": "one of {expected}",
    }
    if kind in bounds:
        return bounds[kind].format(**ctx)
    if kind.startswith(("int_", "float_")):
        return "a whole number" if kind.startswith("int_") else "a number"
    strings = {
        "string_too_long": "text of at most {max_length} characters",
        "string_too_short": "text of at least {min_length} character(s)",
        "string_pattern_mismatch": "text matching {pattern}",
    }
    if kind in strings:
        return strings[kind].format(**ctx)
    if kind.startswith("string_"):
        return "text"
    if kind.startswith("bool_"):
        return "true or false"
    if kind.startswith("list_"):
        return "a list"
    if kind.startswith(("dict_", "model_")):
        return "an object"
    if kind == "value_error":  # our own validators say what is accepted
        return str(ctx.get("error", error["msg"])).rstrip(".")
    return error["msg"].rstrip(".").lower()


def _describe(error: ErrorDetails) -> str:
    name = ".".join(str(part) for part in error["loc"]) or "arguments"
    if error["type"] == "missing":
        return f"`{name}` is required"
    return f"`{name}` was {_shown(error['input'])}; it must be {_accepted(error)}"


def explain_arguments(tool: str, error: ValidationError) -> str:
    """One message for a tool call whose arguments do not fit its input schema."""
    problems = "; ".join(_describe(detail) for detail in error.errors(include_url=False))
    return f"Invalid arguments for {tool}: {problems}. Fix them and call {tool} again."


def explain_parameters(method: str, error: ValidationError) -> str:
    """One message for a request whose parameters do not fit the method (the SDK's own models)."""
    details = error.errors(include_url=False)
    for detail in details:  # some of the SDK's models wrap the request: name the parameter as the client sent it
        if detail["loc"][:1] == ("params",):
            detail["loc"] = detail["loc"][1:]
    problems = "; ".join(_describe(detail) for detail in details)
    return f"Invalid parameters for {method}: {problems}. Fix them and send {method} again."


def explain_settings(error: ValidationError, secret_names: frozenset[str] = frozenset()) -> list[str]:
    """One line per bad environment variable: its name, its value (never a secret's), what is accepted."""
    lines = []
    for detail in error.errors(include_url=False):
        name = ".".join(str(part) for part in detail["loc"])
        given = "(hidden)" if name.upper() in secret_names else _shown(without_credentials(str(detail["input"])))
        lines.append(f"{name}={given} is not accepted: it must be {_accepted(detail)}.")
    return lines


def explain_prompt_arguments(prompt: str, error: ValidationError) -> str:
    """One message for prompts/get arguments that do not fit the prompt's parameters."""
    problems = "; ".join(_describe(detail) for detail in error.errors(include_url=False))
    return f"Invalid arguments for prompt {prompt}: {problems}."
