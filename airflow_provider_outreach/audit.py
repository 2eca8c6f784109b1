"""Audit trail: one row per item and outcome, in any common-sql database.

The table is the evidence that each opt-out was honoured, and the ledger a retry resumes
from: every row names the task instance (dag, run, task, map index, try) that wrote it
and the time of its own call. Values longer than a column are cut to fit, never refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow_provider_outreach.exceptions import InvalidInputError

T = TypeVar("T")

#: column -> (SQL type, width of a VARCHAR or None)
COLUMNS: dict[str, tuple[str, int | None]] = {
    "vendor": ("VARCHAR(32) NOT NULL", 32),
    "action": ("VARCHAR(64) NOT NULL", 64),
    "item": ("VARCHAR(2048) NOT NULL", 2048),
    #: the campaign the item was addressed in, for campaign-scoped actions
    "campaign_id": ("VARCHAR(255)", 255),
    "outcome": ("VARCHAR(32) NOT NULL", 32),
    "status": ("INTEGER", None),
    "code": ("VARCHAR(128)", 128),
    "reason": ("VARCHAR(64)", 64),
    "message": ("VARCHAR(4000)", 4000),
    #: 1: a failure a later try of the task may cure (it sends the item again); 0: a final one
    "retryable": ("INTEGER", None),
    "recorded_at": ("VARCHAR(40) NOT NULL", 40),
    "dag_id": ("VARCHAR(250)", 250),
    "run_id": ("VARCHAR(250)", 250),
    "task_id": ("VARCHAR(250)", 250),
    "map_index": ("INTEGER", None),
    "try_number": ("INTEGER", None),
}
AUDIT_COLUMNS = tuple(COLUMNS)
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


#: tries of one transaction (or table change) that another task's concurrent one made fail
CONFLICT_ATTEMPTS = 3


def is_integrity_error(exc: BaseException) -> bool:
    """Whether a driver's error is a constraint violation (PEP 249 ``IntegrityError``, any driver)."""
    return any(cls.__name__ == "IntegrityError" for cls in type(exc).__mro__)


def retry_on_conflict(work: Callable[[], T], conflict: Callable[[BaseException], bool] = is_integrity_error) -> T:
    """Run ``work`` (one transaction) again when ``conflict`` says another task's concurrent
    work made it fail (by default: it violated a key). The transaction was rolled back, and
    the next try sees what the other task committed."""
    attempt = 1
    while True:
        try:
            return work()
        except Exception as exc:
            if attempt >= CONFLICT_ATTEMPTS or not conflict(exc):
                raise
            attempt += 1


def check_table_name(table: str, what: str = "audit_table") -> None:
    """A plain (optionally schema-qualified) identifier; anything else is refused."""
    if not isinstance(table, str) or not _TABLE_NAME.match(table):
        raise InvalidInputError(f"{what} {table!r} must be a plain table name such as outreach_audit or schema.table")


def create_table_sql(table: str) -> str:
    return f"CREATE TABLE IF NOT EXISTS {table} (" + ", ".join(f"{c} {t}" for c, (t, _) in COLUMNS.items()) + ")"


def fit(value: Any, width: int | None) -> Any:
    """``value`` cut to ``width`` characters (with a trailing ``…``) when it is longer, and
    storable anywhere: a NUL (PostgreSQL refuses it) or a lone surrogate (no encoding takes
    it) becomes U+FFFD."""
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    value = value.replace("\x00", "\ufffd")
    if width is None or len(value) <= width:
        return value
    return value[: width - 1] + "…"


@dataclass(frozen=True)
class TaskScope:
    """The task instance whose rows these are."""

    dag_id: str | None
    run_id: str | None
    task_id: str | None
    map_index: int = -1
    try_number: int | None = None

    @classmethod
    def from_context(cls, context: Any, task_id: str) -> TaskScope:
        ti = context.get("ti") if hasattr(context, "get") else None
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=getattr(ti, "dag_id", None),
            run_id=getattr(ti, "run_id", None),
            task_id=task_id,
            map_index=-1 if map_index is None else int(map_index),
            try_number=getattr(ti, "try_number", None),
        )


class AuditTrail:
    """The audit table of one operator run: created if missing, rows written as they come.

    :param conn_id: any common-sql connection (SQLite, PostgreSQL, Snowflake, ...).
    """

    def __init__(
        self, conn_id: str, table: str, scope: TaskScope, vendor: str, action: str, campaign_id: str | None = None
    ) -> None:
        check_table_name(table)
        self.conn_id = conn_id
        self.table = table
        self.scope = scope
        self.vendor = vendor
        self.action = action
        self.campaign_id = campaign_id
        self._hook: Any = None

    @property
    def hook(self) -> Any:
        if self._hook is None:
            from airflow.providers.common.compat.sdk import BaseHook

            self._hook = BaseHook.get_hook(self.conn_id)
        return self._hook

    def ensure_table(self) -> None:
        """Create the table if missing; add the columns an older table lacks. Tasks doing so
        at once all go on: the step is tried again whatever the error, as each database words
        the race its own way (a key violation in PostgreSQL's catalog, a column another task
        just added)."""
        retry_on_conflict(self._ensure_table, conflict=lambda exc: True)

    def _ensure_table(self) -> None:
        self.hook.run(create_table_sql(self.table))
        present = self.hook.run(
            f"SELECT * FROM {self.table} WHERE 1 = 0", handler=lambda cursor: [d[0].lower() for d in cursor.description]
        )
        for column, (sql_type, _) in COLUMNS.items():
            if present is not None and column not in present:
                self.hook.run(f"ALTER TABLE {self.table} ADD COLUMN {column} {sql_type.replace(' NOT NULL', '')}")

    def row(
        self,
        item: str,
        outcome: str,
        at: str,
        status: int | None = None,
        code: str | None = None,
        reason: str | None = None,
        message: str | None = None,
        retryable: bool | None = None,
    ) -> tuple:
        s = self.scope
        values = (
            self.vendor,
            self.action,
            item,
            self.campaign_id,
            outcome,
            status,
            code,
            reason,
            message,
            None if retryable is None else int(retryable),
            at,
            s.dag_id,
            s.run_id,
            s.task_id,
            s.map_index,
            s.try_number,
        )
        return tuple(fit(v, width) for v, (_, width) in zip(values, COLUMNS.values(), strict=True))

    def write(self, rows: Sequence[Sequence[Any]]) -> int:
        """Insert ``rows`` (from :meth:`row`) in one transaction: all of them, or none when it fails."""
        if rows:
            self.hook.insert_rows(self.table, rows, target_fields=list(AUDIT_COLUMNS), commit_every=len(rows))
        return len(rows)

    def earlier_rows(self) -> Iterable[tuple]:
        """``(item, outcome, status, code, reason, message, retryable)`` of this task instance's
        earlier tries, oldest first (by try, then by call time: workers' clocks may differ)."""
        s = self.scope
        sql = (
            f"SELECT item, outcome, status, code, reason, message, retryable FROM {self.table} "
            "WHERE vendor = %s AND action = %s AND dag_id = %s AND run_id = %s AND task_id = %s AND map_index = %s "
            "ORDER BY try_number, recorded_at"
        )
        params = (self.vendor, self.action, s.dag_id, s.run_id, s.task_id, s.map_index)
        return self._records(sql, params)

    def proven_items(self, proof: Sequence[str], contradiction: tuple[str, str]) -> list[str]:
        """Items this vendor proved done for this action and campaign, in any run: a row
        with an outcome in ``proof`` that no later ``contradiction`` row (an ``(action,
        outcome)`` such as a read-back check's ``not_honoured``) for the same item and
        campaign contradicts. Rows written before the table had a ``campaign_id`` column
        prove nothing for a campaign-scoped action."""
        same_campaign = "{t}.campaign_id = %s" if self.campaign_id is not None else "{t}.campaign_id IS NULL"
        campaign = [self.campaign_id] if self.campaign_id is not None else []
        marks = ", ".join(["%s"] * len(proof))
        sql = (
            f"SELECT DISTINCT p.item FROM {self.table} p "
            f"WHERE p.vendor = %s AND p.action = %s AND p.outcome IN ({marks}) AND {same_campaign.format(t='p')} "
            f"AND NOT EXISTS (SELECT 1 FROM {self.table} c WHERE c.vendor = p.vendor AND c.item = p.item "
            f"AND c.action = %s AND c.outcome = %s AND {same_campaign.format(t='c')} AND c.recorded_at > p.recorded_at)"
        )
        params = (self.vendor, self.action, *proof, *campaign, *contradiction, *campaign)
        return [row[0] for row in self._records(sql, params)]

    def _records(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        """Rows of ``sql``, written with ``%s`` markers, in the driver's own marker."""
        placeholder = getattr(self.hook, "placeholder", "%s")
        return self.hook.get_records(sql.replace("%s", placeholder), parameters=tuple(params)) or []
