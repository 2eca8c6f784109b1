"""Client-side pacing and rate-limit header parsing, shared by every vendor.

A :class:`Pacer` keeps one API key under its rate limit across the threads of a process,
through one budget store (:mod:`airflow_provider_outreach.core.budget`): the shared store the
connection names, opened on the first request, so that every process of a host or, with
Redis, of every host paces in one budget; else a store of the process's own, which paces it
alone. Both hold the same two things and the pacer reads them the same way. It works in one
of two modes:

* **fixed** — the limit is known (lemlist documents 20 requests per 2 s; any vendor can be
  given one in the connection's extra): a sliding-window log (pyrate-limiter's bucket, in the
  store) never lets more than ``limit`` requests start within ``period`` seconds (plus a
  margin for network jitter); shared, every process of the key counts in one window. The
  API's ``X-RateLimit-Remaining``/``Reset`` are honoured too: when an answer shows the API
  counted more requests in its window than the store holds (another user of the key: an
  integration, a second deployment, or a process not sharing the store), what it says is
  left gates the key until that window resets, as in adaptive mode; when the store's
  requests explain the count, the window log alone paces (it knows to the millisecond when
  they leave the window, where lemlist's reset header has one-second resolution).
* **adaptive** — no limit is known (LeadLex, DialNexa): the pacer spends the
  ``X-RateLimit-Remaining`` the API reports, less the requests still in flight, and once it
  is used up waits for ``X-RateLimit-Reset``. That record (``rate_state.PacingState``:
  remaining, reset, blocked-until) lives in the store: shared, every process takes from the
  same remaining, and an answer only ever lowers it within a window (its reset replaces it),
  so a process never spends what another already spent. Only requests in flight in *other*
  processes when a window resets go uncounted.

In both modes a 429 blocks every thread of every process sharing the key until the time the
API asked for. A wait longer than the caller accepts is not slept: :class:`PacingWait` is
raised so the caller can defer instead of holding a worker slot. If the shared store cannot
be opened or fails later (a full disk, Redis down), the pacer logs it and goes on with a
fresh store of its own: it paces per process from then on, and the answers to requests
started before the switch, unknown to the new store, count as another user's.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import pendulum

from airflow_provider_outreach.core.budget import (
    BudgetSpec,
    BudgetStore,
    LocalStore,
    budget_name,
    check_spec,
    describe,
    open_store,
)
from airflow_provider_outreach.core.rate_state import PacingState, RateInfo
from airflow_provider_outreach.exceptions import ConnectionConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = [
    "Pacer",
    "PacingWait",
    "get_pacer",
    "parse_rate_headers",
    "parse_reset",
    "parse_retry_after",
    "reset_pacers",
]

#: Extra room added to a fixed window so that network jitter cannot push one request too many
#: into the server's window (every store stamps a request under its lock, just before it is
#: sent, so the jitter between count and send is alike in all of them).
WINDOW_MARGIN = 0.03
#: Requests started this long after another may still reach the API before it (threads and
#: processes race between counting a request and sending it).
REORDER = 0.1


class PacingWait(Exception):
    """Raised by :meth:`Pacer.acquire` when the next slot is further away than allowed."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        super().__init__(f"next request allowed in {wait:.1f} s")


def _now() -> pendulum.DateTime:
    return pendulum.now("UTC")


#: the longest wait an answer can ask for (a day, LeadLex's daily cap, and one more): a
#: larger or non-finite value is read as this, so one odd header cannot block a key for
#: every worker for years through the shared store
MAX_ASKED_WAIT = 2 * 86400.0


def _bounded(seconds: float) -> float:
    if math.isnan(seconds):
        return MAX_ASKED_WAIT
    return min(max(0.0, seconds), MAX_ASKED_WAIT)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return _bounded(float(text))
    except ValueError:
        pass
    when = _parse_date(text)
    if when is None:
        return None
    return _bounded((when - _now()).total_seconds())


def parse_reset(value: str | None) -> float | None:
    """Seconds until the window resets, from an ``X-RateLimit-Reset`` value.

    Accepts epoch seconds (LeadLex, DialNexa), a small number of seconds from now, an HTTP
    or ISO date, or the JavaScript date string lemlist sends
    (``Tue Feb 16 2021 09:02:42 GMT+0100 (Central European Standard Time)``).
    """
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        when = _parse_date(text)
        return None if when is None else _bounded((when - _now()).total_seconds())
    if math.isnan(number):
        return None
    if number > 1e12:  # epoch milliseconds
        number /= 1000.0
    if number > 1e9:  # epoch seconds
        return _bounded(number - _now().float_timestamp)
    return _bounded(number)


_JS_ZONE_NAME = re.compile(r"\s*\([^)]*\)\s*$")
_GMT_OFFSET = re.compile(r"\s*(?:GMT|UTC)(?=[+-]\d{2}:?\d{2}\b)")
_TRAILING_GMT = re.compile(r"\s*(?:GMT|UTC|Z)$")
_DATE_FORMATS = (
    "ddd MMM DD YYYY HH:mm:ss ZZ",  # JavaScript Date.toString(), zone name and "GMT" removed
    "ddd MMM DD YYYY HH:mm:ss Z",
    "ddd MMM DD YYYY HH:mm:ss",
    "ddd, DD MMM YYYY HH:mm:ss",  # HTTP date, "GMT" removed
    "ddd, DD MMM YYYY HH:mm:ss ZZ",
)


def _parse_date(text: str) -> pendulum.DateTime | None:
    cleaned = _JS_ZONE_NAME.sub("", text)
    cleaned = _GMT_OFFSET.sub(" ", cleaned)
    cleaned = _TRAILING_GMT.sub("", cleaned).strip()
    for fmt in _DATE_FORMATS:
        try:
            return pendulum.from_format(cleaned, fmt, tz="UTC")
        except ValueError:
            continue
    try:
        parsed = pendulum.parse(text, strict=False)
    except Exception:
        return None
    return parsed if isinstance(parsed, pendulum.DateTime) else None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def parse_rate_headers(headers: Mapping[str, str]) -> RateInfo:
    """Read the ``X-RateLimit-*`` and ``Retry-After`` headers of a response."""
    return RateInfo(
        limit=_int_header(headers, "X-RateLimit-Limit"),
        remaining=_int_header(headers, "X-RateLimit-Remaining"),
        reset_in=parse_reset(headers.get("X-RateLimit-Reset")),
        retry_after=parse_retry_after(headers.get("Retry-After")),
    )


class Pacer:
    """Thread-safe rate limiter for one API key, pacing through one budget store.

    :param limit: requests allowed per ``period`` (fixed mode); ``None`` for adaptive mode.
    :param period: window length in seconds.
    :param store: where every process of the key meets (see :meth:`share`); ``None``: a
        :class:`~airflow_provider_outreach.core.budget.LocalStore`, this process alone.
    """

    def __init__(self, limit: int | None = None, period: float | None = None, store: BudgetStore | None = None) -> None:
        if limit is not None and (limit < 1 or not period or period <= 0):
            raise ValueError("a pacing limit needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._lock = threading.Lock()
        self._inflight: dict[int, float | None] = {}  # ticket -> start, on the store's clock
        self._next_ticket = 0
        self._store = store if store is not None else self._local_store()
        self._spec: BudgetSpec | None = None
        self._pending: tuple[BudgetSpec, str, str] | None = None  # a store to open on the first request

    @property
    def fixed(self) -> bool:
        return self.limit is not None

    def share(self, spec: BudgetSpec, vendor: str, api_key: str) -> None:
        """Pace through the shared store ``spec`` names, opened on the first request (once:
        later calls change nothing).

        :raises ConnectionConfigError: ``spec`` names Redis and the redis provider is missing.
        """
        check_spec(spec)
        with self._lock:
            if self._spec is None and isinstance(self._store, LocalStore):
                self._spec = spec
                self._pending = (spec, vendor, budget_name(vendor, api_key))

    # -- the store -----------------------------------------------------------------------------

    def _local_store(self) -> LocalStore:
        return LocalStore(self.limit, self.period, WINDOW_MARGIN)

    def _open_pending(self) -> None:
        spec, vendor, name = self._pending
        try:
            store = open_store(spec, name, self.limit, self.period, WINDOW_MARGIN)
        except ConnectionConfigError:
            raise  # every request says so, until the connection is fixed
        except Exception as exc:  # an unusable directory, Redis down: pacing goes on per process
            log.warning("%s: pacing per process; the shared %s store failed: %r", vendor, spec.kind, exc)
        else:
            log.info("%s: the rate-limit budget is shared through %s", vendor, describe(store))
            self._swap(store)
        self._pending = None

    def _swap(self, store: BudgetStore) -> None:
        """Pace through ``store`` from now on."""
        old, self._store = self._store, store
        old.close()
        self._inflight = dict.fromkeys(self._inflight)  # their starts are on the old store's clock

    def _on_store(self, step: Callable[[BudgetStore], T]) -> T:
        """``step`` on the store; if the store fails (a full disk, Redis down), ``step`` again
        on a fresh local store, through which this process paces alone from then on."""
        try:
            return step(self._store)
        except Exception as exc:
            log.warning("pacing per process from now on; the %s store failed: %r", self._store.kind, exc)
            self._swap(self._local_store())
            return step(self._store)

    # -- taking a slot ------------------------------------------------------------------------

    def acquire(self, max_wait: float = float("inf")) -> int:
        """Block until a request may be sent, and count it as sent; returns its ticket.

        :raises PacingWait: when the wait would be longer than ``max_wait`` seconds.
        """
        while True:
            with self._lock:
                start, wait = self._take()
                if wait <= 0:
                    self._next_ticket += 1
                    self._inflight[self._next_ticket] = start
                    return self._next_ticket
            if wait > max_wait:
                raise PacingWait(wait)
            time.sleep(min(wait, 1.0))

    def _take(self) -> tuple[float, float]:
        """``(now, wait)``; a request is counted as started at ``now`` when ``wait <= 0``."""
        if self._pending is not None:
            self._open_pending()
        inflight = len(self._inflight)
        return self._on_store(lambda store: self._take_from(store, inflight))

    def _take_from(self, store: BudgetStore, inflight: int) -> tuple[float, float]:
        with store.locked():
            if not self.fixed:
                now = store.now()

                def check_and_take(state: PacingState) -> float:
                    wait = state.wait(now, inflight, fixed=False)
                    if wait <= 0:
                        state.take()
                    return wait

                return now, store.update(check_and_take)
            state = store.read()
            now = store.now()  # stamped as late as possible: the margin covers stamp-to-send jitter
            wait = state.wait(now, inflight, fixed=True)
            if wait > 0:
                return now, wait
            wait = store.put(now)  # the window log: the hard limit, every process of the store counted
            if wait <= 0 and now < state.foreign_until and state.tokens is not None:

                def take(state: PacingState) -> None:  # the headers gate: spend from what they said
                    state.roll(now, inflight)
                    state.take()

                store.update(take)
            return now, wait

    # -- learning from an answer ---------------------------------------------------------------

    def release(self, ticket: int, info: RateInfo | None = None, status_code: int | None = None) -> None:
        """Account for a finished request and learn from its rate-limit headers."""
        with self._lock:
            try:
                if info is not None:
                    later = sum(1 for t in self._inflight if t > ticket)
                    # the start is read on each try: a store swapped meanwhile knows nothing of it
                    self._on_store(
                        lambda store: self._learn(store, self._inflight.get(ticket), info, status_code, later)
                    )
            finally:
                self._inflight.pop(ticket, None)

    def _learn(
        self, store: BudgetStore, start: float | None, info: RateInfo, status_code: int | None, later: int
    ) -> None:
        now = store.now()
        foreign = self._foreign(start, info, status_code, store)
        store.update(lambda state: state.learn(now, info, status_code, later, self.fixed, foreign))

    def _foreign(self, start: float | None, info: RateInfo, status_code: int | None, store: BudgetStore) -> bool:
        """Fixed mode: whether the API counted more requests in its window than ``store``
        counted in the period before this one started (give or take :data:`REORDER`); an
        unknown start counts as foreign."""
        if not self.fixed or status_code == 429 or info.remaining is None or info.reset_in is None:
            return False
        used = (info.limit if info.limit is not None else self.limit) - info.remaining
        if used <= 0:
            return False
        if start is None:
            return True
        return store.count(start - self.period - store.margin, start + REORDER) < used

    # -- holds and limits ----------------------------------------------------------------------

    def block_for(self, seconds: float) -> None:
        """Hold every thread (and process sharing the key) back for ``seconds``."""

        def hold(store: BudgetStore) -> None:
            until = store.now() + seconds
            store.update(lambda state: state.block(until))

        with self._lock:
            self._on_store(hold)

    def tighten(self, limit: int | None, period: float | None) -> None:
        """Adopt ``limit`` per ``period`` if it is stricter than the limit in force."""
        if limit is None:
            return
        with self._lock:
            if self.limit is None or limit / period < self.limit / self.period:
                self.limit, self.period = limit, period
                self._on_store(lambda store: store.set_rate(limit, period))

    def forget(self) -> None:
        """Forget the window and the record, in the store (shared or not); go on with a fresh
        local store."""
        with self._lock:
            self._pending = None
            try:
                self._store.flush()
            finally:
                self._swap(self._local_store())


_REGISTRY: dict[tuple[str, str], Pacer] = {}
_REGISTRY_LOCK = threading.Lock()


def get_pacer(
    vendor: str, api_key: str, rate_limit: tuple[int, float] | None, shared: BudgetSpec | None = None
) -> Pacer:
    """The process-wide pacer of one API key, shared by every hook that uses it.

    Connections that share a key share its budget whatever their ids; when they set
    different limits, the strictest applies. With ``shared``, the budget is also shared
    with every other process using that store (the first connection's store applies).

    :raises ConnectionConfigError: ``shared`` names a store that cannot be configured.
    """
    key = (vendor, hashlib.sha256(api_key.encode()).hexdigest()[:16])
    limit, period = rate_limit or (None, None)
    with _REGISTRY_LOCK:
        pacer = _REGISTRY.get(key)
        created = pacer is None
        if created:
            pacer = _REGISTRY[key] = Pacer(limit, period)
    if not created:
        pacer.tighten(limit, period)
    if shared is not None:
        pacer.share(shared, vendor, api_key)
    return pacer


def reset_pacers() -> None:
    """Forget every pacer (their windows, blocks and shared records); the next call starts afresh."""
    with _REGISTRY_LOCK:
        pacers = list(_REGISTRY.values())
        _REGISTRY.clear()
    for pacer in pacers:
        try:
            pacer.forget()
        except Exception as exc:  # a store gone meanwhile has nothing to forget
            log.debug("could not flush a shared pacing store: %r", exc)
