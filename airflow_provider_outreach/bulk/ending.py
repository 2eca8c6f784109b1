"""How a run ends, decided once from its facts: a pure function, acted on by the operator."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_outreach.bulk.report import NOT_HONOURED

if TYPE_CHECKING:
    from airflow_provider_outreach.bulk.engine import Stop
    from airflow_provider_outreach.bulk.report import Report

#: not-honoured items named in the message of a failed check
SHOWN = 10


class End(enum.Enum):
    SUCCESS = "success"  # the task returns the report
    RETRY = "retry"  # the task fails; Airflow's retry may help (the progress is kept for it)
    FAIL = "fail"  # the task fails for good; no retry can help


@dataclass(frozen=True)
class Ending:
    end: End
    message: str = ""

    @property
    def final(self) -> bool:
        """The task ends for good: what only a retry would need (the progress) can go."""
        return self.end is not End.RETRY


def end_of_run(
    report: Report, stop: Stop | None, *, fail_on_error: bool, fail_on_not_honoured: bool, report_key: str
) -> Ending:
    """The end of a run: a stop first; then failed items (with ``fail_on_error``: final when
    every failure is); then opt-outs a check found not honoured (with ``fail_on_not_honoured``).
    ``report_key``: where a failed task leaves its report (named in the message)."""
    if stop is not None:
        return Ending(End.FAIL if stop.final else End.RETRY, f"stopped: {stop.cause} ({report.summary()})")
    failed = report.failed
    if failed and fail_on_error:
        item, reason = report.first_failure() or ("?", None)
        message = (
            f"{failed} of {len(report.results)} items failed ({report.summary()}); "
            f"first: {item}: {reason}. The report is in XCom key {report_key!r}."
        )
        if report.all_failures_final():
            return Ending(End.FAIL, message + " No retry can help: every failure is permanent.")
        return Ending(End.RETRY, message)
    not_honoured = report.in_order(NOT_HONOURED)
    if not_honoured and fail_on_not_honoured:
        shown = ", ".join(not_honoured[:SHOWN]) + (", ..." if len(not_honoured) > SHOWN else "")
        return Ending(
            End.FAIL,
            f"{len(not_honoured)} of {len(report.results)} opt-outs are not honoured in {report.vendor}: {shown}. "
            f"The report is in XCom key {report_key!r}.",
        )
    return Ending(End.SUCCESS)
