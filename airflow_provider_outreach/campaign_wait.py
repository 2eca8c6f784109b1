"""Waiting for a campaign's status: what one status read means, decided once for the
sensor's pokes and the trigger's polls."""

from __future__ import annotations

import enum
from collections.abc import Collection


class Verdict(enum.Enum):
    REACHED = "reached"  # a target status: the wait succeeds
    FAILED = "failed"  # a failure status: it will not reach a target; the wait fails at once
    WAITING = "waiting"


def judge(where: str, status: str, targets: Collection[str], failures: Collection[str]) -> tuple[Verdict, str]:
    """The verdict on one read of ``where`` (``"<vendor> campaign <id>"``) and what to say of it."""
    wanted = "/".join(sorted(targets))
    if status in failures:
        return Verdict.FAILED, f"{where} is {status}; it will not become {wanted}"
    if status in targets:
        return Verdict.REACHED, f"{where} is {status}"
    return Verdict.WAITING, f"{where} is {status}; waiting for {wanted}"
