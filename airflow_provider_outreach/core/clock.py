"""The time stamps the package writes: UTC, ISO 8601, always with microseconds.

Stored as text (the audit's ``recorded_at``, the transfers' ``seen_at``), they sort as
times only if every one has the same form; ``datetime.isoformat()`` drops the fraction
when it is zero, so every stamp is made here.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now_iso() -> str:
    """The current UTC time, e.g. ``2026-12-04T16:30:32.106454+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
