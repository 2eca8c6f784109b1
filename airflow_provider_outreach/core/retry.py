"""The one retry rule: is a failure transient, and how long must the next attempt wait?

Sync calls, async calls, the bulk engine and the campaign-status trigger all decide with
:func:`decide`; nothing else in the package classifies failures for retrying.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Any

from airflow_provider_outreach.exceptions import (
    InvalidInputError,
    RateLimitError,
    ServerError,
    TLSVerificationError,
    TransportError,
)

#: the errors another attempt may cure (a failed certificate check, a TransportError, cannot)
TRANSIENT_ERRORS = (ServerError, TransportError, RateLimitError)


class Action(enum.Enum):
    RETRY = "retry"  # try again after ``wait`` (``None``: back off)
    DEFER = "defer"  # the API asked for a wait longer than the caller sleeps inline
    GIVE_UP = "give_up"  # permanent: another attempt cannot help


@dataclass(frozen=True)
class Decision:
    action: Action
    wait: float | None = None


def decide(exc: BaseException, max_inline_wait: float) -> Decision:
    """What to do after ``exc``.

    5xx answers and transport failures are retried with back-off; a 429, or the pacer
    finding the budget spent, waits exactly what the API asked for, unless that is longer
    than ``max_inline_wait`` (a daily quota): then the caller should defer. A failed TLS
    certificate check and every other error are permanent.
    """
    if isinstance(exc, TLSVerificationError) or not isinstance(exc, TRANSIENT_ERRORS):
        return Decision(Action.GIVE_UP)
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        if exc.retry_after > max_inline_wait:
            return Decision(Action.DEFER, exc.retry_after)
        return Decision(Action.RETRY, exc.retry_after)
    return Decision(Action.RETRY)


def inline_wait_seconds(value: Any) -> float:
    """``max_inline_wait`` in seconds: a templated field arrives as text, e.g. from a run's conf."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds >= 0:  # also refuses NaN
        raise InvalidInputError(f"max_inline_wait must be a number of seconds (0 or more), got {value!r}")
    return seconds


def backoff(attempt: int, base: float, cap: float = 30.0) -> float:
    """Exponential back-off with jitter before attempt ``attempt + 1``."""
    delay = min(cap, base * 2 ** (attempt - 1))
    return delay + random.uniform(0, delay / 2)


def retrying_kwargs(
    *, max_inline_wait: float, max_attempts: int, max_retry_wait: float, base: float, log: Any
) -> dict[str, Any]:
    """Keyword arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` applying :func:`decide`."""
    import tenacity

    def retry(state: tenacity.RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return exc is not None and decide(exc, max_inline_wait).action is Action.RETRY

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = decide(exc, max_inline_wait).wait if exc is not None else None
        return asked if asked is not None else backoff(state.attempt_number, base)

    def stop(state: tenacity.RetryCallState) -> bool:
        return state.attempt_number >= max_attempts or state.idle_for + state.upcoming_sleep > max_retry_wait

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s; attempt %d of %d, retrying in %.1f s", exc, state.attempt_number, max_attempts, state.upcoming_sleep
        )

    return {"retry": retry, "wait": wait, "stop": stop, "before_sleep": before_sleep, "reraise": True}
