"""Transfers: copy vendor lists into a warehouse table through any common-sql connection.

This module holds what the transfer operators share. Importing it loads no HTTP client,
no retry library, no SQL driver and no trigger (the scheduler imports operator modules on
every DAG parse); those load when a task runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any

from airflow_provider_outreach.exceptions import InvalidInputError

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

#: rows per ``executemany`` call
INSERT_BATCH_SIZE = 1000


def checked_table_name(table: Any) -> str:
    """``table`` if it is a plain (optionally schema-qualified) identifier; refused otherwise."""
    from airflow_provider_outreach.audit import check_table_name

    try:
        check_table_name(table)
    except InvalidInputError:
        raise InvalidInputError(
            f"table {table!r} must be a plain table name such as outreach_suppressions or schema.table"
        ) from None
    return table


def sql_hook(conn_id: str) -> DbApiHook:
    """The common-sql hook of ``conn_id`` (SQLite, PostgreSQL, MySQL, Snowflake, ...)."""
    from airflow.providers.common.compat.sdk import BaseHook
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    hook = BaseHook.get_hook(conn_id)
    if not isinstance(hook, DbApiHook):
        raise InvalidInputError(f"sql_conn_id {conn_id!r} is not a SQL connection (its hook is {type(hook).__name__})")
    return hook


@contextmanager
def sql_connection(hook: DbApiHook) -> Iterator[Any]:
    """A DB-API connection with autocommit off (where the driver has the switch), closed after use."""
    with closing(hook.get_conn()) as conn:
        if hook.supports_autocommit:
            hook.set_autocommit(conn, False)
        yield conn


@contextmanager
def transaction(conn: Any) -> Iterator[Any]:
    """A cursor whose statements are committed together at the end, or rolled back on any error."""
    cursor = conn.cursor()
    try:
        yield cursor
        conn.commit()
    except BaseException:
        try:
            conn.rollback()
        except Exception:  # the original error matters more than a failed rollback
            pass
        raise
    finally:
        cursor.close()


def create_table(conn: Any, sql: str) -> None:
    """``CREATE TABLE IF NOT EXISTS``, in its own transaction; two runs creating it at once
    (PostgreSQL then reports a key violation in its catalog) both go on."""

    from airflow_provider_outreach.audit import retry_on_conflict

    def create() -> None:
        with transaction(conn) as cursor:
            cursor.execute(sql)

    retry_on_conflict(create)


def cell(value: Any, width: int | None) -> str | None:
    """A vendor's value as text the column holds: cut to ``width``, storable anywhere."""
    from airflow_provider_outreach.audit import fit

    return None if value is None else fit(str(value), width)


def placeholders(hook: DbApiHook, count: int) -> str:
    """``?, ?, ?`` or ``%s, %s, %s``: the driver's parameter marker ``count`` times."""
    return ", ".join([hook.placeholder] * count)


def insert_many(cursor: Any, sql: str, rows: list[tuple]) -> None:
    """``executemany`` in batches of :data:`INSERT_BATCH_SIZE`."""
    for start in range(0, len(rows), INSERT_BATCH_SIZE):
        cursor.executemany(sql, rows[start : start + INSERT_BATCH_SIZE])


def quota_wait(exc: BaseException, max_inline_wait: float) -> float | None:
    """Seconds to defer for when ``exc`` is a rate-limit wait too long to sleep in the worker; else None."""
    from airflow_provider_outreach.core.retry import Action, decide

    decision = decide(exc, max_inline_wait)
    return decision.wait if decision.action is Action.DEFER else None
