"""Copy lemlist's team-wide suppression list into a warehouse table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_outreach.audit import retry_on_conflict
from airflow_provider_outreach.core.clock import utc_now_iso
from airflow_provider_outreach.transfers import (
    cell,
    checked_table_name,
    create_table,
    insert_many,
    placeholders,
    sql_connection,
    sql_hook,
    transaction,
)
from airflow_provider_outreach.transfers.base import CopyProgress, ResumableCopyOperator, pause_or_raise

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

log = logging.getLogger(__name__)

#: task state store key of the progress kept while the task waits for a rate-limit reset
PROGRESS_KEY = "outreach_lemlist_unsubscribes_progress"
#: longest value stored: the longest key MySQL (InnoDB, utf8mb4) can index, and in bytes
#: what fits a PostgreSQL index entry
MAX_VALUE_LENGTH = 768
MAX_VALUE_BYTES = 2700
#: width of the source and created_at columns
TEXT_WIDTH = 64
SUPPRESSION_COLUMNS = ("value", "kind", "source", "created_at", "first_seen_at")


def suppression_table_sql(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ("
        f"value VARCHAR({MAX_VALUE_LENGTH}) NOT NULL PRIMARY KEY, kind VARCHAR(16) NOT NULL, "
        f"source VARCHAR({TEXT_WIDTH}), created_at VARCHAR({TEXT_WIDTH}), first_seen_at VARCHAR(40) NOT NULL)"
    )


def suppression_kind(value: str) -> str:
    """``email``, ``domain`` (``@example.com``) or ``other`` (LinkedIn URL, phone number, ...),
    by the operators' own reading of a suppression value."""
    from airflow_provider_outreach.bulk.items import unsubscribe_value_kind

    kind = unsubscribe_value_kind(value)
    return kind if kind in ("email", "domain") else "other"


def suppression_row(record: Any) -> tuple[str, str, Any, Any] | None:
    """``(value, kind, source, created_at)`` of a lemlist record; emails and domains lowercased,
    the other fields as text cut to their columns. ``None`` for a record with no storable
    value (none, or longer than the key column holds)."""
    value = record.get("value") if isinstance(record, dict) else None
    if not isinstance(value, str) or not value.strip():
        return None
    value = cell(value.strip(), None)
    if len(value) > MAX_VALUE_LENGTH or len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        return None
    kind = suppression_kind(value)
    if kind != "other":
        value = value.lower()
    return value, kind, cell(record.get("source"), TEXT_WIDTH), cell(record.get("createdAt"), TEXT_WIDTH)


def upsert_suppressions(conn: Any, hook: DbApiHook, table: str, records: Sequence[Any], now: str) -> tuple[int, int]:
    """Store one page of records in one transaction; returns ``(new, updated)``.

    Reads which values the table already holds, inserts the others and updates ``source``
    and ``created_at`` where lemlist changed them; ``first_seen_at`` of a stored value never
    changes. Plain SELECT/INSERT/UPDATE: the same on every SQL database. When another run
    inserts one of the values between the SELECT and the INSERT, the page is stored again.
    """
    rows: dict[str, tuple[str, str, Any, Any]] = {}
    skipped = 0
    for record in records:
        row = suppression_row(record)
        if row is None:
            skipped += 1
        else:
            rows[row[0]] = row
    if skipped:
        log.warning("%d lemlist records have no value the table can hold (none, or too long): not stored", skipped)
    if not rows:
        return 0, 0
    return retry_on_conflict(lambda: _upsert_page(conn, hook, table, rows, now))


def store_unsubscribes(sql_conn_id: str, table: str, records: Sequence[Any]) -> tuple[int, int]:
    """Record lemlist suppression records (an event trigger's, say) in ``table`` as the copy
    does (created if missing; ``first_seen_at`` now for a new value); ``(new, updated)``."""
    table = checked_table_name(table)
    hook = sql_hook(sql_conn_id)
    with sql_connection(hook) as conn:
        create_table(conn, suppression_table_sql(table))
        return upsert_suppressions(conn, hook, table, records, utc_now_iso())


def _upsert_page(conn: Any, hook: DbApiHook, table: str, rows: dict[str, tuple], now: str) -> tuple[int, int]:
    mark = hook.placeholder
    with transaction(conn) as cursor:
        cursor.execute(
            f"SELECT value, source, created_at FROM {table} WHERE value IN ({placeholders(hook, len(rows))})",
            list(rows),
        )
        stored = {value: (source, created_at) for value, source, created_at in cursor.fetchall()}
        new = [(*row, now) for value, row in rows.items() if value not in stored]
        changed = [
            (row[2], row[3], value)
            for value, row in rows.items()
            if value in stored and stored[value] != (row[2], row[3])
        ]
        if new:
            insert_many(
                cursor,
                f"INSERT INTO {table} ({', '.join(SUPPRESSION_COLUMNS)}) VALUES ({placeholders(hook, 5)})",
                new,
            )
        if changed:
            insert_many(
                cursor, f"UPDATE {table} SET source = {mark}, created_at = {mark} WHERE value = {mark}", changed
            )
    return len(new), len(changed)


@dataclass
class UnsubscribeCopyProgress(CopyProgress):
    """Where the copy of lemlist's list stands: the next offset and what was stored."""

    offset: int = 0
    records: int = 0
    new: int = 0
    updated: int = 0


class LemlistUnsubscribesToSqlOperator(ResumableCopyOperator[UnsubscribeCopyProgress]):
    """Copy lemlist's team-wide suppression list (emails, ``@domains``, LinkedIn URLs, phones) into a table.

    Pages ``GET /v2/unsubscribes/variables`` 100 records at a time and upserts each page in
    one transaction into ``table`` (created if missing) on any common-sql connection::

        value          VARCHAR(768) PRIMARY KEY  -- emails and @domains lowercased
        kind           VARCHAR(16)  -- email, domain or other
        source         VARCHAR(64)  -- lemlist's source: api, bounced, lead, user, abuse
        created_at     VARCHAR(64)  -- lemlist's createdAt, as given
        first_seen_at  VARCHAR(40)  -- UTC ISO time the value was first stored; kept by later runs

    Runs are idempotent; a value lifted in lemlist stays in the table. Two runs on one table
    at once do not fail each other: a page whose values the other run inserted meanwhile is
    stored again. Cost: one request per 100 records (plus one for the last, short page), paced
    to lemlist's rate limit. A rate-limit wait longer than ``max_inline_wait`` defers the task
    until the reset; it resumes at the page it stopped at.

    Returns (XCom) ``{"records", "new", "requests", "table"}``; the records stay out of XCom.

    :param sql_conn_id: common-sql connection of the warehouse.
    :param table: target table, ``name`` or ``schema.name``.
    :param lemlist_conn_id: the lemlist connection.
    :param max_inline_wait: longest rate-limit wait slept in the worker, in seconds (templated).
    """

    template_fields: Sequence[str] = ("sql_conn_id", "table", "lemlist_conn_id", "max_inline_wait")
    PROGRESS_KEY = PROGRESS_KEY
    PROGRESS = UnsubscribeCopyProgress

    def __init__(
        self, *, sql_conn_id: str, table: str, lemlist_conn_id: str = "lemlist_default", **kwargs: Any
    ) -> None:
        super().__init__(sql_conn_id=sql_conn_id, table=table, **kwargs)
        self.lemlist_conn_id = lemlist_conn_id

    def copy(self, progress: UnsubscribeCopyProgress) -> dict[str, Any]:
        from airflow_provider_outreach.hooks.lemlist import UNSUBSCRIBE_PAGE_MAX as PAGE_SIZE
        from airflow_provider_outreach.hooks.lemlist import LemlistHook

        table = checked_table_name(self.table)
        lemlist = LemlistHook(self.lemlist_conn_id, max_inline_wait=self.inline_wait)
        hook = sql_hook(self.sql_conn_id)
        with sql_connection(hook) as conn:
            create_table(conn, suppression_table_sql(table))
            while True:
                try:
                    page = lemlist.list_unsubscribes(offset=progress.offset, limit=PAGE_SIZE)
                except Exception as exc:
                    self.log.info("%d records stored so far (%d requests)", progress.records, progress.requests)
                    pause_or_raise(exc, self.inline_wait)
                progress.requests += 1
                new, changed = upsert_suppressions(conn, hook, table, page, utc_now_iso())
                progress.records += len(page)
                progress.new += new
                progress.offset += len(page)
                progress.updated += changed
                if len(page) < PAGE_SIZE:
                    break
        self.log.info(
            "lemlist suppressions -> %s: records=%d new=%d updated=%d requests=%d (one request per %d records)",
            table,
            progress.records,
            progress.new,
            progress.updated,
            progress.requests,
            PAGE_SIZE,
        )
        return {"records": progress.records, "new": progress.new, "requests": progress.requests, "table": table}
