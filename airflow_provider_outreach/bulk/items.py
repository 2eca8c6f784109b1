"""Item kinds: how an operator's items are compared (de-duplication) and validated."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING, Any

from airflow_provider_outreach.core.paths import encode_path_param
from airflow_provider_outreach.exceptions import InvalidInputError

if TYPE_CHECKING:
    from airflow_provider_outreach.bulk.report import Report

_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
_DOMAIN = r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
#: international format: ``+``, then digits, spaces, dots, dashes or brackets
_PHONE = r"\+[0-9][0-9 .()-]*[0-9]"
_LINKEDIN = r"(?i)https?://(?:[a-z0-9-]+\.)?linkedin\.com/\S+"
#: digits in a phone number: a short code is not a person, E.164 stops at 15
PHONE_DIGITS = (6, 15)


@cache
def _pattern(expression: str) -> re.Pattern[str]:
    return re.compile(expression)  # compiled on first use, not at DAG-parse time


def check_id(item: str) -> str | None:
    """Problem with an id (``None`` when usable)."""
    try:
        encode_path_param("id", item)
    except InvalidInputError as exc:
        return str(exc).replace("id ", "", 1)
    return None


def check_email(item: str) -> str | None:
    if not _pattern(_EMAIL).fullmatch(item):
        return "not a valid email address"
    return check_id(item)


def unsubscribe_value_kind(item: str) -> str | None:
    """Which of lemlist's suppression values ``item`` looks like: ``email``, ``domain``,
    ``linkedin`` or ``phone`` (``None``: none of them)."""
    if item.startswith("@"):
        return "domain" if _pattern(_DOMAIN).fullmatch(item) else None
    if _pattern(_LINKEDIN).fullmatch(item):
        return "linkedin"
    if _pattern(_EMAIL).fullmatch(item):
        return "email"
    if _pattern(_PHONE).fullmatch(item):
        low, high = PHONE_DIGITS
        return "phone" if low <= sum(c.isdigit() for c in item) <= high else None
    return None


def check_unsubscribe_value(item: str) -> str | None:
    if unsubscribe_value_kind(item) is None:
        return "not an email, @domain, LinkedIn URL or international phone number (+...)"
    return check_id(item)


def check_id_or_email(item: str) -> str | None:
    return check_email(item) if "@" in item else check_id(item)


class ItemKind:
    """What an operator's items are: how to compare them and how to validate them."""

    __slots__ = ("name", "validate", "case_insensitive")

    def __init__(self, name: str, validate: Callable[[str], str | None], case_insensitive: bool = False) -> None:
        self.name = name
        self.validate = validate
        self.case_insensitive = case_insensitive

    def key(self, item: str) -> str:
        return item.strip().lower() if self.case_insensitive else item


ID = ItemKind("id", check_id)
EMAIL = ItemKind("email", check_email, case_insensitive=True)
ID_OR_EMAIL = ItemKind("id or email", check_id_or_email)
#: what lemlist's team-wide unsubscribe list holds
UNSUBSCRIBE_VALUE = ItemKind("unsubscribe value", check_unsubscribe_value, case_insensitive=True)


def flatten_items(value: Any, name: str) -> list[Any]:
    """A str, or an iterable of str (one-column rows such as ``[["a@x.com"], ...]`` allowed)."""
    if value is None:
        raise InvalidInputError(f"{name} is required")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, (dict, bytes, bytearray, memoryview)) or not isinstance(value, Iterable):
        raise InvalidInputError(f"{name} must be a string or a list of strings, got {type(value).__name__}")
    if isinstance(value, (set, frozenset)):  # no order of its own: one that every process agrees on
        value = sorted(value, key=repr)
    items = []
    for entry in value:
        if isinstance(entry, (list, tuple)) and len(entry) == 1:
            entry = entry[0]
        items.append(entry)
    return items


def prepare(items: list[Any], kind: ItemKind, report: Report) -> list[str]:
    """De-duplicate and validate; invalid items are recorded as failed. Returns the items to call."""
    from airflow_provider_outreach.bulk.report import FAILED

    seen: set[str] = {kind.key(i) for i in report.results}
    todo: list[str] = []
    for raw in items:
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            item = f"{raw!r} ({type(raw).__name__})"  # never the same text as a real item
            problem = f"must be a string, got {type(raw).__name__}"
        else:
            item = str(raw).strip()  # a CHAR(n) column pads with spaces
            problem = kind.validate(item)
        key = kind.key(item)
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        report.order.append(item)
        if problem:
            shown = item if len(item) <= 80 else item[:79] + "…"
            report.record(item, FAILED, reason="invalid", message=f"{kind.name} {shown!r}: {problem}")
        else:
            todo.append(item)
    return todo
