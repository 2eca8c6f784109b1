"""The report: one result per item, serialised (bounded) to the JSON the operators return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

DONE = "done"
ALREADY_ABSENT = "already_absent"
#: not sent: the audit table holds an earlier run's proof (``done`` or ``already_absent``)
DONE_EARLIER = "done_earlier"
FAILED = "failed"
NOT_ATTEMPTED = "not_attempted"
WOULD_DO = "would_do"
HONOURED = "honoured"
NOT_HONOURED = "not_honoured"
#: the outcomes that prove an action done, whichever run recorded them
PROOF_OUTCOMES = (DONE, ALREADY_ABSENT)
#: the outcomes every report counts, even at zero: of an action, of a read-back check
ACTION_OUTCOMES = (DONE, ALREADY_ABSENT, FAILED)
CHECK_OUTCOMES = (HONOURED, NOT_HONOURED, FAILED)

#: report defaults: item lists up to this many items, failures listed in full up to this many
ITEM_LIMIT = 1000
FAILURE_LIMIT = 100
#: characters of an item and of a message kept in a listed failure (the report stays under 64 KB)
ITEM_TEXT, MESSAGE_TEXT = 120, 300


def _cut(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


class ItemResult(NamedTuple):
    outcome: str
    status: int | None = None
    code: str | None = None
    reason: str | None = None
    message: str | None = None
    #: a failure a later try of the task may cure (decided by the engine's classification)
    retryable: bool = False


def honoured_or_not(honoured: bool) -> str:
    """A check's outcome for what the tool answered."""
    return HONOURED if honoured else NOT_HONOURED


def is_final(result: ItemResult) -> bool:
    """Whether no later attempt can change this item's outcome."""
    if result.outcome in (DONE, ALREADY_ABSENT, DONE_EARLIER, HONOURED, NOT_HONOURED):
        return True
    return result.outcome == FAILED and not result.retryable


@dataclass
class Report:
    """Outcome of every item, in input order."""

    vendor: str
    action: str
    dry_run: bool = False
    results: dict[str, ItemResult] = field(default_factory=dict)
    duplicates: int = 0
    kinds: tuple[str, ...] = ACTION_OUTCOMES
    #: the input items after de-duplication, in input order; results arrive in completion order
    order: list[str] = field(default_factory=list)

    def record(
        self,
        item: str,
        outcome: str,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        reason: str | None = None,
        retryable: bool = False,
    ) -> ItemResult:
        if item in self.results:
            raise RuntimeError(f"item {item!r} already has an outcome")  # never two outcomes for one item
        result = self.results[item] = ItemResult(outcome, status, code, reason, message, retryable)
        return result

    @property
    def outcomes(self) -> dict[str, str]:
        return {item: result.outcome for item, result in self.results.items()}

    @property
    def failures(self) -> dict[str, dict[str, Any]]:
        return {
            item: {"item": item, "status": r.status, "code": r.code, "reason": r.reason, "message": r.message}
            for item, r in self.results.items()
            if r.outcome == FAILED
        }

    def first_failure(self) -> tuple[str, str | None] | None:
        """``(item, message)`` of the first failed item in input order."""
        for item in self._in_order():
            result = self.results[item]
            if result.outcome == FAILED:
                return item, result.message
        return None

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results.values() if r.outcome == FAILED)

    def all_failures_final(self) -> bool:
        """Whether every failed item failed for good (no Airflow retry can help)."""
        return all(is_final(r) for r in self.results.values() if r.outcome in (FAILED, NOT_ATTEMPTED))

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.kinds, 0)
        if self.dry_run:
            counts[WOULD_DO] = 0
        for result in self.results.values():
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return counts

    def to_dict(self, item_limit: int = ITEM_LIMIT, failure_limit: int = FAILURE_LIMIT) -> dict[str, Any]:
        """The report as JSON: counts always; item lists up to ``item_limit`` items in all;
        the first ``failure_limit`` failures. Above the limits the audit table holds every item."""
        counts = self.counts()
        report: dict[str, Any] = {
            "vendor": self.vendor,
            "action": self.action,
            "dry_run": self.dry_run,
            "counts": counts,
        }
        if len(self.results) <= item_limit:
            items: dict[str, list[str]] = {outcome: [] for outcome in counts}
            for item in self._in_order():
                items[self.results[item].outcome].append(item)
            report["items"] = items
        else:
            report["items_omitted"] = len(self.results)
        by_item = self.failures
        failures = [by_item[item] for item in self._in_order() if item in by_item]
        report["failures"] = [
            {**f, "item": _cut(f["item"], ITEM_TEXT), "message": _cut(f["message"], MESSAGE_TEXT)}
            for f in failures[:failure_limit]
        ]
        if len(failures) > failure_limit:
            report["failures_omitted"] = len(failures) - failure_limit
        report["duplicates"] = self.duplicates
        return report

    def in_order(self, outcome: str) -> list[str]:
        """The items with ``outcome``, in input order."""
        return [item for item in self._in_order() if self.results[item].outcome == outcome]

    def _in_order(self) -> list[str]:
        """Every item with a result: input order first, then any the input did not list."""
        listed = [item for item in self.order if item in self.results]
        known = set(listed)
        return listed + [item for item in self.results if item not in known]

    def summary(self) -> str:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in self.counts().items())
        return f"{self.vendor} {self.action}: {len(self.results)} items: {counts}"
