"""Shared base of every outreach operator: the Airflow glue around the bulk engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_outreach.bulk.items import ItemKind
from airflow_provider_outreach.exceptions import RateLimitError
from airflow_provider_outreach.hooks.base import OutreachHook
from airflow_provider_outreach.version_compat import BaseOperator

if TYPE_CHECKING:
    from airflow_provider_outreach.bulk.engine import BulkPolicy
    from airflow_provider_outreach.bulk.ledger import Ledger
    from airflow_provider_outreach.bulk.report import Report

REPORT_XCOM_KEY = "report"
_LOGGED_FAILURES = 20


class OutreachBulkOperator(BaseOperator):
    """Apply one vendor action to each item of a list and report every item's outcome.

    Before the first item one read proves the connection reaches the vendor's API with a
    working key (the campaign, or the vendor's probe), also in a dry run. Items then run
    concurrently, paced to the rate limit; each gets exactly one outcome: ``done``,
    ``already_absent`` (only when the vendor's answer says the item itself is absent),
    ``failed`` (with status, vendor code, reason and message), ``not_attempted`` (the run
    stopped first), or ``would_do`` in a dry run. The run stops, and the task fails,
    when going on cannot help: the key is refused, the campaign is gone, answers make no
    sense, the API is down, or the audit trail cannot be written.

    Progress is recorded as the run goes (in the audit table when one is set, else in the
    task state store), so a retry or a resume after a quota wait sends only the items with
    no final outcome yet and reports the earlier outcomes too. The operator returns (XCom)
    a report, bounded whatever the number of items::

        {"vendor", "action", "dry_run", "counts": {outcome: n},
         "items": {outcome: [item, ...]} (up to report_item_limit items; else "items_omitted": n),
         "failures": [{"item", "status", "code", "reason", "message"}] (the first report_failure_limit),
         "duplicates": n}

    :param missing_ok: an item the vendor says is absent counts as ``already_absent``
        instead of ``failed``.
    :param dry_run: validate, check the connection and report what would be done; change nothing.
    :param fail_on_error: after every item was tried, fail the task if any item failed
        (without Airflow retries when no retry can help).
    :param max_workers: concurrent requests; the hook's pacer keeps them within the rate limit.
    :param max_inline_wait: the longest rate-limit wait slept in the worker; a longer one
        (a daily quota) defers the task until the reset and resumes with the items left.
    :param audit_conn_id: a common-sql connection (SQLite, Postgres, ...) for the audit trail.
    :param audit_table: table for the audit rows; created if missing.
    :param report_item_limit: list items in the report only up to this many.
    :param report_failure_limit: list this many failures with their details (the rest are counted).
    """

    hook_class: ClassVar[type[OutreachHook]]
    action: ClassVar[str]
    item_field: ClassVar[str]
    item_kind: ClassVar[ItemKind]
    #: what the vendor's 404 names when an item is absent (see the hook's ``missing_object``)
    item_object: ClassVar[str | None] = None
    #: the parameter naming the campaign the items are addressed in, if any
    campaign_field: ClassVar[str | None] = None
    #: report reason for a 409 (None: a generic failure)
    conflict_reason: ClassVar[str | None] = None
    #: count a 409 as ``already_absent`` (the action can never be needed again)
    conflict_absent: bool = False
    #: send items in chunks of this many, one request per chunk (``apply`` gets a list)
    batch_size: int | None = None

    @property
    def report_kinds(self) -> tuple[str, ...]:
        """Outcomes the report counts even at zero."""
        from airflow_provider_outreach.bulk.report import ACTION_OUTCOMES

        return ACTION_OUTCOMES

    ui_color = "#fde9e7"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = tuple(getattr(cls, "template_fields", ()))
        if "max_inline_wait" not in fields:  # a run may set it, e.g. from its conf
            cls.template_fields = (*fields, "max_inline_wait")

    def __init__(
        self,
        *,
        missing_ok: bool = True,
        dry_run: bool = False,
        fail_on_error: bool = True,
        max_workers: int = 8,
        max_inline_wait: float | str = 60.0,
        audit_conn_id: str | None = None,
        audit_table: str | None = None,
        report_item_limit: int = 1000,
        report_failure_limit: int = 100,
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
        self.report_item_limit = report_item_limit
        self.report_failure_limit = report_failure_limit

    # -- what a subclass provides --------------------------------------------------------------

    def before_items(self, hook: Any) -> None:
        """Reads the items share, made once after the preflight (none by default)."""

    def apply(self, hook: Any, item: Any) -> Any:
        """Send the request for one item (a list of items when :attr:`batch_size` is set)."""
        raise NotImplementedError

    # -- execution -----------------------------------------------------------------------------

    @property
    def inline_wait(self) -> float:
        """``max_inline_wait`` as rendered, in seconds."""
        from airflow_provider_outreach.core.retry import inline_wait_seconds

        return inline_wait_seconds(self.max_inline_wait)

    @property
    def conn_id(self) -> str:
        return getattr(self, self.hook_class.conn_name_attr)

    def get_hook(self) -> OutreachHook:
        return self.hook_class(self.conn_id, max_inline_wait=self.inline_wait, pool_size=max(64, self.max_workers))

    def policy(self) -> BulkPolicy:
        from airflow_provider_outreach.bulk.engine import BulkPolicy

        return BulkPolicy(
            max_workers=self.max_workers,
            max_inline_wait=self.inline_wait,
            missing_ok=self.missing_ok,
            item_object=self.item_object,
            campaign_scoped=self.campaign_field is not None,
            conflict_reason=self.conflict_reason,
            conflict_absent=self.conflict_absent,
            batch_size=self.batch_size,
        )

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_outreach.audit import check_table_name
        from airflow_provider_outreach.bulk.items import flatten_items, prepare
        from airflow_provider_outreach.bulk.report import Report
        from airflow_provider_outreach.core.paths import encode_path_param

        campaign_id = None
        if self.campaign_field:
            campaign_id = getattr(self, self.campaign_field)
            encode_path_param(self.campaign_field, campaign_id)
        if self.audit_table is not None:
            check_table_name(self.audit_table)
        _ = self.inline_wait  # a rendered max_inline_wait that is no number is refused here
        report = Report(
            vendor=self.hook_class.vendor, action=self.action, dry_run=self.dry_run, kinds=self.report_kinds
        )
        todo = prepare(flatten_items(getattr(self, self.item_field), self.item_field), self.item_kind, report)
        self.log.info(
            "%s %s: %d items (%d duplicates dropped, %d invalid)",
            report.vendor,
            self.action,
            len(todo) + len(report.results),
            report.duplicates,
            len(report.results),
        )
        hook = self.get_hook()
        try:
            self.log.info("preflight: %s", self._preflight(hook, campaign_id))
            if not self.dry_run:
                self.before_items(hook)
        except RateLimitError as exc:  # another task of the key spent the quota: wait on the triggerer too
            from airflow_provider_outreach.core.retry import Action, decide

            if decide(exc, self.inline_wait).action is not Action.DEFER:
                raise
            self._defer(context, exc.retry_after or 0.0, f"{exc}; nothing sent yet")
        ledger = self._ledger(context, report, todo)
        wanted = {*report.results, *todo}
        earlier = {item: result for item, result in ledger.earlier().items() if item in wanted}
        if earlier:
            for item, result in earlier.items():
                if item in report.results:
                    continue
                report.results[item] = result
            todo = [item for item in todo if item not in earlier]
            self.log.info(
                "%d items have a final outcome already (an earlier try, or before a quota wait); %d left to send",
                len(earlier),
                len(todo),
            )
        for item, result in list(report.results.items()):
            if item not in earlier:
                ledger.record(item, result, _now())  # invalid items: recorded once, never sent
        if self.dry_run:
            from airflow_provider_outreach.bulk.report import WOULD_DO

            for item in todo:
                report.record(item, WOULD_DO)
            return self._finish(context, report, ledger, stop=None)
        return self._run(context, hook, report, ledger, todo)

    def execute_resume(
        self, context: Any, event: Any = None, carried_state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Continue after a quota wait: the ledger says which items are finished (below
        Airflow 3.3 without an audit table, the progress the deferral carried)."""
        from airflow_provider_outreach.core.task_state import restore_carried_state

        self.log.info("Resuming %s after the rate-limit reset", self.action)
        restore_carried_state(self, context, carried_state, required=not (self.audit_conn_id or self.dry_run))
        return self.execute(context)

    def _preflight(self, hook: OutreachHook, campaign_id: str | None) -> str:
        from airflow.providers.common.compat.sdk import AirflowFailException

        from airflow_provider_outreach.exceptions import PreflightError

        try:
            return hook.preflight(campaign_id)
        except PreflightError as exc:
            raise AirflowFailException(f"{self.task_id}: nothing was sent: {exc}") from None

    def _ledger(self, context: Any, report: Report, todo: list[str]) -> Ledger:
        from airflow_provider_outreach.bulk.ledger import AuditLedger, Ledger, StateStoreLedger
        from airflow_provider_outreach.core.task_state import task_state_store

        if self.dry_run:
            return Ledger()
        if self.audit_conn_id:
            from airflow_provider_outreach.audit import AuditTrail, TaskScope

            audit = AuditTrail(
                self.audit_conn_id,
                self.audit_table,
                TaskScope.from_context(context, self.task_id),
                report.vendor,
                self.action,
            )
            audit.ensure_table()
            return AuditLedger(audit)
        return StateStoreLedger(task_state_store(self, context), [*report.results, *todo])

    def _run(self, context: Any, hook: OutreachHook, report: Report, ledger: Ledger, todo: list[str]) -> dict[str, Any]:
        from airflow_provider_outreach.bulk.engine import run_bulk

        result = run_bulk(todo, lambda item: self.apply(hook, item), report, self.policy(), ledger, logger=self.log)
        if result.quota is None:
            return self._finish(context, report, ledger, stop=result.stop)
        quota = result.quota
        self._defer(
            context,
            quota.retry_after,
            f"{quota.error}; {len(report.results)} items finished, {len(quota.pending)} left",
        )

    def _defer(self, context: Any, retry_after: float, why: str) -> None:
        """Wait for the quota's reset on the triggerer, then :meth:`execute_resume`."""
        from datetime import timedelta

        import pendulum
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        from airflow_provider_outreach.core.task_state import deferral_kwargs

        resume_at = pendulum.now("UTC") + timedelta(seconds=retry_after + 1)
        self.log.warning("%s: deferring until %s instead of holding a worker slot", why, resume_at.isoformat())
        self.defer(
            trigger=DateTimeTrigger(moment=resume_at),
            method_name="execute_resume",
            kwargs=deferral_kwargs(self, context),
        )

    def _finish(self, context: Any, report: Report, ledger: Ledger, stop: Any) -> dict[str, Any]:
        from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

        result = report.to_dict(item_limit=self.report_item_limit, failure_limit=self.report_failure_limit)
        self.log.info(report.summary())
        failures = result["failures"]
        for failure in failures[:_LOGGED_FAILURES]:
            self.log.warning("failed: %s: %s", failure["item"], failure["message"])
        failed = report.failed
        if failed > _LOGGED_FAILURES:
            self.log.warning("... and %d more failures (see the report)", failed - _LOGGED_FAILURES)
        final = report.all_failures_final()
        if stop is None and not (failed and self.fail_on_error):
            ledger.finish()
            return result
        if stop.final if stop is not None else final:
            ledger.finish()  # the task ends for good; a retry would need the progress
        context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=result)
        if stop is not None:
            message = f"stopped: {stop.cause} ({report.summary()})"
            raise (AirflowFailException if stop.final else AirflowException)(message)
        item, reason = report.first_failure() or ("?", None)
        message = (
            f"{failed} of {len(report.results)} items failed ({report.summary()}); "
            f"first: {item}: {reason}. The report is in XCom key {REPORT_XCOM_KEY!r}."
        )
        if final:
            raise AirflowFailException(message + " No retry can help: every failure is permanent.")
        raise AirflowException(message)


class OutreachCheckOperator(OutreachBulkOperator):
    """Read back, for each item, whether its opt-out is honoured in the tool today.

    Same conventions as the bulk operators (lists of items, templated, paced, concurrent,
    preflight, audit rows with action ``check``, bounded report); the outcomes are
    ``honoured``, ``not_honoured`` and ``failed`` (could not check). The task fails,
    without Airflow retries, when any item is ``not_honoured``, unless
    ``fail_on_not_honoured=False``.

    :param fail_on_not_honoured: fail the task when an opt-out is not honoured.
    """

    action = "check"

    @property
    def report_kinds(self) -> tuple[str, ...]:
        from airflow_provider_outreach.bulk.report import CHECK_OUTCOMES

        return CHECK_OUTCOMES

    def __init__(self, *, fail_on_not_honoured: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fail_on_not_honoured = fail_on_not_honoured

    def honoured(self, hook: Any, item: str) -> bool:
        """Whether the tool honours the opt-out of ``item`` (raise when it cannot tell)."""
        raise NotImplementedError

    def apply(self, hook: Any, item: str) -> bool:
        return self.honoured(hook, item)

    def policy(self) -> BulkPolicy:
        from dataclasses import replace

        from airflow_provider_outreach.bulk.report import HONOURED, NOT_HONOURED

        return replace(super().policy(), outcome_of=lambda ok: HONOURED if ok else NOT_HONOURED)

    def _finish(self, context: Any, report: Report, ledger: Ledger, stop: Any) -> dict[str, Any]:
        result = super()._finish(context, report, ledger, stop)
        not_honoured = result["counts"].get("not_honoured", 0)
        if not_honoured and self.fail_on_not_honoured:
            from airflow.providers.common.compat.sdk import AirflowFailException

            context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=result)
            shown = ", ".join(result.get("items", {}).get("not_honoured", [])[:10])
            raise AirflowFailException(
                f"{not_honoured} of {len(report.results)} opt-outs are not honoured in {report.vendor}"
                + (f": {shown}" if shown else "")
                + f". The report is in XCom key {REPORT_XCOM_KEY!r}."
            )
        return result


def _now() -> str:
    import pendulum

    return pendulum.now("UTC").isoformat()
