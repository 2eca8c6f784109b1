"""Building blocks of a suppression sync DAG, between the warehouse's rows and the operators.

Every sync needs the same two steps its SQL cannot take: LeadLex removals go one mapped
task per campaign, so the ``(campaign_id, contact_id)`` rows of a query are grouped by
campaign; and the reports of a run's operators add up to one summary::

    from airflow_provider_outreach.sync import enrollments_by_campaign, summarize

    batches = enrollments_by_campaign(read_enrollments.output)  # [{"campaign_id", "contact_id": [...]}]
    LeadlexRemoveContactOperator.partial(task_id="leadlex_remove").expand_kwargs(batches)
    summarize([lemlist_task.output, leadlex_mapped.output])  # runs whatever the tasks did

Both are tasks (``@task``); the plain functions behind them are :func:`group_by_campaign`
and :func:`sum_reports`. Importing this module loads nothing heavy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_outreach.exceptions import InvalidInputError
from airflow_provider_outreach.version_compat import task

log = logging.getLogger(__name__)


def group_by_campaign(rows: Iterable[Any], item_field: str = "contact_id") -> list[dict[str, Any]]:
    """``(campaign_id, item)`` rows -> ``[{"campaign_id": c, item_field: [item, ...]}, ...]``.

    Campaigns are sorted (a mapped task's indexes stay the same from run to run); each
    campaign's items keep their first order, duplicates dropped.

    :raises InvalidInputError: a row that is not a pair, naming it.
    """
    if rows is None:
        return []
    grouped: dict[str, dict[str, None]] = {}
    for row in rows:
        if isinstance(row, (str, bytes, Mapping)) or not isinstance(row, Iterable):
            raise InvalidInputError(f"row {row!r}: expected a (campaign_id, {item_field}) pair")
        pair = list(row)
        if len(pair) != 2 or any(value is None or str(value).strip() == "" for value in pair):
            raise InvalidInputError(f"row {row!r}: expected a (campaign_id, {item_field}) pair")
        campaign_id, item = (str(value).strip() for value in pair)
        grouped.setdefault(campaign_id, {})[item] = None
    return [{"campaign_id": campaign_id, item_field: list(items)} for campaign_id, items in sorted(grouped.items())]


def sum_reports(reports: Iterable[Any]) -> dict[str, dict[str, int]]:
    """The count of each outcome per ``"<vendor> <action>"``, across reports.

    ``reports`` holds operator reports (their XCom), lists of them (a mapped task's), and
    ``None`` for a task that returned none (it failed: its report is in XCom key
    ``report``); those are counted under ``"reports missing"``.
    """
    totals: dict[str, dict[str, int]] = {}
    missing = 0
    for report in _flatten(reports):
        if report is None:
            missing += 1
            continue
        if not isinstance(report, Mapping) or not isinstance(report.get("counts"), Mapping):
            raise InvalidInputError(f"not an operator report: {str(report)[:200]!r}")
        counts = totals.setdefault(f"{report['vendor']} {report['action']}", {})
        for outcome, n in report["counts"].items():
            counts[outcome] = counts.get(outcome, 0) + int(n)
    if missing:
        totals["reports missing"] = {"tasks": missing}
    return dict(sorted(totals.items()))


def lemlist_event_records(triggering_asset_events: Any) -> list[dict[str, Any]]:
    """The lemlist suppression records of a run's asset events (from
    :class:`~airflow_provider_outreach.triggers.lemlist_unsubscribes.LemlistUnsubscribeEventTrigger`),
    one per value in the order they came: the trigger may emit a record twice."""
    records: dict[str, dict[str, Any]] = {}
    for events in (triggering_asset_events or {}).values():
        for event in events:
            payload = (event.extra or {}).get("payload") or {}
            for record in payload.get("records") or []:
                value = record.get("value") if isinstance(record, Mapping) else None
                if isinstance(value, str) and value.strip():
                    records.setdefault(value.strip().lower(), dict(record))
    return list(records.values())


def _flatten(reports: Any) -> Iterable[Any]:
    if reports is None or isinstance(reports, Mapping):
        yield reports
        return
    for report in reports:
        if report is None or isinstance(report, Mapping):
            yield report
        else:  # a mapped task's reports
            yield from _flatten(report)


@task
def enrollments_by_campaign(rows: Any) -> list[dict[str, Any]]:
    """``(campaign_id, contact_id)`` rows -> one ``expand_kwargs`` entry per LeadLex campaign."""
    return group_by_campaign(rows)


@task(trigger_rule="all_done")
def summarize(reports: Any) -> dict[str, dict[str, int]]:
    """One line per tool and action with the count of each outcome; runs whatever the
    operators did (a failed one counts under ``"reports missing"``)."""
    totals = sum_reports(reports)
    for key, counts in totals.items():
        log.info("%-36s %s", key, "  ".join(f"{outcome} {n:>5}" for outcome, n in counts.items()))
    return totals
