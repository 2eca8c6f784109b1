"""Progress that survives a crash, a timeout, a retry or a quota deferral: the ledger.

A run records every finished item in its ledger while it goes on (at most
:data:`FLUSH_ROWS` items or :data:`FLUSH_SECONDS` behind); a later try of the same task
instance, or the same try resumed after a deferral, reads it back and sends only the
items with no final outcome yet. With an audit table the table is the ledger; without
one, Airflow's task state store holds a compact record (one byte per item, compressed).
"""

from __future__ import annotations

import base64
import hashlib
import time
import zlib
from typing import TYPE_CHECKING, Any

from airflow_provider_outreach.bulk.report import (
    ALREADY_ABSENT,
    DONE,
    FAILED,
    HONOURED,
    NOT_ATTEMPTED,
    NOT_HONOURED,
    ItemResult,
    is_final,
)

if TYPE_CHECKING:
    from airflow_provider_outreach.audit import AuditTrail

FLUSH_ROWS = 500
FLUSH_SECONDS = 5.0
#: task state store key of the compact progress
PROGRESS_KEY = "outreach_progress"
#: failures kept with their details in the compact progress (the store holds 64 KB by default)
KEPT_FAILURES = 50


class Ledger:
    """Where finished items are recorded as the run goes; this base keeps nothing."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, ItemResult, str]] = []
        self._last_flush = time.monotonic()

    def earlier(self) -> dict[str, ItemResult]:
        """Final outcomes recorded by earlier tries (or before a deferral)."""
        return {}

    def record(self, item: str, result: ItemResult, at: str) -> None:
        self._pending.append((item, result, at))

    def due(self) -> bool:
        return bool(self._pending) and (
            len(self._pending) >= FLUSH_ROWS or time.monotonic() - self._last_flush >= FLUSH_SECONDS
        )

    def take(self) -> list[tuple[str, ItemResult, str]]:
        """What was recorded since the last write (call under the recorder's lock)."""
        pending, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        return pending

    def restore(self, entries: list[tuple[str, ItemResult, str]]) -> None:
        """Put back what :meth:`take` returned and could not be written (under the same lock)."""
        self._pending[:0] = entries

    def write(self, entries: list[tuple[str, ItemResult, str]]) -> None:
        """Persist ``entries`` from :meth:`take` (raises when that fails)."""
        if entries:
            self._write(entries)

    def flush(self) -> None:
        self.write(self.take())

    def _write(self, entries: list[tuple[str, ItemResult, str]]) -> None:
        pass

    def finish(self) -> None:
        """The task ends: drop what only a resume needed."""


class AuditLedger(Ledger):
    """The audit table as the ledger: each recorded item is a row with its call time."""

    def __init__(self, audit: AuditTrail) -> None:
        super().__init__()
        self.audit = audit

    def earlier(self) -> dict[str, ItemResult]:
        final: dict[str, ItemResult] = {}
        for item, outcome, status, code, reason, message, retryable in self.audit.earlier_rows():
            # a failure written before the table said whether it was final is sent again
            again = bool(retryable) if retryable is not None else outcome in (FAILED, NOT_ATTEMPTED)
            result = ItemResult(outcome, status, code, reason, message, again)
            if is_final(result):  # the latest final row; a retryable row never outranks one
                final[item] = result
        return final

    def _write(self, entries: list[tuple[str, ItemResult, str]]) -> None:
        self.audit.write(
            [
                self.audit.row(
                    item,
                    r.outcome,
                    at,
                    r.status,
                    r.code,
                    r.reason,
                    r.message,
                    r.retryable if r.outcome == FAILED else None,
                )
                for item, r, at in entries
            ]
        )


_CODES = {DONE: 1, ALREADY_ABSENT: 2, FAILED: 3, HONOURED: 4, NOT_HONOURED: 5}
_OUTCOMES = {code: outcome for outcome, code in _CODES.items()}


class StateStoreLedger(Ledger):
    """Compact progress in Airflow's task state store: one byte per item, zlib, base64.

    100,000 items take a few kilobytes when most share an outcome, about 40 KB at worst,
    within the store's 64 KB default. ``items`` must be the run's items in a stable order.
    """

    def __init__(self, store: Any, items: list[str]) -> None:
        super().__init__()
        self.store = store
        self.items = items
        self.index = {item: i for i, item in enumerate(items)}
        self.fingerprint = hashlib.sha256("\n".join(items).encode("utf-8", "surrogatepass")).hexdigest()[:16]
        self.codes = bytearray(len(items))
        self.failures: dict[str, dict[str, Any]] = {}

    def earlier(self) -> dict[str, ItemResult]:
        saved = self.store.get(PROGRESS_KEY)
        if not saved or saved.get("fingerprint") != self.fingerprint:
            return {}
        codes = zlib.decompress(base64.b64decode(saved["codes"]))
        if len(codes) != len(self.items):
            return {}
        self.codes[:] = codes
        self.failures = {f["item"]: f for f in saved.get("failures", [])}
        found = {}
        for item, code in zip(self.items, codes, strict=True):
            if code:
                failure = self.failures.get(item, {})
                found[item] = ItemResult(
                    _OUTCOMES[code],
                    failure.get("status"),
                    failure.get("code"),
                    failure.get("reason", "earlier_try" if code == _CODES[FAILED] else None),
                    failure.get("message", "failed in an earlier try" if code == _CODES[FAILED] else None),
                )
        return found

    def _write(self, entries: list[tuple[str, ItemResult, str]]) -> None:
        for item, result, _ in entries:
            position = self.index.get(item)
            if position is None or not is_final(result):
                continue
            self.codes[position] = _CODES[result.outcome]
            if result.outcome == FAILED and len(self.failures) < KEPT_FAILURES:
                self.failures[item] = {
                    "item": item,
                    "status": result.status,
                    "code": result.code,
                    "reason": result.reason,
                    "message": (result.message or "")[:200],
                }
        self.store.set(
            PROGRESS_KEY,
            {
                "fingerprint": self.fingerprint,
                "codes": base64.b64encode(zlib.compress(bytes(self.codes), 9)).decode("ascii"),
                "failures": list(self.failures.values()),
            },
        )

    def finish(self) -> None:
        self.store.delete(PROGRESS_KEY)
