"""What an API's answers said about one key's rate-limit budget: the record the pacer keeps,
in the store of one process or a shared one (:mod:`~airflow_provider_outreach.core.budget`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

__all__ = ["PacingState", "RateInfo"]


@dataclass(frozen=True)
class RateInfo:
    """What one response said about the rate limit (times as seconds from now)."""

    limit: int | None = None
    remaining: int | None = None
    reset_in: float | None = None
    retry_after: float | None = None


@dataclass
class PacingState:
    """What the API said about one key's budget; times are on the clock of the store that
    holds it (``time.monotonic`` in a process's own, epoch seconds in a shared one).

    :ivar blocked_until: a 429 holds every request until then.
    :ivar tokens: requests the API's current window has left, as far as known.
    :ivar reset_at: when that window resets.
    :ivar window_limit: what a fresh window holds (``X-RateLimit-Limit``).
    :ivar foreign_until: fixed mode: the API's window holds requests that are not ours until
        then, so ``tokens`` gate requests until then as in adaptive mode.
    """

    blocked_until: float = 0.0
    tokens: int | None = None
    reset_at: float | None = None
    window_limit: int | None = None
    foreign_until: float = 0.0

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> PacingState:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})
        except (TypeError, ValueError):
            return cls()  # an unreadable record is no worse than a fresh one

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    def roll(self, now: float, inflight: int) -> None:
        """At the API's reset: spend what a window holds, less what is still on its way."""
        if self.reset_at is not None and now >= self.reset_at:
            self.tokens = None if self.window_limit is None else self.window_limit - inflight
            self.reset_at = None

    def wait(self, now: float, inflight: int, fixed: bool) -> float:
        """Seconds until the headers allow a request (<= 0: now)."""
        self.roll(now, inflight)
        wait = self.blocked_until - now
        gated = not fixed or now < self.foreign_until
        if gated and self.tokens is not None and self.tokens <= 0:
            if self.reset_at is not None:
                wait = max(wait, self.reset_at - now)
            elif inflight:
                wait = max(wait, 0.05)  # spent: wait for an answer to tell the new window
        return wait

    def take(self) -> None:
        if self.tokens is not None:
            self.tokens -= 1

    def block(self, until: float) -> None:
        self.blocked_until = max(self.blocked_until, until)

    def learn(
        self, now: float, info: RateInfo, status_code: int | None, later: int, fixed: bool, foreign: bool
    ) -> None:
        """Account for one answer. ``later``: requests sent after it, still in flight here;
        ``foreign``: the API counted requests in its window that are not ours."""
        if status_code == 429:
            wait = info.retry_after if info.retry_after is not None else info.reset_in
            if wait is not None:
                self.block(now + wait)
            if fixed:
                return  # the window log paces; the hold covers the rest
        if info.reset_in is None or info.remaining is None:
            return
        reset_at = now + info.reset_in
        if info.limit is not None:
            self.window_limit = info.limit
        # A reset later than the one known starts a new window (the old one ended, or a
        # short 429 window is over): its count replaces what was left of the old one.
        new_window = self.reset_at is not None and reset_at > self.reset_at + 0.5
        if self.reset_at is None or abs(reset_at - self.reset_at) > 0.5:
            self.reset_at = reset_at
        # Requests sent after this one may not be counted by the API yet. Answers can
        # arrive out of order, so within a window a later answer never raises what is
        # left to spend: only the window's reset does.
        left = info.remaining - later
        self.tokens = left if self.tokens is None or new_window else min(self.tokens, left)
        if foreign:
            self.foreign_until = max(self.foreign_until, reset_at)
