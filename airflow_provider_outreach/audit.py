"""Audit trail: one row per item and outcome, written to any common-sql connection."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_outreach.exceptions import InvalidInputError

AUDIT_COLUMNS = (
    "vendor",
    "action",
    "item",
    "outcome",
    "status",
    "message",
    "recorded_at",
    "dag_id",
    "run_id",
    "task_id",
)
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
BATCH_SIZE = 500


def check_table_name(table: str) -> None:
    """A plain (optionally schema-qualified) identifier; anything else is refused."""
    if not isinstance(table, str) or not _TABLE_NAME.match(table):
        raise InvalidInputError(f"audit_table {table!r} must be a plain table name such as outreach_audit or schema.table")


def create_table_sql(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ("
        "vendor VARCHAR(32) NOT NULL, action VARCHAR(64) NOT NULL, item VARCHAR(2048) NOT NULL, "
        "outcome VARCHAR(32) NOT NULL, status INTEGER, message VARCHAR(4000), recorded_at VARCHAR(40) NOT NULL, "
        "dag_id VARCHAR(250), run_id VARCHAR(250), task_id VARCHAR(250))"
    )


def write_audit_rows(conn_id: str, table: str, rows: Sequence[Sequence[Any]]) -> int:
    """Create ``table`` if missing and insert ``rows`` (in :data:`AUDIT_COLUMNS` order) in batches."""
    check_table_name(table)
    if not rows:
        return 0
    hook = BaseHook.get_hook(conn_id)
    hook.run(create_table_sql(table))
    hook.insert_rows(table, rows, target_fields=list(AUDIT_COLUMNS), commit_every=BATCH_SIZE)
    return len(rows)
