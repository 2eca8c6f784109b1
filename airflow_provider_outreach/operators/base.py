"""Shared base of every outreach operator: the Airflow glue around the bulk engine.

An operator class says what it does in one :class:`ActionSpec` (its vendor's hook, the
action, its items and how the engine reads the vendor's answers) and passes it, with the
items, the campaign and the connection id, to :class:`OutreachBulkOperator`; it writes
only :meth:`~OutreachBulkOperator.apply` (and, when the items share a read,
:meth:`~OutreachBulkOperator.before_items`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_outreach.bulk.items import ItemKind
from airflow_provider_outreach.core.clock import utc_now_iso
from airflow_provider_outreach.core.task_state import task_state_store
from airflow_provider_outreach.exceptions import RateLimitError
from airflow_provider_outreach.hooks.base import OutreachHook
from airflow_provider_outreach.version_compat import BaseOperator

if TYPE_CHECKING:
    from airflow_provider_outreach.audit import AuditTrail
    from airflow_provider_outreach.bulk.ledger import Ledger
    from airflow_provider_outreach.bulk.policy import BulkPolicy
    from airflow_provider_outreach.bulk.report import Report

__all__ = ["REPORT_XCOM_KEY", "ActionSpec", "OutreachBulkOperator", "OutreachCheckOperator", "ParameterAlias"]

#: the XCom key of the report when the task fails (its return value is then lost)
REPORT_XCOM_KEY = "report"
_LOGGED_FAILURES = 20


@dataclass(frozen=True)
class ActionSpec:
    """What an operator does, declared once (light: a class declares it when its module is
    imported; the engine's :class:`~airflow_provider_outreach.bulk.policy.BulkPolicy` is
    built from it when a task runs).

    :param hook_class: the vendor's hook.
    :param action: the action's name in reports and audit rows (``check`` for a read-back).
    :param item_name: the operator's parameter that holds the items (named in errors).
    :param item_kind: how items are validated and compared.
    :param item_object: what the vendor's 404 names when an item is absent (the hook's
        ``missing_object``: ``"lead"``, ``"enrollment"``...).
    :param conflict_reason: the report reason of the vendor's 409 for an item.
    :param conflict_absent: that 409 means the action can never be needed: ``already_absent``.
    :param batch_size: send items in chunks of up to this many, one request each.
    :param check: a read-back check: outcomes ``honoured`` / ``not_honoured``.
    """

    hook_class: type[OutreachHook]
    action: str
    item_name: str
    item_kind: ItemKind
    item_object: str | None = None
    conflict_reason: str | None = None
    conflict_absent: bool = False
    batch_size: int | None = None
    check: bool = False

    def policy(self, **settings: Any) -> BulkPolicy:
        """The engine's policy for this action, with a run's ``settings``."""
        from airflow_provider_outreach.bulk.policy import BulkPolicy
        from airflow_provider_outreach.bulk.report import honoured_or_not

        return BulkPolicy(
            item_object=self.item_object,
            conflict_reason=self.conflict_reason,
            conflict_absent=self.conflict_absent,
            batch_size=self.batch_size,
            outcome_of=honoured_or_not if self.check else None,
            **settings,
        )


class ParameterAlias:
    """An attribute of the base (``items``, ``campaign``, ``conn_id``) under the name of a
    subclass's own parameter (``contact_id``, ``campaign_id``, ``leadlex_conn_id``): templating, the UI's rendered fields and
    ``operator.contact_id`` use the name the user wrote."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __get__(self, operator: Any, owner: Any = None) -> Any:
        return self if operator is None else getattr(operator, self.target)

    def __set__(self, operator: Any, value: Any) -> None:
        setattr(operator, self.target, value)


class OutreachBulkOperator(BaseOperator):
    """Apply one vendor action to each item of a list and report every item's outcome.

    Before the first item one read proves the connection reaches the vendor's API with a
    working key (the campaign, or the vendor's probe), also in a dry run. Items then run
    concurrently, paced to the rate limit; each gets exactly one outcome: ``done``,
    ``already_absent`` (only when the vendor's answer says the item itself is absent),
    ``failed`` (with status, vendor code, reason and message), ``not_attempted`` (the run
    stopped first), ``done_earlier`` (with ``skip_proven``) or ``would_do`` in a dry run.
    The run stops, and the task fails, when going on cannot help: the key is refused, the
    campaign is gone, answers make no sense, the API is down, or the audit trail cannot be
    written.

    Progress is recorded as the run goes (in the audit table when one is set, else in the
    task state store), so a retry or a resume after a quota wait sends only the items with
    no final outcome yet and reports the earlier outcomes too. The operator returns (XCom)
    a report, bounded whatever the number of items::

        {"vendor", "action", "dry_run", "counts": {outcome: n},
         "items": {outcome: [item, ...]} (up to report_item_limit items; else "items_omitted": n),
         "failures": [{"item", "status", "code", "reason", "message"}] (the first report_failure_limit),
         "duplicates": n}

    A subclass passes ``spec``, ``items``, ``conn_id`` and (for an action on items inside
    one campaign) ``campaign``; the options below are the user's.

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
    :param skip_proven: send only the items the audit table does not already prove done: an
        item any earlier run recorded as ``done`` or ``already_absent`` (for the same vendor,
        action and campaign) is reported ``done_earlier`` and not sent again, unless a later
        read-back check found it ``not_honoured``. So a run over every opt-out ever recorded
        sends only the new ones (and what a check found undone), and the first run catches up
        on all of them. Needs ``audit_conn_id`` and ``audit_table``; a check refuses it.
    :param report_item_limit: list items in the report only up to this many.
    :param report_failure_limit: list this many failures with their details (the rest are counted).
    :param fail_on_not_honoured: a check's: fail the task when an opt-out is not honoured.
    """

    template_fields = ("items", "campaign", "conn_id", "max_inline_wait")
    ui_color = "#fde9e7"

    def __init__(
        self,
        *,
        spec: ActionSpec,
        items: Any,
        conn_id: str,
        campaign: str | None = None,
        missing_ok: bool = True,
        dry_run: bool = False,
        fail_on_error: bool = True,
        max_workers: int = 8,
        max_inline_wait: float | str = 60.0,
        audit_conn_id: str | None = None,
        audit_table: str | None = None,
        skip_proven: bool = False,
        report_item_limit: int = 1000,
        report_failure_limit: int = 100,
        fail_on_not_honoured: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_workers < 1:
            raise ValueError(f"{self.task_id}: max_workers must be at least 1")
        if (audit_conn_id is None) != (audit_table is None):
            raise ValueError(f"{self.task_id}: audit_conn_id and audit_table go together")
        if skip_proven and spec.check:
            raise ValueError(f"{self.task_id}: a check reads every item back; skip_proven does not apply")
        if skip_proven and audit_conn_id is None:
            raise ValueError(f"{self.task_id}: skip_proven reads the proof in the audit table: set audit_conn_id")
        self.spec = spec
        self.items = items
        self.conn_id = conn_id
        self.campaign = campaign
        self.missing_ok = missing_ok
        self.dry_run = dry_run
        self.fail_on_error = fail_on_error
        self.max_workers = max_workers
        self.max_inline_wait = max_inline_wait
        self.audit_conn_id = audit_conn_id
        self.audit_table = audit_table
        self.skip_proven = skip_proven
        self.report_item_limit = report_item_limit
        self.report_failure_limit = report_failure_limit
        self.fail_on_not_honoured = fail_on_not_honoured

    # -- what a subclass provides --------------------------------------------------------------

    def before_items(self, hook: Any) -> None:
        """Reads the items share, made once before the first item (none by default)."""

    def apply(self, hook: Any, item: Any) -> Any:
        """Send the request for one item (a list of items when the spec sends chunks)."""
        raise NotImplementedError

    # -- execution -----------------------------------------------------------------------------

    @property
    def inline_wait(self) -> float:
        """``max_inline_wait`` as rendered, in seconds."""
        from airflow_provider_outreach.core.retry import inline_wait_seconds

        return inline_wait_seconds(self.max_inline_wait)

    def get_hook(self) -> OutreachHook:
        return self.spec.hook_class(self.conn_id, max_inline_wait=self.inline_wait, pool_size=max(64, self.max_workers))

    def policy(self) -> BulkPolicy:
        """The spec's reading of answers, with this run's settings."""
        return self.spec.policy(
            max_workers=self.max_workers,
            max_inline_wait=self.inline_wait,
            missing_ok=self.missing_ok,
            campaign_scoped=self.campaign is not None,
        )

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_outreach.audit import check_table_name
        from airflow_provider_outreach.bulk.items import flatten_items, prepare
        from airflow_provider_outreach.bulk.report import ACTION_OUTCOMES, CHECK_OUTCOMES, Report
        from airflow_provider_outreach.core.paths import encode_path_param

        spec = self.spec
        if self.campaign is not None:
            encode_path_param("campaign_id", self.campaign)
        if self.audit_table is not None:
            check_table_name(self.audit_table)
        _ = self.inline_wait  # a rendered max_inline_wait that is no number is refused here
        report = Report(
            vendor=spec.hook_class.vendor,
            action=spec.action,
            dry_run=self.dry_run,
            kinds=CHECK_OUTCOMES if spec.check else ACTION_OUTCOMES,
        )
        todo = prepare(flatten_items(self.items, spec.item_name), spec.item_kind, report)
        self.log.info(
            "%s %s: %d items (%d duplicates dropped, %d invalid)",
            report.vendor,
            spec.action,
            len(todo) + len(report.results),
            report.duplicates,
            len(report.results),
        )
        hook = self.get_hook()
        try:
            self.log.info("preflight: %s", self._preflight(hook))
        except RateLimitError as exc:  # another task of the key spent the quota: wait on the triggerer too
            self._defer_for(context, exc, "nothing sent yet")
        ledger = self._ledger(context, report, todo)
        todo = self._resume(report, ledger, todo)
        if self.skip_proven:
            todo = self._skip_proven(context, report, todo)
        if self.dry_run:
            from airflow_provider_outreach.bulk.report import WOULD_DO

            for item in todo:
                report.record(item, WOULD_DO)
            return self._finish(context, report, ledger, stop=None)
        if todo:
            try:
                self.before_items(hook)
            except RateLimitError as exc:
                ledger.flush()
                self._defer_for(context, exc, "nothing sent yet")
            except Exception as exc:  # what every item needs could not be read: none can be done
                return self._fail_all(context, report, ledger, todo, exc)
        return self._run(context, hook, report, ledger, todo)

    def execute_resume(
        self, context: Any, event: Any = None, carried_state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Continue after a quota wait: the ledger says which items are finished (below
        Airflow 3.3 without an audit table, the progress the deferral carried)."""
        from airflow_provider_outreach.core.task_state import restore_carried_state

        self.log.info("Resuming %s after the rate-limit reset", self.spec.action)
        restore_carried_state(self, context, carried_state, required=not (self.audit_conn_id or self.dry_run))
        return self.execute(context)

    def _preflight(self, hook: OutreachHook) -> str:
        from airflow.providers.common.compat.sdk import AirflowFailException

        from airflow_provider_outreach.exceptions import PreflightError

        try:
            return hook.preflight(self.campaign)
        except PreflightError as exc:
            raise AirflowFailException(f"{self.task_id}: nothing was sent: {exc}") from None

    def _resume(self, report: Report, ledger: Ledger, todo: list[str]) -> list[str]:
        """Report what earlier tries (or this try before a quota wait) finished; record the
        invalid items once; the items left to send."""
        wanted = {*report.results, *todo}
        earlier = {item: result for item, result in ledger.earlier().items() if item in wanted}
        for item, result in list(report.results.items()):
            if item not in earlier:
                ledger.record(item, result, utc_now_iso())  # invalid items: recorded once, never sent
        if not earlier:
            return todo
        for item, result in earlier.items():
            report.results.setdefault(item, result)
        left = [item for item in todo if item not in earlier]
        self.log.info(
            "%d items have a final outcome already (an earlier try, or before a quota wait); %d left to send",
            len(earlier),
            len(left),
        )
        return left

    def _audit(self, context: Any, report: Report) -> AuditTrail:
        from airflow_provider_outreach.audit import AuditTrail, TaskScope

        return AuditTrail(
            self.audit_conn_id,
            self.audit_table,
            TaskScope.from_context(context, self.task_id),
            report.vendor,
            self.spec.action,
            self.campaign,
        )

    def _skip_proven(self, context: Any, report: Report, todo: list[str]) -> list[str]:
        """Report the items an earlier run proved done as ``done_earlier``; the others are left to send."""
        from airflow_provider_outreach.bulk.report import DONE_EARLIER, NOT_HONOURED, PROOF_OUTCOMES

        audit = self._audit(context, report)
        audit.ensure_table()
        # a later read-back that found the item not honoured (say, re-added by an import) voids the proof
        proven = audit.proven_items(PROOF_OUTCOMES, contradiction=(OutreachCheckOperator.ACTION, NOT_HONOURED))
        key = self.spec.item_kind.key
        proven_keys = {key(item) for item in proven}
        left = []
        for item in todo:
            if key(item) in proven_keys:
                report.record(item, DONE_EARLIER)
            else:
                left.append(item)
        self.log.info(
            "%d items proven done by earlier runs are not sent again; %d to send", len(todo) - len(left), len(left)
        )
        return left

    def _ledger(self, context: Any, report: Report, todo: list[str]) -> Ledger:
        from airflow_provider_outreach.bulk.ledger import AuditLedger, Ledger, StateStoreLedger

        if self.dry_run:
            return Ledger()
        if self.audit_conn_id:
            audit = self._audit(context, report)
            audit.ensure_table()
            return AuditLedger(audit)
        return StateStoreLedger(task_state_store(self, context), [*report.results, *todo])

    def _run(self, context: Any, hook: OutreachHook, report: Report, ledger: Ledger, todo: list[str]) -> dict[str, Any]:
        from airflow_provider_outreach.bulk.engine import run_bulk

        result = run_bulk(todo, lambda item: self.apply(hook, item), report, self.policy(), ledger, logger=self.log)
        if result.quota is None:
            return self._finish(context, report, ledger, stop=result.stop)
        quota = result.quota
        why = f"{quota.error}; {len(report.results)} items finished, {len(quota.pending)} left"
        self._defer(context, quota.retry_after, why)

    def _defer_for(self, context: Any, exc: RateLimitError, why: str) -> None:
        """Defer until the quota's reset when the wait is longer than the worker sleeps; else re-raise."""
        from airflow_provider_outreach.core.retry import Action, decide

        if decide(exc, self.inline_wait).action is not Action.DEFER:
            raise exc
        self._defer(context, exc.retry_after or 0.0, f"{exc}; {why}")

    def _defer(self, context: Any, retry_after: float, why: str) -> None:
        """Wait for the quota's reset on the triggerer, then :meth:`execute_resume`."""
        from airflow_provider_outreach.core.deferral import defer_until_reset

        defer_until_reset(self, context, retry_after, why)

    def _fail_all(self, context: Any, report: Report, ledger: Ledger, todo: list[str], exc: Exception) -> Any:
        """Every item ``failed`` with the reason the shared read gave, recorded, reported; the task fails."""
        from airflow_provider_outreach.bulk.report import FAILED

        outcome, details = self.policy().classify(exc)
        if outcome != FAILED:  # an answer that would prove an item absent proves nothing for all of them
            details = {"message": str(exc), "reason": type(exc).__name__, "retryable": True}
        self.log.error("%s: no item can be done: %s", self.spec.action, exc)
        at = utc_now_iso()
        for item in todo:
            ledger.record(item, report.record(item, FAILED, **details), at)
        ledger.flush()
        return self._finish(context, report, ledger, stop=None)

    def _finish(self, context: Any, report: Report, ledger: Ledger, stop: Any) -> dict[str, Any]:
        """Act on the end of the run, as :func:`~airflow_provider_outreach.bulk.ending.end_of_run` decides it."""
        from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

        from airflow_provider_outreach.bulk.ending import End, end_of_run

        result = report.to_dict(item_limit=self.report_item_limit, failure_limit=self.report_failure_limit)
        self.log.info(report.summary())
        for failure in result["failures"][:_LOGGED_FAILURES]:
            self.log.warning("failed: %s: %s", failure["item"], failure["message"])
        if report.failed > _LOGGED_FAILURES:
            self.log.warning("... and %d more failures (see the report)", report.failed - _LOGGED_FAILURES)
        ending = end_of_run(
            report,
            stop,
            fail_on_error=self.fail_on_error,
            fail_on_not_honoured=self.fail_on_not_honoured,
            report_key=REPORT_XCOM_KEY,
        )
        if ending.final:
            ledger.finish()  # the task ends for good; only a retry would need the progress
        if ending.end is End.SUCCESS:
            return result
        context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=result)
        raise (AirflowFailException if ending.end is End.FAIL else AirflowException)(ending.message)


class OutreachCheckOperator(OutreachBulkOperator):
    """Read back, for each item, whether its opt-out is honoured in the tool today.

    Same conventions as the bulk operators (lists of items, templated, paced, concurrent,
    preflight, audit rows with action ``check``, bounded report); the outcomes are
    ``honoured``, ``not_honoured`` and ``failed`` (could not check). The task fails,
    without Airflow retries, when any item is ``not_honoured``, unless
    ``fail_on_not_honoured=False``.

    :param fail_on_not_honoured: fail the task when an opt-out is not honoured.
    """

    #: the action of every check's report and audit rows
    ACTION = "check"

    def __init__(self, *, fail_on_not_honoured: bool = True, **kwargs: Any) -> None:
        super().__init__(fail_on_not_honoured=fail_on_not_honoured, **kwargs)

    def honoured(self, hook: Any, item: str) -> bool:
        """Whether the tool honours the opt-out of ``item`` (raise when it cannot tell)."""
        raise NotImplementedError

    def apply(self, hook: Any, item: str) -> bool:
        return self.honoured(hook, item)

    @staticmethod
    def spec_for(hook_class: type[OutreachHook], item_name: str, item_kind: ItemKind) -> ActionSpec:
        """The spec of a check of ``item_name`` items in ``hook_class``'s tool."""
        return ActionSpec(hook_class, OutreachCheckOperator.ACTION, item_name, item_kind, check=True)
