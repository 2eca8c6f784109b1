"""Client-side pacing and rate-limit header parsing, shared by every vendor.

A :class:`Pacer` keeps one API key under its rate limit across all the threads of a
process. It works in one of two modes:

* **fixed** — the limit is known (lemlist documents 20 requests per 2 s; any vendor can
  be given one in the connection's extra): a sliding-window log never lets more than
  ``limit`` requests start within ``period`` seconds.
* **adaptive** — no limit is known (LeadLex, DialNexa): the pacer spends the
  ``X-RateLimit-Remaining`` the API reports and, once it is used up, waits for
  ``X-RateLimit-Reset`` before sending more.

In both modes a 429 blocks every thread until the time the API asked for. A wait longer
than the caller accepts is not slept: :class:`PacingWait` is raised so the caller can
defer instead of holding a worker slot.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import pendulum

__all__ = [
    "Pacer",
    "PacingWait",
    "RateInfo",
    "get_pacer",
    "parse_rate_headers",
    "parse_reset",
    "parse_retry_after",
    "reset_pacers",
]

#: Extra room added to a fixed window so that network jitter cannot push one request too many
#: into the server's window.
WINDOW_MARGIN = 0.03


class PacingWait(Exception):
    """Raised by :meth:`Pacer.acquire` when the next slot is further away than allowed."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        super().__init__(f"next request allowed in {wait:.1f} s")


@dataclass(frozen=True)
class RateInfo:
    """What one response said about the rate limit (times as seconds from now)."""

    limit: int | None = None
    remaining: int | None = None
    reset_in: float | None = None
    retry_after: float | None = None


def _now() -> pendulum.DateTime:
    return pendulum.now("UTC")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    when = _parse_date(text)
    if when is None:
        return None
    return max(0.0, (when - _now()).total_seconds())


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
        return None if when is None else max(0.0, (when - _now()).total_seconds())
    if number > 1e12:  # epoch milliseconds
        number /= 1000.0
    if number > 1e9:  # epoch seconds
        return max(0.0, number - _now().float_timestamp)
    return max(0.0, number)


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
    """Thread-safe rate limiter for one API key.

    :param limit: requests allowed per ``period`` (fixed mode); ``None`` for adaptive mode.
    :param period: window length in seconds.
    """

    def __init__(self, limit: int | None = None, period: float | None = None) -> None:
        if limit is not None and (limit < 1 or not period or period <= 0):
            raise ValueError("a pacing limit needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        # adaptive mode: tokens left in the API's current window, and when it resets
        self._tokens: int | None = None
        self._reset_at: float | None = None
        self._window_limit: int | None = None
        self._inflight: set[int] = set()
        self._next_ticket = 0

    @property
    def fixed(self) -> bool:
        return self.limit is not None

    def _wait_locked(self, now: float) -> float:
        wait = self._blocked_until - now
        if self.fixed:
            while self._sent and self._sent[0] + self.period + WINDOW_MARGIN <= now:
                self._sent.popleft()
            if len(self._sent) >= self.limit:
                wait = max(wait, self._sent[0] + self.period + WINDOW_MARGIN - now)
        elif self._reset_at is None:
            if self._tokens is not None and self._tokens <= 0 and self._inflight:
                wait = max(wait, 0.05)  # spent: wait for an answer to tell the new window
        else:
            if now >= self._reset_at:
                # the API's window has reset: spend what it said the window holds, less what
                # is still on its way
                self._tokens = None if self._window_limit is None else self._window_limit - len(self._inflight)
                self._reset_at = None
            elif self._tokens is not None and self._tokens <= 0:
                wait = max(wait, self._reset_at - now)
        return wait

    def acquire(self, max_wait: float = float("inf")) -> int:
        """Block until a request may be sent, and count it as sent; returns its ticket.

        :raises PacingWait: when the wait would be longer than ``max_wait`` seconds.
        """
        while True:
            with self._lock:
                now = time.monotonic()
                wait = self._wait_locked(now)
                if wait <= 0:
                    if self.fixed:
                        self._sent.append(now)
                    elif self._tokens is not None:
                        self._tokens -= 1
                    self._next_ticket += 1
                    self._inflight.add(self._next_ticket)
                    return self._next_ticket
            if wait > max_wait:
                raise PacingWait(wait)
            time.sleep(min(wait, 1.0))

    def release(self, ticket: int, info: RateInfo | None = None, status_code: int | None = None) -> None:
        """Account for a finished request and learn from its rate-limit headers."""
        with self._lock:
            self._inflight.discard(ticket)
            if info is None:
                return
            now = time.monotonic()
            if status_code == 429:
                wait = info.retry_after if info.retry_after is not None else info.reset_in
                if wait is not None:
                    self._blocked_until = max(self._blocked_until, now + wait)
            if self.fixed or info.reset_in is None or info.remaining is None:
                return
            reset_at = now + info.reset_in
            if info.limit is not None:
                self._window_limit = info.limit
            # A reset later than the one known starts a new window (the old one ended, or a
            # short 429 window is over): its count replaces what was left of the old one.
            new_window = self._reset_at is not None and reset_at > self._reset_at + 0.5
            if self._reset_at is None or abs(reset_at - self._reset_at) > 0.5:
                self._reset_at = reset_at
            # Requests sent after this one may not be counted by the API yet. Answers can
            # arrive out of order, so within a window a later answer never raises what is
            # left to spend: only the window's reset does.
            left = info.remaining - sum(1 for t in self._inflight if t > ticket)
            self._tokens = left if self._tokens is None or new_window else min(self._tokens, left)

    def block_for(self, seconds: float) -> None:
        """Hold every thread back for ``seconds`` (the API asked us to wait)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, time.monotonic() + seconds)

    def tighten(self, limit: int | None, period: float | None) -> None:
        """Adopt ``limit`` per ``period`` if it is stricter than the limit in force."""
        if limit is None:
            return
        with self._lock:
            if self.limit is None or limit / period < self.limit / self.period:
                self.limit, self.period = limit, period


_REGISTRY: dict[tuple[str, str], Pacer] = {}
_REGISTRY_LOCK = threading.Lock()


def get_pacer(vendor: str, api_key: str, rate_limit: tuple[int, float] | None) -> Pacer:
    """The process-wide pacer of one API key, shared by every hook that uses it.

    Connections that share a key share its budget whatever their ids; when they set
    different limits, the strictest applies.
    """
    key = (vendor, hashlib.sha256(api_key.encode()).hexdigest()[:16])
    limit, period = rate_limit or (None, None)
    with _REGISTRY_LOCK:
        pacer = _REGISTRY.get(key)
        if pacer is None:
            pacer = _REGISTRY[key] = Pacer(limit, period)
            return pacer
    pacer.tighten(limit, period)
    return pacer


def reset_pacers() -> None:
    """Forget every pacer (their windows and blocks); the next call starts afresh."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()
