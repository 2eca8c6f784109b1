"""Fixed-window rate limiting per (vendor, API key)."""

from __future__ import annotations

import math

from .config import NOMINAL_WINDOW


def _window_end(window, now):
    if window == "utc_day":
        return (math.floor(now / 86400.0) + 1) * 86400.0
    return now + window


class RateLimiter:
    """Fixed windows per (vendor, key). Not thread safe: call under the sandbox lock."""

    def __init__(self) -> None:
        self.buckets: dict = {}

    def reset(self) -> None:
        self.buckets.clear()

    @staticmethod
    def _windows(windows):
        if not windows:
            return (NOMINAL_WINDOW,)
        return tuple((w["limit"], w["window"]) for w in windows)

    def peek(self, windows, now):
        """``(limit, remaining, reset_epoch)`` for a request that is not counted: a fresh first window."""
        limit, window = self._windows(windows)[0]
        return limit, limit, _window_end(window, now)

    def hit(self, vendor, key, windows, now):
        """Count one request. Returns ``(allowed, (limit, remaining, reset_epoch))``.

        The figures are those of the most constraining window (fewest requests left).
        """
        wins = self._windows(windows)
        bucket = self.buckets.get((vendor, key))
        if bucket is None or len(bucket) != len(wins):
            bucket = self.buckets[(vendor, key)] = [[0.0, 0] for _ in wins]
        current = []
        allowed = True
        for (limit, window), slot in zip(wins, bucket, strict=True):
            if now >= slot[0]:
                count, end, expired = 0, _window_end(window, now), True
            else:
                count, end, expired = slot[1], slot[0], False
            if count >= limit:
                allowed = False
            current.append((limit, count, end, expired))
        best = None
        for (limit, count, end, expired), slot in zip(current, bucket, strict=True):
            if allowed:
                if expired:
                    slot[0], slot[1] = end, 1
                else:
                    slot[1] += 1
                count += 1
            remaining = max(0, limit - count)
            if best is None or remaining < best[1] or (remaining == best[1] and end > best[2]):
                best = (limit, remaining, end)
        return allowed, best
