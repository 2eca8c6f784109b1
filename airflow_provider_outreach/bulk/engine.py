"""Run one call per item concurrently and give every item exactly one outcome.

The hook paces and retries each call; the engine classifies what each call ended with
(under a :class:`~airflow_provider_outreach.bulk.policy.BulkPolicy`), records it in the report and the ledger as it goes, stops
cleanly when the retry rule says the API's quota needs a longer wait than the caller
sleeps inline (handing back the items not yet tried), and trips a circuit breaker when
going on cannot help: the key is refused, the campaign is gone, the answers make no
sense, the API is down, or the audit cannot keep up. Items never sent are
``not_attempted``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from airflow_provider_outreach.bulk.ledger import Ledger
from airflow_provider_outreach.bulk.policy import UNEXPECTED, BulkPolicy
from airflow_provider_outreach.bulk.report import DONE, FAILED, NOT_ATTEMPTED, Report
from airflow_provider_outreach.core.clock import utc_now_iso
from airflow_provider_outreach.core.retry import Action, decide
from airflow_provider_outreach.exceptions import AuthenticationError, InvalidRequestError, RateLimitError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuotaWait:
    """The API's quota needs ``retry_after`` seconds: resume then with ``pending``."""

    retry_after: float
    pending: list[str]
    error: str


@dataclass(frozen=True)
class Stop:
    """Why the circuit breaker stopped the run; ``final``: no Airflow retry can help."""

    cause: str
    final: bool


@dataclass(frozen=True)
class BulkResult:
    """How a run ended: every item recorded, or a quota wait, or a stop."""

    quota: QuotaWait | None = None
    stop: Stop | None = None


class _Breaker:
    """Watches outcomes in order of arrival; says when going on cannot help."""

    def __init__(self, policy: BulkPolicy) -> None:
        self.policy = policy
        self.unexpected = 0
        self.transient = 0
        self.refused_alone = 0

    def observe(
        self, item: str, exc: BaseException | None, details: dict[str, Any], refused_alone: bool = False
    ) -> Stop | None:
        """``refused_alone``: a chunk split down to this one item was still refused."""
        reason = details.get("reason")
        if isinstance(exc, AuthenticationError):
            return Stop(f"the API key was refused at item {item!r}: {exc}", final=True)
        if reason == "campaign_not_found":
            return Stop(f"the campaign disappeared at item {item!r}: {exc}", final=True)
        self.unexpected = self.unexpected + 1 if reason == UNEXPECTED else 0
        if self.unexpected >= self.policy.max_unexpected:
            return Stop(f"{self.unexpected} answers in a row that this API does not give; last: {exc}", final=True)
        self.refused_alone = self.refused_alone + 1 if refused_alone else 0
        if self.refused_alone >= self.policy.max_unexpected:  # halving would go on through every item
            return Stop(
                f"{self.refused_alone} items in a row were refused each on its own, so the refusal is "
                f"not about the items; last: {exc}",
                final=True,
            )
        transient = exc is not None and reason != UNEXPECTED and decide(exc, float("inf")).action is Action.RETRY
        self.transient = self.transient + 1 if transient else 0
        if self.transient >= max(self.policy.max_transient, 2 * self.policy.max_workers):
            return Stop(
                f"the API looks down: {self.transient} items in a row failed after retries; last: {exc}", final=False
            )
        return None


class _NotSent(Exception):
    """An item not sent: the run waits for the quota, or was stopped."""


class _BulkRun:
    """One run of :func:`run_bulk`: the queue of units (items, or chunks of them), the workers,
    and what halts the run: a quota wait (the longest one met) or a stop."""

    def __init__(
        self,
        items: list[str],
        call: Callable[[Any], Any],
        report: Report,
        policy: BulkPolicy,
        ledger: Ledger,
        logger: logging.Logger | logging.LoggerAdapter,
    ) -> None:
        self.call = call
        self.report = report
        self.policy = policy
        self.ledger = ledger
        self.logger = logger
        self.batched = policy.batch_size is not None
        size = policy.batch_size or 1
        self.queue = deque(items[i : i + size] for i in range(0, len(items), size))
        self.total = len(items) + len(report.results)
        self.workers = max(1, policy.max_workers)
        self.lock = threading.Lock()  # guards the report, the ledger's pending rows and the fields below
        self.breaker = _Breaker(policy)
        #: the longest quota wait met; the run then sends nothing more and hands back what is left
        self.quota: RateLimitError | None = None
        #: why the run stopped; it then sends nothing more
        self.stop: Stop | None = None

    @property
    def halted(self) -> bool:
        return self.quota is not None or self.stop is not None

    def halt(self, cause: Stop) -> None:
        """Stop the run (call under the lock); the first cause is the one reported."""
        if self.stop is None:
            self.stop = cause
            self.logger.error("stopping: %s", cause.cause)

    def send(self, unit: list[str]) -> list[list[str]]:
        """Send one item (or chunk) and record its outcome; returns the halves to send instead
        of a chunk the API refused as malformed."""
        if self.halted:
            raise _NotSent()
        try:
            value = self.call(unit if self.batched else unit[0])
        except Exception as exc:  # every failure becomes a reported outcome
            if isinstance(exc, RateLimitError) and decide(exc, self.policy.max_inline_wait).action is Action.DEFER:
                with self.lock:
                    if self.quota is None or (exc.retry_after or 0) > (self.quota.retry_after or 0):
                        self.quota = exc
                raise _NotSent() from None
            if self.batched and len(unit) > 1 and isinstance(exc, InvalidRequestError):
                half = len(unit) // 2
                return [unit[:half], unit[half:]]
            error: BaseException | None = exc
            outcome, details = self.policy.classify(exc)
        else:
            error, outcome, details = None, self.policy.outcome_of(value) if self.policy.outcome_of else DONE, {}
        at = utc_now_iso()
        with self.lock:  # recorded by the worker itself, so a stop takes effect before the next request
            for item in unit:
                self.ledger.record(item, self.report.record(item, outcome, **details), at)
            refused_alone = self.batched and isinstance(error, InvalidRequestError)  # a unit of one: halving ended
            cause = self.breaker.observe(unit[0], error, details, refused_alone)
            if cause is not None:
                self.halt(cause)
        return []

    def flush(self) -> None:
        """Write what the ledger holds; a failed write puts it back and stops the run."""
        with self.lock:
            pending = self.ledger.take()
        try:
            self.ledger.write(pending)
        except Exception as exc:
            with self.lock:
                self.ledger.restore(pending)  # written by a later flush, if one succeeds
                self.halt(Stop(f"the audit trail could not be written, so nothing more is sent: {exc}", final=False))

    def run(self) -> BulkResult:
        unsent: list[str] = []
        last_progress = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="outreach-bulk")
        running: dict[Future, list[str]] = {}

        def fill() -> None:
            while self.queue and len(running) < self.workers * 2 and not self.halted:
                unit = self.queue.popleft()
                running[pool.submit(self.send, unit)] = unit

        try:
            fill()
            while running:
                done, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    unit = running.pop(future)
                    exc = future.exception()
                    if isinstance(exc, _NotSent):
                        unsent.extend(unit)
                    elif exc is not None:  # pragma: no cover - send() records every failure
                        with self.lock:
                            for item in unit:
                                result = self.report.record(
                                    item, FAILED, reason="error", message=repr(exc), retryable=True
                                )
                                self.ledger.record(item, result, utc_now_iso())
                    else:
                        self.queue.extendleft(reversed(future.result()))  # the halves of a refused chunk go next
                if self.ledger.due():
                    self.flush()
                fill()
                now = time.monotonic()
                if now - last_progress >= self.policy.progress_every:
                    last_progress = now
                    self.logger.info(
                        "%s: %d of %d items finished", self.report.action, len(self.report.results), self.total
                    )
        except BaseException:  # interrupted (the task's timeout, a signal): send nothing more, keep the record
            with self.lock:
                self.halt(Stop("the task was interrupted", final=False))
            pool.shutdown(wait=True, cancel_futures=True)
            self.flush()
            raise
        pool.shutdown(wait=True)
        for unit in self.queue:
            unsent.extend(unit)
        if self.stop is None:
            self.flush()  # before a quota wait or the end: a failed write still stops the run
        if self.stop is not None:
            for item in unsent:
                result = self.report.record(
                    item, NOT_ATTEMPTED, reason="not_attempted", message=self.stop.cause, retryable=True
                )
                self.ledger.record(item, result, utc_now_iso())
            self.flush()
            return BulkResult(stop=self.stop)
        if self.quota is not None:
            wait_for = self.quota.retry_after or 0.0
            return BulkResult(quota=QuotaWait(retry_after=wait_for, pending=unsent, error=str(self.quota)))
        return BulkResult()


def run_bulk(
    items: list[str],
    call: Callable[[Any], Any],
    report: Report,
    policy: BulkPolicy,
    ledger: Ledger | None = None,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> BulkResult:
    """Call ``call(item)`` for each item concurrently (``call(chunk)`` for each chunk of up to
    ``policy.batch_size`` items) and record every item's outcome in ``report`` and ``ledger``
    (flushed as the run goes, and at its end).

    A chunk the API refuses as malformed (400) is split in halves until the refused items
    stand alone: those fail with the API's message, the others are done.
    """
    return _BulkRun(items, call, report, policy, ledger or Ledger(), logger).run()
