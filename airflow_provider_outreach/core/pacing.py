"""Client-side pacing and rate-limit header parsing, shared by every vendor.

A :class:`Pacer` keeps one API key under its rate limit across the threads of a process and,
through a shared store (:mod:`airflow_provider_outreach.core.budget`), across the processes
of a host or, with Redis, of every host. It works in one of two modes:

* **fixed** — the limit is known (lemlist documents 20 requests per 2 s; any vendor can be
  given one in the connection's extra): a sliding-window log never lets more than ``limit``
  requests start within ``period`` seconds (plus a margin for network jitter). Shared, the
  log is pyrate-limiter's bucket, so every process of the key counts in one window. The
  API's ``X-RateLimit-Remaining``/``Reset`` are honoured too: when an answer shows the API
  counted more requests in its window than we sent (another user of the key: an
  integration, a second deployment), what it says is left gates every process until that
  window resets, as in adaptive mode; when our own requests explain the count, the window
  log alone paces (it knows to the millisecond when our requests leave the window, where
  lemlist's reset header has one-second resolution).
* **adaptive** — no limit is known (LeadLex, DialNexa): the pacer spends the
  ``X-RateLimit-Remaining`` the API reports, less the requests still in flight, and once it
  is used up waits for ``X-RateLimit-Reset``. Shared, that record (``rate_state.PacingState``:
  remaining, reset, blocked-until) lives in the store: every process takes from the same
  remaining, and an answer only ever lowers it within a window (its reset replaces it), so
  a process never spends what another already spent. Only requests in flight in *other*
  processes when a window resets go uncounted.

In both modes a 429 blocks every thread of every process sharing the key until the time the
API asked for. A wait longer than the caller accepts is not slept: :class:`PacingWait` is
raised so the caller can defer instead of holding a worker slot. If the shared store fails
(a full disk, Redis down), the pacer logs it and paces per process from then on.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import pendulum

from airflow_provider_outreach.core.budget import (
    BudgetSpec,
    BudgetStore,
    budget_name,
    check_spec,
    describe,
    open_store,
)
from airflow_provider_outreach.core.rate_state import PacingState, RateInfo
from airflow_provider_outreach.exceptions import ConnectionConfigError

log = logging.getLogger(__name__)

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
#: into the server's window.
WINDOW_MARGIN = 0.03
#: The same across processes: the shared store stamps a request under its lock, as the pacer
#: does under its own, so the jitter between count and send is alike.
SHARED_WINDOW_MARGIN = WINDOW_MARGIN
#: Requests started this long after another may still reach the API before it (threads and
#: processes race between counting a request and sending it).
REORDER = 0.1
#: Request starts kept past the window, to attribute answers that arrive late.
KEEP = 120.0


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
    """Thread-safe rate limiter for one API key; shared across processes with a ``store``.

    :param limit: requests allowed per ``period`` (fixed mode); ``None`` for adaptive mode.
    :param period: window length in seconds.
    :param store: where every process of the key meets (see :meth:`share`); ``None``: this
        process alone.
    """

    def __init__(self, limit: int | None = None, period: float | None = None, store: BudgetStore | None = None) -> None:
        if limit is not None and (limit < 1 or not period or period <= 0):
            raise ValueError("a pacing limit needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._lock = threading.Lock()
        self._sent: list[float] = []  # fixed mode, this process alone: request starts, oldest first
        self._state = PacingState()  # this process alone
        self._inflight: dict[int, float | None] = {}  # ticket -> start
        self._next_ticket = 0
        self._store = store
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
            if self._store is None and self._spec is None:
                self._spec = spec
                self._pending = (spec, vendor, budget_name(vendor, api_key))

    def _open_pending(self) -> None:
        spec, vendor, name = self._pending
        try:
            self._store = open_store(spec, name, self.limit, self.period, SHARED_WINDOW_MARGIN)
        except ConnectionConfigError:
            raise  # every request says so, until the connection is fixed
        except Exception as exc:  # an unusable directory, Redis down: pacing goes on per process
            log.warning("%s: pacing per process; the shared %s store failed: %r", vendor, spec.kind, exc)
        else:
            log.info("%s: the rate-limit budget is shared through %s", vendor, describe(self._store))
        self._pending = None

    def _drop_store(self, exc: Exception) -> None:
        log.warning("pacing per process from now on; the shared %s store failed: %r", self._store.kind, exc)
        store, self._store = self._store, None
        store.close()
        self._inflight = dict.fromkeys(self._inflight)  # their starts are on the store's clock

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
        if self._store is not None:
            try:
                return self._take_shared(self._store)
            except Exception as exc:  # the store failed (disk, Redis): carry on alone
                self._drop_store(exc)
        now = time.monotonic()
        wait = self._state.wait(now, len(self._inflight), self.fixed)
        if self.fixed:
            wait = max(wait, self._window_wait(now))
        if wait <= 0:
            if self.fixed:
                self._sent.append(now)
            self._state.take()
        return now, wait

    def _window_wait(self, now: float) -> float:
        cutoff = now - self.period - WINDOW_MARGIN  # a start at or before it has left the window
        sent = self._sent
        in_window = len(sent) - bisect.bisect_right(sent, cutoff)
        wait = sent[-self.limit] - cutoff if in_window >= self.limit else 0.0
        del sent[: bisect.bisect_right(sent, cutoff - KEEP)]
        return wait

    def _take_shared(self, store: BudgetStore) -> tuple[float, float]:
        inflight = len(self._inflight)
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
            wait = store.put(now)  # the window log: the hard limit, every process counted
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
            start = self._inflight.pop(ticket, None)
            if info is None:
                return
            later = sum(1 for t in self._inflight if t > ticket)
            if self._store is not None:
                store = self._store
                try:
                    now = store.now()
                    foreign = self._foreign(start, info, status_code, store.count, SHARED_WINDOW_MARGIN)
                    store.update(lambda state: state.learn(now, info, status_code, later, self.fixed, foreign))
                    return
                except Exception as exc:  # the store failed: carry on alone
                    self._drop_store(exc)
                    start = None
            now = time.monotonic()
            foreign = self._foreign(start, info, status_code, self._count_local, WINDOW_MARGIN)
            self._state.learn(now, info, status_code, later, self.fixed, foreign)

    def _foreign(self, start: float | None, info: RateInfo, status_code: int | None, count: Any, margin: float) -> bool:
        """Fixed mode: whether the API counted more requests in its window than we started in
        the period before this one (give or take :data:`REORDER`)."""
        if not self.fixed or status_code == 429 or info.remaining is None or info.reset_in is None:
            return False
        used = (info.limit if info.limit is not None else self.limit) - info.remaining
        if used <= 0:
            return False
        if start is None:
            return True
        return count(start - self.period - margin, start + REORDER) < used

    def _count_local(self, first: float, last: float) -> int:
        return bisect.bisect_right(self._sent, last) - bisect.bisect_left(self._sent, first)

    # -- holds and limits ----------------------------------------------------------------------

    def block_for(self, seconds: float) -> None:
        """Hold every thread (and process sharing the key) back for ``seconds``."""
        with self._lock:
            if self._store is not None:
                try:
                    until = self._store.now() + seconds
                    self._store.update(lambda state: state.block(until))
                    return
                except Exception as exc:
                    self._drop_store(exc)
            self._state.block(time.monotonic() + seconds)

    def tighten(self, limit: int | None, period: float | None) -> None:
        """Adopt ``limit`` per ``period`` if it is stricter than the limit in force."""
        if limit is None:
            return
        with self._lock:
            if self.limit is None or limit / period < self.limit / self.period:
                self.limit, self.period = limit, period
                if self._store is not None:
                    try:
                        self._store.set_rate(limit, period)
                    except Exception as exc:
                        self._drop_store(exc)

    def forget(self) -> None:
        """Forget the window and the record, here and in the shared store."""
        with self._lock:
            self._sent.clear()
            self._state = PacingState()
            self._pending = None
            if self._store is not None:
                try:
                    self._store.flush()
                finally:
                    self._store.close()
                    self._store = None


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
