"""Copy LeadLex campaign enrollments into a warehouse table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_outreach.audit import retry_on_conflict
from airflow_provider_outreach.core.clock import utc_now_iso
from airflow_provider_outreach.transfers import (
    cell,
    checked_table_name,
    create_table,
    insert_many,
    placeholders,
    quota_wait,
    sql_connection,
    sql_hook,
    transaction,
)
from airflow_provider_outreach.transfers.base import CopyProgress, ResumableCopyOperator, pause_or_raise
from airflow_provider_outreach.version_compat import AirflowException

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    from airflow_provider_outreach.hooks.leadlex import LeadlexHook

#: task state store key of the progress kept while the task waits for a rate-limit reset
PROGRESS_KEY = "outreach_leadlex_enrollments_progress"
#: the campaign ids of a deferred run are kept in keys of their own, each value at most this
#: many bytes of JSON (Airflow's ``[state_store] max_value_storage_bytes`` defaults to 65535)
CAMPAIGN_IDS_BYTES_PER_KEY = 60_000
#: campaigns whose rows one DELETE removes
DELETE_BATCH = 100
#: longest campaign or contact id the table's key columns hold; widths of the other columns
MAX_ID_LENGTH = 255
EMAIL_WIDTH, STATUS_WIDTH = 320, 64
ENROLLMENT_COLUMNS = ("campaign_id", "contact_id", "email", "status", "seen_at")


def enrollment_table_sql(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ("
        f"campaign_id VARCHAR({MAX_ID_LENGTH}) NOT NULL, contact_id VARCHAR({MAX_ID_LENGTH}) NOT NULL, "
        f"email VARCHAR({EMAIL_WIDTH}), status VARCHAR({STATUS_WIDTH}), seen_at VARCHAR(40) NOT NULL, "
        "PRIMARY KEY (campaign_id, contact_id))"
    )


def create_enrollment_table(sql_conn_id: str, table: str) -> None:
    """Create ``table`` as the copy fills it, if missing (a reader before the first copy finds it empty)."""
    table = checked_table_name(table)
    hook = sql_hook(sql_conn_id)
    with sql_connection(hook) as conn:
        create_table(conn, enrollment_table_sql(table))


def campaign_ids_key(index: int) -> str:
    return f"{PROGRESS_KEY}_campaigns_{index}"


def replace_campaign(
    conn: Any, hook: DbApiHook, table: str, campaign_id: str, contacts: Sequence[dict[str, Any]], now: str
) -> int:
    """Replace a campaign's rows by ``contacts`` in one transaction (DELETE + INSERT); returns the rows.
    Run again when a concurrent run of the copy inserted the same rows meanwhile."""
    rows: dict[str, tuple] = {}
    for contact in contacts:
        contact_id = contact.get("contact_id")
        if contact_id is None or contact_id == "" or len(str(contact_id)) > MAX_ID_LENGTH:
            continue  # no key the table can hold
        rows[str(contact_id)] = (
            campaign_id,
            cell(contact_id, None),
            cell(contact.get("email"), EMAIL_WIDTH),
            cell(contact.get("status"), STATUS_WIDTH),
            now,
        )

    def replace() -> None:
        with transaction(conn) as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE campaign_id = {hook.placeholder}", (campaign_id,))
            insert_many(
                cursor,
                f"INSERT INTO {table} ({', '.join(ENROLLMENT_COLUMNS)}) VALUES ({placeholders(hook, 5)})",
                list(rows.values()),
            )

    retry_on_conflict(replace)  # another run of the copy inserted the campaign's rows meanwhile
    return len(rows)


def stored_campaigns(conn: Any, table: str) -> list[str]:
    """The campaigns ``table`` holds rows of."""
    with transaction(conn) as cursor:
        cursor.execute(f"SELECT DISTINCT campaign_id FROM {table}")
        return sorted(row[0] for row in cursor.fetchall())


def remove_campaigns(conn: Any, hook: DbApiHook, table: str, campaign_ids: list[str]) -> None:
    """Delete, in one transaction, the rows of ``campaign_ids``."""
    with transaction(conn) as cursor:
        for start in range(0, len(campaign_ids), DELETE_BATCH):
            batch = campaign_ids[start : start + DELETE_BATCH]
            cursor.execute(f"DELETE FROM {table} WHERE campaign_id IN ({placeholders(hook, len(batch))})", batch)


@dataclass
class EnrollmentCopyProgress(CopyProgress):
    """Where the copy of LeadLex's enrollments stands.

    :param restricted: only the campaigns asked for (the list is not read).
    :param listed: the campaign list was read to its end (else: from ``next_page`` on).
    :param done: campaigns of ``campaign_ids`` written so far, in order.
    """

    restricted: bool = False
    listed: bool = False
    next_page: int = 1
    done: int = 0
    campaigns: int = 0
    enrollments: int = 0
    campaign_ids: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        listing = "" if self.listed else f", the campaign list to read from page {self.next_page}"
        return f"{self.done} of {len(self.campaign_ids)} campaigns written{listing} ({self.requests} requests)"


class LeadlexEnrollmentsToSqlOperator(ResumableCopyOperator[EnrollmentCopyProgress]):
    """Copy who is enrolled in which LeadLex campaign into a table.

    Pages ``GET /v1/campaigns`` and, for each campaign, ``GET /v1/campaigns/{id}/contacts``
    (100 per page), then replaces the campaign's rows of ``table`` (created if missing, on
    any common-sql connection) in one transaction: a contact removed in LeadLex disappears
    from the table. After a complete run, the rows of stored campaigns the list did not hold
    are deleted too, each once LeadLex answers that it no longer has it (one request each). ::

        campaign_id  VARCHAR(255)  -- primary key with contact_id
        contact_id   VARCHAR(255)
        email        VARCHAR(320)
        status       VARCHAR(64)   -- LeadLex's enrollment status
        seen_at      VARCHAR(40)   -- UTC ISO time of the run that wrote the row

    Cost: one request per 100 campaigns, plus one per 100 enrollments of each campaign (at
    least one per campaign), all counted against LeadLex's per-minute and daily limits.
    When the daily cap (or any rate-limit wait longer than ``max_inline_wait``) is reached,
    the task defers until the reset and resumes with the campaigns not yet written; a
    campaign interrupted mid-way is read again from its first page.

    Returns (XCom) ``{"campaigns", "enrollments", "requests", "table"}``.

    :param sql_conn_id: common-sql connection of the warehouse.
    :param table: target table, ``name`` or ``schema.name``.
    :param campaign_ids: only these campaigns (the campaign list is then not read; a
        campaign LeadLex no longer has loses its rows); ``None`` for every campaign.
    :param leadlex_conn_id: the LeadLex connection.
    :param max_inline_wait: longest rate-limit wait slept in the worker, in seconds (templated).
    """

    template_fields: Sequence[str] = ("sql_conn_id", "table", "leadlex_conn_id", "campaign_ids", "max_inline_wait")
    PROGRESS_KEY = PROGRESS_KEY
    PROGRESS = EnrollmentCopyProgress

    def __init__(
        self,
        *,
        sql_conn_id: str,
        table: str,
        campaign_ids: str | Sequence[str] | None = None,
        leadlex_conn_id: str = "leadlex_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(sql_conn_id=sql_conn_id, table=table, **kwargs)
        self.campaign_ids = campaign_ids
        self.leadlex_conn_id = leadlex_conn_id

    # -- progress: the campaign ids in keys of their own, each at most 60 KB of JSON -----------

    def save(self, store: Any, progress: EnrollmentCopyProgress) -> None:
        import json

        chunks: list[list[str]] = []
        size = CAMPAIGN_IDS_BYTES_PER_KEY
        for campaign_id in progress.campaign_ids:
            item_size = len(json.dumps(campaign_id)) + 2
            if size + item_size > CAMPAIGN_IDS_BYTES_PER_KEY:
                chunks.append([])
                size = 2
            chunks[-1].append(campaign_id)
            size += item_size
        for index, chunk in enumerate(chunks):
            store.set(campaign_ids_key(index), chunk)
        saved = progress.saved()
        del saved["campaign_ids"]
        store.set(self.PROGRESS_KEY, {**saved, "id_keys": len(chunks)})

    def load(self, store: Any) -> EnrollmentCopyProgress | None:
        saved = store.get(self.PROGRESS_KEY)
        if not saved:
            return None
        saved = dict(saved)
        campaign_ids: list[str] = []
        for index in range(saved.pop("id_keys")):
            chunk = store.get(campaign_ids_key(index))
            if chunk is None:
                return None
            campaign_ids.extend(chunk)
        return EnrollmentCopyProgress(**saved, campaign_ids=campaign_ids)

    def clear(self, store: Any) -> None:
        saved = store.get(self.PROGRESS_KEY)
        if saved:
            for index in range(saved.get("id_keys", 0)):
                store.delete(campaign_ids_key(index))
        store.delete(self.PROGRESS_KEY)

    # -- the copy ------------------------------------------------------------------------------

    def start(self) -> EnrollmentCopyProgress:
        from airflow_provider_outreach.core.paths import encode_path_param

        if self.campaign_ids is None:
            return EnrollmentCopyProgress()
        ids = [self.campaign_ids] if isinstance(self.campaign_ids, str) else self.campaign_ids
        if not isinstance(ids, (list, tuple)):
            raise AirflowException(f"{self.task_id}: campaign_ids must be a list of campaign ids")
        for campaign_id in ids:
            encode_path_param("campaign_ids", campaign_id)
        requested = list(dict.fromkeys(str(campaign_id) for campaign_id in ids))
        return EnrollmentCopyProgress(restricted=True, listed=True, campaign_ids=requested)

    def copy(self, progress: EnrollmentCopyProgress) -> dict[str, Any]:
        from airflow_provider_outreach.hooks.leadlex import PAGE_SIZE, LeadlexHook

        table = checked_table_name(self.table)
        leadlex = LeadlexHook(self.leadlex_conn_id, max_inline_wait=self.inline_wait)
        hook = sql_hook(self.sql_conn_id)
        removed: list[str] = []
        with sql_connection(hook) as conn:
            create_table(conn, enrollment_table_sql(table))
            try:
                if not progress.listed:
                    self._list_campaigns(leadlex, progress)
                while progress.done < len(progress.campaign_ids):
                    campaign_id = progress.campaign_ids[progress.done]
                    contacts = self._read_contacts(leadlex, progress, campaign_id)
                    written = replace_campaign(conn, hook, table, campaign_id, contacts or [], utc_now_iso())
                    progress.done += 1
                    if contacts is not None:
                        progress.campaigns += 1
                    progress.enrollments += written
            except Exception as exc:
                pause_or_raise(exc, self.inline_wait)
            if not progress.restricted:
                removed = self._remove_gone_campaigns(conn, hook, table, progress, leadlex)
        self.log.info(
            "LeadLex enrollments -> %s: campaigns=%d enrollments=%d requests=%d, campaigns gone from LeadLex "
            "removed=%d (1 request per %d campaigns + 1 per %d enrollments of each campaign, counted against "
            "LeadLex's per-minute and daily limits)",
            table,
            progress.campaigns,
            progress.enrollments,
            progress.requests,
            len(removed),
            PAGE_SIZE,
            PAGE_SIZE,
        )
        return {
            "campaigns": progress.campaigns,
            "enrollments": progress.enrollments,
            "requests": progress.requests,
            "table": table,
        }

    def _list_campaigns(self, leadlex: LeadlexHook, progress: EnrollmentCopyProgress) -> None:
        """Read the campaign list from ``progress.next_page`` on, appending to its campaign ids."""
        known = set(progress.campaign_ids)
        for page, campaigns in leadlex.campaign_pages(first_page=progress.next_page):
            progress.requests += 1
            for campaign in campaigns:
                campaign_id = campaign.get("id") if isinstance(campaign, dict) else None
                if campaign_id is not None and len(str(campaign_id)) > MAX_ID_LENGTH:
                    self.log.warning("A campaign id longer than %d characters is skipped", MAX_ID_LENGTH)
                    continue
                if campaign_id is not None and str(campaign_id) not in known:
                    known.add(str(campaign_id))
                    progress.campaign_ids.append(str(campaign_id))
            progress.next_page = page + 1
        progress.listed = True

    def _read_contacts(self, leadlex: LeadlexHook, progress: EnrollmentCopyProgress, campaign_id: str) -> list | None:
        """Every enrollment of a campaign, or None when LeadLex no longer has the campaign."""
        from airflow_provider_outreach.exceptions import NotFoundError

        contacts: list[dict[str, Any]] = []
        try:
            for items in leadlex.contact_pages(campaign_id):
                progress.requests += 1
                contacts.extend(item for item in items if isinstance(item, dict))
        except NotFoundError as exc:
            if exc.missing != "campaign":  # a route or proxy 404, not LeadLex's campaign_not_found
                raise
            progress.requests += 1
            self.log.info("Campaign %s no longer exists in LeadLex: its rows are removed", campaign_id)
            return None
        return contacts

    def _remove_gone_campaigns(
        self,
        conn: Any,
        hook: DbApiHook,
        table: str,
        progress: EnrollmentCopyProgress,
        leadlex: LeadlexHook,
    ) -> list[str]:
        """Delete the rows of the stored campaigns the list did not hold, each once LeadLex
        itself answers that it is gone: a list read page by page can miss a live campaign
        that moved between pages, and another run may have stored a newer campaign."""
        from airflow_provider_outreach.exceptions import NotFoundError

        listed = set(progress.campaign_ids)
        gone: list[str] = []
        for campaign_id in (c for c in stored_campaigns(conn, table) if c not in listed):
            try:
                leadlex.get_campaign(campaign_id)
            except NotFoundError as exc:
                if exc.missing != "campaign":
                    raise
                gone.append(campaign_id)
            except Exception as exc:
                if quota_wait(exc, self.inline_wait) is None:
                    raise
                self.log.warning("LeadLex's quota is spent: rows of other unlisted campaigns are kept until next run")
                break
            else:
                self.log.info("Campaign %s is missing from the list read but exists: its rows are kept", campaign_id)
            finally:
                progress.requests += 1
        remove_campaigns(conn, hook, table, gone)
        if gone:
            self.log.info("Rows of %d campaigns LeadLex no longer has removed", len(gone))
        return gone
