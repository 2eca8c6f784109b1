"""Path parameters: each value arrives as exactly one percent-encoded path segment."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow_provider_outreach.exceptions import InvalidInputError

MAX_PATH_PARAM_LENGTH = 2048


def encode_path_param(name: str, value: Any) -> str:
    """Percent-encode one path parameter so it arrives as exactly one path segment.

    :raises InvalidInputError: for a value that encoding cannot protect (not a string,
        empty, whitespace only, ``.`` or ``..``, not encodable as UTF-8) or that is
        unreasonably long.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInputError(f"{name} must be a string, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise InvalidInputError(f"{name} must not be empty or whitespace only")
    if text in (".", ".."):
        raise InvalidInputError(f"{name} must not be {text!r} (it would address the parent path)")
    if len(text) > MAX_PATH_PARAM_LENGTH:
        raise InvalidInputError(f"{name} is {len(text)} characters long; at most {MAX_PATH_PARAM_LENGTH} are accepted")
    try:
        return quote(text, safe="")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{name} is not valid text: {exc.reason} at position {exc.start}") from None


def build_path(template: str, **params: Any) -> str:
    """Fill ``template`` (``/campaigns/{campaign_id}``) with encoded parameters."""
    return template.format(**{name: encode_path_param(name, value) for name, value in params.items()})
