"""Shared base of every outreach operator: one item or thousands, every one reported."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import pendulum
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from airflow_provider_outreach.audit import check_table_name, write_audit_rows
from airflow_provider_outreach.bulk import (
    WOULD_DO,
    ItemKind,
    Report,
    flatten_items,
    prepare,
    run_bulk,
)
from airflow_provider_outreach.hooks.base import OutreachHook, encode_path_param

RESUME_XCOM_KEY = "outreach_resume_state"
REPORT_XCOM_KEY = "report"
_LOGGED_FAILURES = 20


class OutreachBulkOperator(BaseOperator):
    """Apply one vendor action to each item of a list and report every item's outcome.

    Subclasses name the hook, the action, the templated item parameter and how one item
    is applied. The operator returns (XCom) a report::

        {"vendor", "action", "dry_run", "counts": {outcome: n}, "items": {outcome: [item, ...]},
         "failures": [{"item", "status", "code", "reason", "message"}], "duplicates": n}

    with the outcomes ``done``, ``already_absent``, ``failed`` (``would_do`` in a dry run).

    :param missing_ok: a 404 (already removed, not enrolled, not found) counts as
        ``already_absent`` instead of ``failed``.
    :param dry_run: validate and report what would be done; send nothing.
    :param fail_on_error: after every item was tried, fail the task if any item failed.
    :param max_workers: concurrent requests; the hook's pacer keeps them within the rate limit.
    :param max_inline_wait: the longest rate-limit wait slept in the worker; a longer one
        (a daily quota) defers the task until the reset and resumes with the items left.
    :param audit_conn_id: a common-sql connection (SQLite, Postgres, ...) for the audit trail.
    :param audit_table: table for the audit rows; created if missing.
    """

    hook_class: ClassVar[type[OutreachHook]]
    action: ClassVar[str]
    item_field: ClassVar[str]
    item_kind: ClassVar[ItemKind]
    #: other path parameters that must be usable before any request is sent
    fixed_fields: ClassVar[tuple[str, ...]] = ()
    #: report reason for a 409 (None: a generic failure)
    conflict_reason: ClassVar[str | None] = None
    #: count a 409 as ``already_absent`` (the action can never be needed again)
    conflict_absent: bool = False

    ui_color = "#fde9e7"

    def __init__(
        self,
        *,
        missing_ok: bool = True,
        dry_run: bool = False,
        fail_on_error: bool = True,
        max_workers: int = 8,
        max_inline_wait: float = 60.0,
        audit_conn_id: str | None = None,
        audit_table: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_workers < 1:
            raise ValueError(f"{self.task_id}: max_workers must be at least 1")
        if (audit_conn_id is None) != (audit_table is None):
            raise ValueError(f"{self.task_id}: audit_conn_id and audit_table go together")
        self.missing_ok = missing_ok
        self.dry_run = dry_run
        self.fail_on_error = fail_on_error
        self.max_workers = max_workers
        self.max_inline_wait = max_inline_wait
        self.audit_conn_id = audit_conn_id
        self.audit_table = audit_table

    # -- what a subclass provides --------------------------------------------------------------

    def apply(self, hook: Any, item: str) -> Any:
        """Send the request for one item."""
        raise NotImplementedError

    # -- execution -----------------------------------------------------------------------------

    @property
    def conn_id(self) -> str:
        return getattr(self, self.hook_class.conn_name_attr)

    def get_hook(self) -> OutreachHook:
        return self.hook_class(self.conn_id, max_inline_wait=self.max_inline_wait)

    def _check_fixed_fields(self) -> None:
        for name in self.fixed_fields:
            encode_path_param(name, getattr(self, name))
        if self.audit_table is not None:
            check_table_name(self.audit_table)

    def execute(self, context: Any) -> dict[str, Any]:
        self._check_fixed_fields()
        report = Report(vendor=self.hook_class.vendor, action=self.action, dry_run=self.dry_run)
        items = flatten_items(getattr(self, self.item_field), self.item_field)
        todo = prepare(items, self.item_kind, report)
        self.log.info(
            "%s %s: %d items (%d duplicates dropped, %d invalid)",
            report.vendor,
            self.action,
            len(todo) + len(report.outcomes),
            report.duplicates,
            len(report.outcomes),
        )
        return self._run(context, report, todo, audited=0)

    def execute_resume(
        self, context: Any, event: Any = None, state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Continue after a quota pause with the items not yet done."""
        if state is None:  # resumed without the deferral kwargs: use the copy kept in XCom
            state = context["ti"].xcom_pull(task_ids=self.task_id, key=RESUME_XCOM_KEY, map_indexes=context["ti"].map_index)
        if not state:
            raise AirflowException(f"{self.task_id}: cannot resume, the saved progress is missing")
        report = Report.from_dict(state["report"])
        self.log.info(
            "Resuming %s after the rate-limit reset: %d items finished, %d left",
            self.action,
            len(report.outcomes),
            len(state["pending"]),
        )
        return self._run(context, report, list(state["pending"]), audited=state.get("audited", 0))

    def _run(self, context: Any, report: Report, todo: list[str], audited: int) -> dict[str, Any]:
        if self.dry_run:
            for item in todo:
                report.record(item, WOULD_DO)
            return self._finish(context, report, audited)
        hook = self.get_hook()
        hook.get_conn()  # an unusable connection fails the task once, before any item is tried
        pause = run_bulk(
            todo,
            lambda item: self.apply(hook, item),
            report,
            max_workers=self.max_workers,
            missing_ok=self.missing_ok,
            max_inline_wait=self.max_inline_wait,
            conflict_reason=self.conflict_reason,
            campaign_missing=hook.campaign_missing if "campaign_id" in self.fixed_fields else None,
            conflict_absent=self.conflict_absent,
            logger=self.log,
        )
        if pause is None:
            return self._finish(context, report, audited)
        audited = self._audit(context, report, audited)
        resume_at = pendulum.now("UTC") + timedelta(seconds=pause.retry_after + 1)
        state = {"report": report.to_dict(), "pending": pause.pending, "audited": audited}
        context["ti"].xcom_push(key=RESUME_XCOM_KEY, value=state)
        self.log.warning(
            "%s; %d items finished, %d left: deferring until %s instead of holding a worker slot",
            pause.error,
            len(report.outcomes),
            len(pause.pending),
            resume_at.isoformat(),
        )
        self.defer(trigger=DateTimeTrigger(moment=resume_at), method_name="execute_resume", kwargs={"state": state})

    def _finish(self, context: Any, report: Report, audited: int) -> dict[str, Any]:
        self._audit(context, report, audited)
        result = report.to_dict()
        self.log.info(report.summary())
        for failure in list(report.failures.values())[:_LOGGED_FAILURES]:
            self.log.warning("failed: %s", failure["message"])
        if report.failed > _LOGGED_FAILURES:
            self.log.warning("... and %d more failures (see the report)", report.failed - _LOGGED_FAILURES)
        if report.failed and self.fail_on_error:
            context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=result)
            first = next(iter(report.failures.values()))["message"]
            raise AirflowException(
                f"{report.failed} of {len(report.outcomes)} items failed ({report.summary()}); first: {first}. "
                f"The full report is in XCom key {REPORT_XCOM_KEY!r}."
            )
        return result

    def _audit(self, context: Any, report: Report, audited: int) -> int:
        """Write audit rows for the items finished since the last write; returns the new mark."""
        if not self.audit_conn_id:
            return audited
        entries = list(report.outcomes.items())[audited:]
        now = pendulum.now("UTC").isoformat()
        ti = context.get("ti")
        dag_id = getattr(ti, "dag_id", None)
        run_id = getattr(ti, "run_id", None)
        rows = [
            (
                report.vendor,
                report.action,
                item,
                outcome,
                report.details[item]["status"],
                report.details[item]["message"],
                now,
                dag_id,
                run_id,
                self.task_id,
            )
            for item, outcome in entries
        ]
        write_audit_rows(self.audit_conn_id, self.audit_table, rows)
        return audited + len(rows)

