"""The bulk engine: one list of items, one API call each, every item one outcome.

Used by every operator. It deduplicates and validates the items, runs the calls
concurrently through the hook (which paces and retries), classifies each result, and
stops cleanly when the API's quota needs a wait longer than the caller accepts so the
operator can defer and resume with the items not yet done.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_outreach.exceptions import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    OutreachAPIError,
    RateLimitError,
)
from airflow_provider_outreach.hooks.base import encode_path_param

log = logging.getLogger(__name__)

DONE = "done"
ALREADY_ABSENT = "already_absent"
FAILED = "failed"
WOULD_DO = "would_do"
OUTCOMES = (DONE, ALREADY_ABSENT, FAILED, WOULD_DO)

PROGRESS_EVERY = 10.0

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DOMAIN = re.compile(r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")


# -- item kinds: how items are normalised (for de-duplication) and validated ---------------


def check_id(item: str) -> str | None:
    """Problem with an id (``None`` when usable)."""
    try:
        encode_path_param("id", item)
    except InvalidInputError as exc:
        return str(exc).replace("id ", "", 1)
    return None


def check_email(item: str) -> str | None:
    if not _EMAIL.fullmatch(item):
        return "not a valid email address"
    return check_id(item)


def check_email_or_domain(item: str) -> str | None:
    if item.startswith("@"):
        return None if _DOMAIN.fullmatch(item) else "not a valid @domain"
    return check_email(item)


def check_id_or_email(item: str) -> str | None:
    return check_email(item) if "@" in item else check_id(item)


@dataclass(frozen=True)
class ItemKind:
    """What an operator's items are: how to compare them and how to validate them."""

    name: str
    validate: Callable[[str], str | None]
    case_insensitive: bool = False

    def key(self, item: str) -> str:
        return item.strip().lower() if self.case_insensitive else item


ID = ItemKind("id", check_id)
EMAIL = ItemKind("email", check_email, case_insensitive=True)
EMAIL_OR_DOMAIN = ItemKind("email or @domain", check_email_or_domain, case_insensitive=True)
ID_OR_EMAIL = ItemKind("id or email", check_id_or_email)


# -- the report ------------------------------------------------------------------------------


@dataclass
class Report:
    """Outcome of every item; serialises to the JSON report the operators return."""

    vendor: str
    action: str
    dry_run: bool = False
    outcomes: dict[str, str] = field(default_factory=dict)  # item -> outcome, in input order
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)  # item -> failure details
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # item -> status/message for audit
    duplicates: int = 0

    def record(
        self,
        item: str,
        outcome: str,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        if item in self.outcomes:
            raise RuntimeError(f"item {item!r} already has an outcome")  # never two outcomes for one item
        self.outcomes[item] = outcome
        self.details[item] = {"status": status, "message": message}
        if outcome == FAILED:
            self.failures[item] = {
                "item": item,
                "status": status,
                "code": code,
                "reason": reason,
                "message": message,
            }

    def counts(self) -> dict[str, int]:
        counts = {outcome: 0 for outcome in OUTCOMES if outcome != WOULD_DO or self.dry_run}
        for outcome in self.outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    @property
    def failed(self) -> int:
        return len(self.failures)

    def to_dict(self) -> dict[str, Any]:
        items: dict[str, list[str]] = {outcome: [] for outcome in self.counts()}
        for item, outcome in self.outcomes.items():
            items[outcome].append(item)
        return {
            "vendor": self.vendor,
            "action": self.action,
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "items": items,
            "failures": list(self.failures.values()),
            "duplicates": self.duplicates,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        report = cls(vendor=data["vendor"], action=data["action"], dry_run=data["dry_run"])
        report.duplicates = data.get("duplicates", 0)
        failures = {f["item"]: f for f in data.get("failures", [])}
        for outcome, items in data["items"].items():
            for item in items:
                failure = failures.get(item, {})
                report.record(
                    item,
                    outcome,
                    status=failure.get("status"),
                    code=failure.get("code"),
                    message=failure.get("message"),
                    reason=failure.get("reason"),
                )
        return report

    def summary(self) -> str:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in self.counts().items())
        return f"{self.vendor} {self.action}: {len(self.outcomes)} items: {counts}"


# -- input handling ---------------------------------------------------------------------------


def flatten_items(value: Any, name: str) -> list[Any]:
    """A str, or an iterable of str (one-column rows such as ``[["a@x.com"], ...]`` allowed)."""
    if value is None:
        raise InvalidInputError(f"{name} is required")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, dict) or not isinstance(value, Iterable):
        raise InvalidInputError(f"{name} must be a string or a list of strings, got {type(value).__name__}")
    items = []
    for entry in value:
        if isinstance(entry, (list, tuple)) and len(entry) == 1:
            entry = entry[0]
        items.append(entry)
    return items


def prepare(items: list[Any], kind: ItemKind, report: Report) -> list[str]:
    """De-duplicate and validate; invalid items are recorded as failed. Returns the items to call."""
    seen: set[str] = set(kind.key(i) for i in report.outcomes)
    todo: list[str] = []
    for raw in items:
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            item = repr(raw)
            problem = f"must be a string, got {type(raw).__name__}"
        else:
            item = str(raw).strip() if kind.case_insensitive else str(raw)
            problem = kind.validate(item)
        key = kind.key(item)
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        if problem:
            report.record(item, FAILED, reason="invalid", message=f"{kind.name} {item!r}: {problem}")
        else:
            todo.append(item)
    return todo


# -- execution --------------------------------------------------------------------------------


@dataclass
class QuotaPause:
    """The API asked for a wait longer than accepted inline; resume after ``retry_after`` s."""

    retry_after: float
    pending: list[str]
    error: str


def classify(
    exc: BaseException,
    missing_ok: bool,
    conflict_reason: str | None = None,
    campaign_missing: Callable[[NotFoundError], bool] | None = None,
    conflict_absent: bool = False,
) -> tuple[str, dict[str, Any]]:
    """Outcome and details for a failed call.

    A 404 about the item itself is ``already_absent`` when ``missing_ok``; a 404 about
    the campaign the item was addressed in (``campaign_missing``) is always a failure.
    """
    parent_gone = isinstance(exc, NotFoundError) and campaign_missing is not None and campaign_missing(exc)
    if isinstance(exc, NotFoundError) and missing_ok and not parent_gone:
        return ALREADY_ABSENT, {"status": exc.status_code, "message": exc.message}
    if isinstance(exc, ConflictError) and conflict_absent:
        return ALREADY_ABSENT, {"status": exc.status_code, "message": f"{conflict_reason or 'conflict'}: {exc.message}"}
    if isinstance(exc, OutreachAPIError):
        if isinstance(exc, ConflictError) and conflict_reason:
            reason = conflict_reason
        elif parent_gone:
            reason = "campaign_not_found"
        elif isinstance(exc, NotFoundError):
            reason = "not_found"
        else:
            reason = type(exc).__name__
        return FAILED, {"status": exc.status_code, "code": exc.code, "message": str(exc), "reason": reason}
    if isinstance(exc, InvalidInputError):
        return FAILED, {"message": str(exc), "reason": "invalid"}
    return FAILED, {"message": f"{type(exc).__name__}: {exc}", "reason": "error"}


def run_bulk(
    items: list[str],
    call: Callable[[str], Any],
    report: Report,
    *,
    max_workers: int,
    missing_ok: bool,
    max_inline_wait: float,
    conflict_reason: str | None = None,
    campaign_missing: Callable[[NotFoundError], bool] | None = None,
    conflict_absent: bool = False,
    logger: logging.Logger | logging.LoggerAdapter = log,
    progress_every: float = PROGRESS_EVERY,
) -> QuotaPause | None:
    """Call ``call(item)`` for each item concurrently and record every outcome in ``report``.

    Returns a :class:`QuotaPause` (with the items not yet tried) when the API's quota
    needs a longer wait than the hook accepts inline; otherwise ``None``.
    """
    pending = list(items)
    total = len(pending) + len(report.outcomes)
    if not pending:
        return None
    lock = threading.Lock()
    pause: list[RateLimitError] = []

    def one(item: str) -> None:
        try:
            call(item)
        except RateLimitError as exc:
            if exc.retry_after is None or exc.retry_after <= max_inline_wait:
                outcome, details = classify(exc, missing_ok, conflict_reason, campaign_missing, conflict_absent)
            else:  # the API refused it (or it was never sent): try again after the pause
                with lock:
                    pause.append(exc)
                raise _Paused() from None
        except Exception as exc:  # every failure becomes a reported outcome
            outcome, details = classify(exc, missing_ok, conflict_reason, campaign_missing, conflict_absent)
        else:
            outcome, details = DONE, {}
        with lock:
            report.record(item, outcome, **details)

    unstarted: list[str] = []
    last_progress = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="outreach-bulk") as pool:
        queue = iter(pending)
        running: dict[Future, str] = {}

        def fill() -> None:
            while len(running) < max_workers * 2 and not pause:
                item = next(queue, None)
                if item is None:
                    return
                running[pool.submit(one, item)] = item

        fill()
        while running:
            finished, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in finished:
                item = running.pop(future)
                exc = future.exception()
                if isinstance(exc, _Paused):
                    unstarted.append(item)
                elif exc is not None:  # pragma: no cover - one() records everything
                    with lock:
                        report.record(item, FAILED, message=f"{type(exc).__name__}: {exc}", reason="error")
            fill()
            now = time.monotonic()
            if now - last_progress >= progress_every:
                last_progress = now
                logger.info("%s: %d of %d items finished", report.action, len(report.outcomes), total)
        if pause:
            unstarted.extend(queue)
    if pause:
        worst = max(pause, key=lambda e: e.retry_after or 0)
        return QuotaPause(retry_after=worst.retry_after or 0.0, pending=unstarted, error=str(worst))
    return None


class _Paused(Exception):
    """An item not attempted because the quota is paused; it goes back to the queue."""
