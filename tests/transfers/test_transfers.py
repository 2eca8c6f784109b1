"""The transfers, over real HTTP against the sandbox, into SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_outreach.exceptions import InvalidInputError
from airflow_provider_outreach.hooks.leadlex import LeadlexHook
from airflow_provider_outreach.transfers import leadlex_to_sql, lemlist_to_sql
from airflow_provider_outreach.transfers.leadlex_to_sql import LeadlexEnrollmentsToSqlOperator
from airflow_provider_outreach.transfers.lemlist_to_sql import (
    LemlistUnsubscribesToSqlOperator,
    suppression_row,
    upsert_suppressions,
)
from tests.conftest import MemoryStateStore, RecordingTI
from tests.dagtest import new_dag, run_dag, task_states, xcom
from tests.servers import postgres_db, postgres_server  # noqa: F401  (fixtures)

SUPPRESSIONS = "outreach_suppressions"
ENROLLMENTS = "leadlex_enrollments"


@dataclass
class Warehouse:
    """The SQL database a test writes to, read back with the driver directly (not through the code tested)."""

    dialect: str
    conn_id: str
    connect: Any

    def rows(self, sql: str) -> list[tuple]:
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return [tuple(row) for row in cur.fetchall()]
        finally:
            conn.close()

    def execute(self, sql: str) -> None:
        conn = self.connect()
        try:
            conn.cursor().execute(sql)
            conn.commit()
        finally:
            conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request, tmp_path, monkeypatch) -> Warehouse:
    if request.param == "sqlite":
        path = tmp_path / "warehouse.db"
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_SQLITE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
        return Warehouse("sqlite", "warehouse_sqlite", lambda: sqlite3.connect(path))
    db = request.getfixturevalue("postgres_db")
    return Warehouse("postgres", db.conn_id, lambda: db.server.connect(db.dbname, autocommit=False))


def context(store: MemoryStateStore | None = None) -> dict:
    return {"ti": RecordingTI(), "task_state_store": store if store is not None else MemoryStateStore()}


def query_of(request: dict) -> dict:
    return {key: values[-1] for key, values in request["query"].items()}


# -- lemlist suppressions ----------------------------------------------------------------------


def _unsubscribes(start: int, count: int) -> list[dict]:
    """Emails, @domains, LinkedIn URLs and phone numbers with every source."""
    sources = ("api", "bounced", "lead", "user", "abuse")
    out = []
    for i in range(start, start + count):
        if i % 10 == 1:
            value = f"@domain{i:04d}.example"
        elif i % 10 == 2:
            value = f"https://www.linkedin.com/in/person{i:04d}"
        elif i % 10 == 3:
            value = f"+33 6 12 34 {i:04d}"
        else:
            value = f"person{i:04d}@example.com"
        out.append({"value": value, "source": sources[i % 5], "createdAt": f"2026-01-01T00:00:{i % 60:02d}.{i:03d}Z"})
    return out


def _expected_suppressions(records: list[dict]) -> list[tuple]:
    def kind(value: str) -> str:
        if value.startswith("@"):
            return "domain"
        if value.startswith(("https://", "+")):
            return "other"
        return "email"

    return sorted((r["value"], kind(r["value"]), r["source"], r["createdAt"]) for r in records)


def _suppression_rows(warehouse: Warehouse) -> list[tuple]:
    return warehouse.rows(f"SELECT value, kind, source, created_at, first_seen_at FROM {SUPPRESSIONS} ORDER BY value")


def _lemlist_offsets(sandbox) -> list[tuple[str, str, int]]:
    return [
        (query_of(r)["offset"], query_of(r)["limit"], r["status"])
        for r in sandbox.requests(vendor="lemlist")
        if r["path"] == "/v2/unsubscribes/variables"
    ]


def test_lemlist_pages_upserts_and_is_idempotent(sandbox, connections, warehouse):
    first = _unsubscribes(0, 200)
    sandbox.seed({"lemlist": {"unsubscribes": first}})
    op = LemlistUnsubscribesToSqlOperator(task_id="copy", sql_conn_id=warehouse.conn_id, table=SUPPRESSIONS)

    # 200 records: two full pages and an empty one
    assert op.execute(context()) == {"records": 200, "new": 200, "requests": 3, "table": SUPPRESSIONS}
    assert _lemlist_offsets(sandbox) == [("0", "100", 200), ("100", "100", 200), ("200", "100", 200)]
    rows = _suppression_rows(warehouse)
    assert [row[:4] for row in rows] == _expected_suppressions(first)
    assert {row[1] for row in rows} == {"email", "domain", "other"}
    assert ("@domain0001.example", "domain", "bounced", "2026-01-01T00:00:01.001Z") in [r[:4] for r in rows]
    assert ("+33 6 12 34 0003", "other", "user", "2026-01-01T00:00:03.003Z") in [r[:4] for r in rows]
    first_seen = {row[0]: row[4] for row in rows}
    assert all(pendulum.parse(seen).tzinfo is not None for seen in first_seen.values())

    # 50 more records and one whose source changed in lemlist
    sandbox.clear_requests()
    more = _unsubscribes(200, 50)
    changed = {"value": "person0000@example.com", "source": "user", "createdAt": "2026-02-02T00:00:00.000Z"}
    sandbox.seed({"lemlist": {"unsubscribes": [*more, changed]}})
    assert op.execute(context()) == {"records": 250, "new": 50, "requests": 3, "table": SUPPRESSIONS}
    assert _lemlist_offsets(sandbox) == [("0", "100", 200), ("100", "100", 200), ("200", "100", 200)]
    rows = _suppression_rows(warehouse)
    current = [changed if r["value"] == changed["value"] else r for r in first + more]
    assert [row[:4] for row in rows] == _expected_suppressions(current)
    # first_seen_at of the values already stored is kept, the changed one's included
    assert {row[0]: row[4] for row in rows if row[0] in first_seen} == first_seen
    assert all(row[4] > max(first_seen.values()) for row in rows if row[0] not in first_seen)

    # nothing new: nothing changes
    assert op.execute(context()) == {"records": 250, "new": 0, "requests": 3, "table": SUPPRESSIONS}
    assert _suppression_rows(warehouse) == rows


def test_lemlist_defers_on_a_long_wait_and_resumes_at_the_offset(sandbox, connections, warehouse, progress):
    records = _unsubscribes(0, 350)
    sandbox.seed({"lemlist": {"unsubscribes": records}})
    sandbox.configure(limits={"lemlist": [{"limit": 2, "window": 3}]})
    op = LemlistUnsubscribesToSqlOperator(
        task_id="copy", sql_conn_id=warehouse.conn_id, table=SUPPRESSIONS, max_inline_wait=1
    )
    with pytest.raises(TaskDeferred) as deferred:
        progress.execute(op)
    assert progress.saved(lemlist_to_sql.PROGRESS_KEY, deferred.value) == {
        "offset": 200,
        "records": 200,
        "new": 200,
        "updated": 0,
        "requests": 2,
    }
    assert len(_suppression_rows(warehouse)) == 200  # the pages read are stored already

    assert progress.resume(op, deferred.value) == {"records": 350, "new": 350, "requests": 4, "table": SUPPRESSIONS}
    assert _lemlist_offsets(sandbox) == [
        ("0", "100", 200),
        ("100", "100", 200),
        ("200", "100", 429),  # lemlist asked for a wait longer than max_inline_wait
        ("200", "100", 200),
        ("300", "100", 200),
    ]
    assert [row[:4] for row in _suppression_rows(warehouse)] == _expected_suppressions(records)
    assert progress.left_over() == {}  # cleared when the task ends


def test_suppression_values_are_normalised():
    assert suppression_row({"value": " Ann@Example.COM ", "source": "lead", "createdAt": "c"}) == (
        "ann@example.com",
        "email",
        "lead",
        "c",
    )
    assert suppression_row({"value": "@Example.ORG", "source": "api"}) == ("@example.org", "domain", "api", None)
    linkedin = "https://www.linkedin.com/in/Ann-Smith"
    assert suppression_row({"value": linkedin}) == (linkedin, "other", None, None)
    assert suppression_row({"value": "+1 555 0100"}) == ("+1 555 0100", "other", None, None)
    # not an email by the operators' own rule (no dot in its domain): stored as lemlist has it
    assert suppression_row({"value": "Odd@Host"}) == ("Odd@Host", "other", None, None)
    assert suppression_row({"value": "@localhost"}) == ("@localhost", "other", None, None)
    assert suppression_row({"value": ""}) is None
    assert suppression_row({"source": "api"}) is None
    assert suppression_row("x@y.com") is None


def test_case_variants_are_one_row(warehouse):
    from airflow_provider_outreach.transfers import sql_connection, sql_hook, transaction

    hook = sql_hook(warehouse.conn_id)
    with sql_connection(hook) as conn:
        with transaction(conn) as cursor:
            cursor.execute(lemlist_to_sql.suppression_table_sql(SUPPRESSIONS))
        page = [{"value": "A@X.com", "source": "api"}, {"value": "a@x.COM", "source": "lead"}]
        assert upsert_suppressions(conn, hook, SUPPRESSIONS, page, "t1") == (1, 0)
        assert upsert_suppressions(conn, hook, SUPPRESSIONS, [{"value": "A@x.com", "source": "lead"}], "t2") == (0, 0)
        assert upsert_suppressions(conn, hook, SUPPRESSIONS, [{"value": "a@x.com", "source": "user"}], "t3") == (0, 1)
    assert _suppression_rows(warehouse) == [("a@x.com", "email", "user", None, "t1")]


class _RacingConnection:
    """A real connection; right after its next SELECT, ``race`` runs once (another run of the
    copy, committing through a connection of its own before this one's INSERT)."""

    def __init__(self, conn: Any, race: Any) -> None:
        self._conn, self._race = conn, [race]

    def cursor(self) -> Any:
        outer = self
        cursor = self._conn.cursor()

        class Cursor:
            def execute(self, sql: str, *args: Any) -> Any:
                result = cursor.execute(sql, *args)
                if sql.startswith("SELECT") and outer._race:
                    outer._race.pop()()
                return result

            def __getattr__(self, name: str) -> Any:
                return getattr(cursor, name)

        return Cursor()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_concurrent_run_inserting_the_same_values_is_absorbed(warehouse):
    """Two runs of the copy at once: the other run inserts a value between this run's SELECT and
    INSERT. The key violation (a real one, from the database) rolls the page back and the page
    is stored again; the other run's row is kept as it is."""
    from airflow_provider_outreach.transfers import create_table, sql_connection, sql_hook

    hook = sql_hook(warehouse.conn_id)
    page = [{"value": "ann@example.com", "source": "lead", "createdAt": "c1"}, {"value": "bob@example.com"}]
    other_run = (
        f"INSERT INTO {SUPPRESSIONS} (value, kind, source, created_at, first_seen_at) "
        "VALUES ('ann@example.com', 'email', 'lead', 'c1', 'other-run')"
    )
    with sql_connection(hook) as conn:
        create_table(conn, lemlist_to_sql.suppression_table_sql(SUPPRESSIONS))
        racing = _RacingConnection(conn, lambda: warehouse.execute(other_run))
        assert upsert_suppressions(racing, hook, SUPPRESSIONS, page, "this-run") == (1, 0)
    assert [(r[0], r[4]) for r in _suppression_rows(warehouse)] == [
        ("ann@example.com", "other-run"),
        ("bob@example.com", "this-run"),
    ]


def test_an_error_that_is_no_conflict_is_not_retried(warehouse):
    from airflow_provider_outreach.audit import retry_on_conflict

    calls = []

    def work():
        calls.append(1)
        warehouse.execute("SELECT * FROM no_such_table")

    with pytest.raises(Exception, match="no_such_table"):
        retry_on_conflict(work)
    assert len(calls) == 1


def test_bad_table_name_is_refused_before_any_request(sandbox, connections):
    for op in (
        LemlistUnsubscribesToSqlOperator(task_id="a", sql_conn_id="x", table="s; DROP TABLE t"),
        LeadlexEnrollmentsToSqlOperator(task_id="b", sql_conn_id="x", table="a.b.c"),
    ):
        with pytest.raises(InvalidInputError, match="plain table name"):
            op.execute(context())
    with pytest.raises(InvalidInputError, match="campaign_ids"):
        LeadlexEnrollmentsToSqlOperator(task_id="c", sql_conn_id="x", table="t", campaign_ids=["ok", ".."]).execute(
            context()
        )
    assert sandbox.requests() == []


# -- LeadLex enrollments -----------------------------------------------------------------------


def _campaign(campaign_id: str, contacts: int, **extra) -> dict:
    return {
        "id": campaign_id,
        "name": campaign_id,
        "contacts": [
            {"contact_id": f"{campaign_id}_c{i:03d}", "email": f"{campaign_id}.{i:03d}@example.com"}
            for i in range(contacts)
        ],
        **extra,
    }


def _enrollment_rows(warehouse: Warehouse) -> list[tuple]:
    return warehouse.rows(
        f"SELECT campaign_id, contact_id, email, status FROM {ENROLLMENTS} ORDER BY campaign_id, contact_id"
    )


def _expected_enrollments(sandbox) -> list[tuple]:
    """Every current enrollment, from the sandbox's own state."""
    campaigns = sandbox.state()["leadlex"]["campaigns"]
    return sorted(
        (cid, c["contact_id"], c["email"], c["status"])
        for cid, camp in campaigns.items()
        for c in camp["contacts"].values()
    )


def _leadlex_reads(sandbox) -> list[tuple[str, str]]:
    """(campaign or "list", page) of every answered read, in order."""
    out = []
    for r in sandbox.requests(vendor="leadlex"):
        if r["method"] == "GET" and r["status"] in (200, 404):
            what = "list" if r["segments"] == ["v1", "campaigns"] else r["segments"][2]
            out.append((what, query_of(r)["page"]))
    return out


def test_leadlex_pages_replaces_campaigns_and_drops_what_is_gone(sandbox, connections, warehouse):
    small = [_campaign(f"cmp_{i:03d}", 1) for i in range(101)]
    sandbox.seed(
        {"leadlex": {"campaigns": [_campaign("cmp_big", 150), _campaign("cmp_draft", 3, status="draft"), *small]}}
    )
    op = LeadlexEnrollmentsToSqlOperator(task_id="copy", sql_conn_id=warehouse.conn_id, table=ENROLLMENTS)

    # 103 campaigns: 2 list pages; cmp_big: 2 pages; 102 campaigns: 1 page each
    assert op.execute(context()) == {"campaigns": 103, "enrollments": 254, "requests": 106, "table": ENROLLMENTS}
    reads = _leadlex_reads(sandbox)
    assert reads[:4] == [("list", "1"), ("list", "2"), ("cmp_big", "1"), ("cmp_big", "2")]
    assert all(query_of(r)["per_page"] == "100" for r in sandbox.requests(vendor="leadlex"))
    expected = _expected_enrollments(sandbox)
    assert len(expected) == 254
    assert _enrollment_rows(warehouse) == expected
    first_seen = warehouse.rows(f"SELECT DISTINCT seen_at FROM {ENROLLMENTS}")

    # a contact unenrolled, a campaign deleted in LeadLex, rows of a campaign that never existed
    hook = LeadlexHook()
    hook.remove_contact("cmp_big", "cmp_big_c007")
    hook.delete_campaign("cmp_draft")
    warehouse.execute(f"INSERT INTO {ENROLLMENTS} VALUES ('cmp_ghost', 'g1', 'g@example.com', 'active', 'x')")
    sandbox.clear_requests()
    # 101 + 1 campaigns, 2 list pages, cmp_big's 2 pages, and one read each proving that the
    # two stored campaigns the list did not hold are gone
    assert op.execute(context()) == {"campaigns": 102, "enrollments": 250, "requests": 107, "table": ENROLLMENTS}
    proofs = [(r["path"], r["status"]) for r in sandbox.requests(vendor="leadlex") if "page" not in query_of(r)]
    assert proofs == [("/v1/campaigns/cmp_draft", 404), ("/v1/campaigns/cmp_ghost", 404)]
    rows = _enrollment_rows(warehouse)
    assert rows == [row for row in expected if row[0] != "cmp_draft" and row[1] != "cmp_big_c007"]
    assert rows == _expected_enrollments(sandbox)
    seen = warehouse.rows(f"SELECT DISTINCT seen_at FROM {ENROLLMENTS}")
    assert len(seen) >= 1 and min(seen) > max(first_seen)  # every row was rewritten by this run

    # nothing changed in LeadLex: the same rows
    assert op.execute(context())["enrollments"] == 250
    assert _enrollment_rows(warehouse) == rows


def test_a_live_campaign_missing_from_the_list_read_keeps_its_rows(sandbox, connections, warehouse):
    """The list is read first and can be stale by the end (a deferral, another run of the
    copy storing a campaign created since): a campaign is removed only when LeadLex itself
    says it is gone."""
    sandbox.seed({"leadlex": {"campaigns": [_campaign("cmp_a", 1)]}})

    class ListThenCampaignAppears(LeadlexEnrollmentsToSqlOperator):
        def _list_campaigns(self, leadlex, progress):
            super()._list_campaigns(leadlex, progress)
            sandbox.seed({"leadlex": {"campaigns": [_campaign("cmp_new", 1)]}})  # created meanwhile ...
            warehouse.execute(  # ... and stored by another run of the copy
                f"INSERT INTO {ENROLLMENTS} VALUES ('cmp_new', 'cmp_new_c000', 'n@example.com', 'active', 'x')"
            )

    op = ListThenCampaignAppears(task_id="copy", sql_conn_id=warehouse.conn_id, table=ENROLLMENTS)
    assert op.execute(context())["campaigns"] == 1
    assert {row[0] for row in _enrollment_rows(warehouse)} == {"cmp_a", "cmp_new"}


def test_leadlex_campaign_ids_restrict_the_run(sandbox, connections, warehouse):
    sandbox.seed({"leadlex": {"campaigns": [_campaign("cmp_a", 2), _campaign("cmp_b", 3)]}})
    LeadlexEnrollmentsToSqlOperator(task_id="all", sql_conn_id=warehouse.conn_id, table=ENROLLMENTS).execute(context())
    warehouse.execute(f"INSERT INTO {ENROLLMENTS} VALUES ('cmp_gone', 'g1', 'g@example.com', 'active', 'x')")
    warehouse.execute(f"INSERT INTO {ENROLLMENTS} VALUES ('cmp_other', 'o1', 'o@example.com', 'active', 'x')")
    LeadlexHook().remove_contact("cmp_a", "cmp_a_c000")
    LeadlexHook().remove_contact("cmp_b", "cmp_b_c000")
    sandbox.clear_requests()

    op = LeadlexEnrollmentsToSqlOperator(
        task_id="some", sql_conn_id=warehouse.conn_id, table=ENROLLMENTS, campaign_ids=["cmp_a", "cmp_gone", "cmp_a"]
    )
    assert op.execute(context()) == {"campaigns": 1, "enrollments": 1, "requests": 2, "table": ENROLLMENTS}
    assert _leadlex_reads(sandbox) == [("cmp_a", "1"), ("cmp_gone", "1")]  # no campaign list read
    assert _enrollment_rows(warehouse) == [
        ("cmp_a", "cmp_a_c001", "cmp_a.001@example.com", "active"),
        # cmp_b was not asked for: its removed contact is still there
        ("cmp_b", "cmp_b_c000", "cmp_b.000@example.com", "active"),
        ("cmp_b", "cmp_b_c001", "cmp_b.001@example.com", "active"),
        ("cmp_b", "cmp_b_c002", "cmp_b.002@example.com", "active"),
        ("cmp_other", "o1", "o@example.com", "active"),  # not asked for, kept
    ]


def test_leadlex_defers_on_the_cap_and_resumes_without_rereading(sandbox, connections, warehouse, progress):
    sandbox.seed({"leadlex": {"campaigns": [_campaign("cmp_a", 1), _campaign("cmp_b", 150), _campaign("cmp_c", 1)]}})
    sandbox.configure(limits={"leadlex": [{"limit": 3, "window": 3}]})
    op = LeadlexEnrollmentsToSqlOperator(
        task_id="copy", sql_conn_id=warehouse.conn_id, table=ENROLLMENTS, max_inline_wait=1
    )
    with pytest.raises(TaskDeferred) as deferred:
        progress.execute(op)
    # list, cmp_a, cmp_b page 1: the cap is reached in the middle of cmp_b
    assert _leadlex_reads(sandbox) == [("list", "1"), ("cmp_a", "1"), ("cmp_b", "1")]
    saved = progress.saved(leadlex_to_sql.PROGRESS_KEY, deferred.value)
    assert (saved["listed"], saved["done"], saved["requests"], saved["id_keys"]) == (True, 1, 3, 1)
    assert progress.saved(leadlex_to_sql.campaign_ids_key(0), deferred.value) == ["cmp_a", "cmp_b", "cmp_c"]
    # cmp_a is written; nothing of cmp_b (its replacement is one transaction)
    assert _enrollment_rows(warehouse) == [("cmp_a", "cmp_a_c000", "cmp_a.000@example.com", "active")]

    sandbox.clear_requests()
    assert progress.resume(op, deferred.value) == {
        "campaigns": 3,
        "enrollments": 152,
        "requests": 6,
        "table": ENROLLMENTS,
    }
    # no campaign list and no cmp_a again; cmp_b from its first page
    assert _leadlex_reads(sandbox) == [("cmp_b", "1"), ("cmp_b", "2"), ("cmp_c", "1")]
    assert _enrollment_rows(warehouse) == _expected_enrollments(sandbox)
    assert progress.left_over() == {}


@pytest.mark.needs_task_state_store
@pytest.mark.usefixtures("airflow_db")
def test_leadlex_deferral_in_a_dag_run(sandbox, connections, tmp_path, monkeypatch):
    """Airflow's own task state store and triggerer: the run defers once and finishes without
    re-reading. ``max_inline_wait`` comes from the run's conf (a template)."""
    path = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DAG", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    sandbox.seed({"leadlex": {"campaigns": [_campaign("cmp_a", 1), _campaign("cmp_b", 150), _campaign("cmp_c", 1)]}})
    sandbox.configure(limits={"leadlex": [{"limit": 3, "window": 3}]})
    with new_dag("outreach_leadlex_enrollments_to_sql") as dag:
        LeadlexEnrollmentsToSqlOperator(
            task_id="copy",
            sql_conn_id="warehouse_dag",
            table=ENROLLMENTS,
            max_inline_wait="{{ dag_run.conf['max_inline_wait'] }}",
        )
    dr = run_dag(dag, run_conf={"max_inline_wait": 1})
    assert dr.state == "success", task_states(dr)
    assert xcom(dr, "copy") == {"campaigns": 3, "enrollments": 152, "requests": 6, "table": ENROLLMENTS}
    assert _leadlex_reads(sandbox) == [
        ("list", "1"),
        ("cmp_a", "1"),
        ("cmp_b", "1"),
        ("cmp_b", "1"),
        ("cmp_b", "2"),
        ("cmp_c", "1"),
    ]
    rows = sqlite3.connect(path).execute(f"SELECT campaign_id, count(*) FROM {ENROLLMENTS} GROUP BY campaign_id")
    assert sorted(rows.fetchall()) == [("cmp_a", 1), ("cmp_b", 150), ("cmp_c", 1)]


def test_many_campaign_ids_are_kept_in_several_keys():
    op = LeadlexEnrollmentsToSqlOperator(task_id="copy", sql_conn_id="x", table="t")
    store = MemoryStateStore()
    ids = [f"{i:08d}-aaaa-bbbb-cccc-{i:012d}" for i in range(5000)]
    op.save(store, leadlex_to_sql.EnrollmentCopyProgress(done=7, campaign_ids=ids))
    keys = store.get(leadlex_to_sql.PROGRESS_KEY)["id_keys"]
    assert keys == 4
    assert all(len(json.dumps(store.get(leadlex_to_sql.campaign_ids_key(i)))) <= 60_000 for i in range(keys))
    progress = op.load(store)
    assert progress.campaign_ids == ids and progress.done == 7
    op.clear(store)
    assert store.values == {}


def test_leadlex_defers_while_listing_and_resumes_the_list(sandbox, connections, warehouse, progress):
    sandbox.seed({"leadlex": {"campaigns": [_campaign(f"cmp_{i:03d}", 0) for i in range(150)]}})
    sandbox.configure(limits={"leadlex": [{"limit": 1, "window": 2}]})
    op = LeadlexEnrollmentsToSqlOperator(
        task_id="copy", sql_conn_id=warehouse.conn_id, table=ENROLLMENTS, max_inline_wait=0.5
    )
    with pytest.raises(TaskDeferred) as deferred:
        progress.execute(op)
    saved = progress.saved(leadlex_to_sql.PROGRESS_KEY, deferred.value)
    assert (saved["listed"], saved["next_page"], saved["done"]) == (False, 2, 0)
    assert len(progress.saved(leadlex_to_sql.campaign_ids_key(0), deferred.value)) == 100
    sandbox.clear_requests()
    with pytest.raises(TaskDeferred) as again:  # one request per window: page 2 of the list, then wait again
        progress.resume(op, deferred.value)
    assert _leadlex_reads(sandbox) == [("list", "2")]
    saved = progress.saved(leadlex_to_sql.PROGRESS_KEY, again.value)
    assert (saved["listed"], saved["done"]) == (True, 0)
    assert len(progress.saved(leadlex_to_sql.campaign_ids_key(0), again.value)) == 150


def test_leadlex_replacement_is_atomic(sandbox, connections, warehouse):
    """A failing INSERT leaves the campaign's previous rows in place: the DELETE is rolled back with it."""
    sandbox.seed({"leadlex": {"campaigns": [_campaign("cmp_big", 150)]}})
    warehouse.execute(
        f"CREATE TABLE {ENROLLMENTS} (campaign_id VARCHAR(255) NOT NULL, contact_id VARCHAR(255) NOT NULL, "
        "email VARCHAR(320) CHECK (email NOT LIKE 'poison%'), status VARCHAR(64), seen_at VARCHAR(40) NOT NULL, "
        "PRIMARY KEY (campaign_id, contact_id))"
    )
    op = LeadlexEnrollmentsToSqlOperator(task_id="copy", sql_conn_id=warehouse.conn_id, table=ENROLLMENTS)
    op.execute(context())
    before = warehouse.rows(f"SELECT * FROM {ENROLLMENTS} ORDER BY contact_id")
    assert len(before) == 150

    LeadlexHook().remove_contact("cmp_big", "cmp_big_c000")  # the DELETE would drop this row
    sandbox.seed({"leadlex": {"campaigns": [{"id": "cmp_big", "contacts": [{"contact_id": "zz", "email": "poison"}]}]}})
    store = MemoryStateStore()
    with pytest.raises(Exception, match="(?i)check"):
        op.execute(context(store))
    assert warehouse.rows(f"SELECT * FROM {ENROLLMENTS} ORDER BY contact_id") == before
    assert store.values == {}


@pytest.mark.postgres
def test_postgres_refusing_a_row_keeps_the_old_rows(sandbox, connections, request):
    """A row the database refuses (here a CHECK constraint of the user's) fails the
    replacement as a whole: the campaign's old rows stay."""
    db = request.getfixturevalue("postgres_db")
    sandbox.seed({"leadlex": {"campaigns": [_campaign("cmp_a", 120), _campaign("cmp_b", 2)]}})
    op = LeadlexEnrollmentsToSqlOperator(task_id="copy", sql_conn_id=db.conn_id, table="public.enrollments")
    op.execute(context())
    warehouse = Warehouse("postgres", db.conn_id, lambda: db.server.connect(db.dbname))
    before = warehouse.rows("SELECT * FROM public.enrollments ORDER BY campaign_id, contact_id")
    assert len(before) == 122

    warehouse.execute("ALTER TABLE public.enrollments ADD CONSTRAINT no_z CHECK (contact_id <> 'z')")
    LeadlexHook().remove_contact("cmp_a", "cmp_a_c000")
    sandbox.seed({"leadlex": {"campaigns": [{"id": "cmp_a", "contacts": [{"contact_id": "z", "status": "x"}]}]}})
    with pytest.raises(Exception, match="no_z"):
        op.execute(context())
    assert warehouse.rows("SELECT * FROM public.enrollments ORDER BY campaign_id, contact_id") == before


# -- packaging ---------------------------------------------------------------------------------


def test_transfer_modules_are_listed_with_their_templated_fields():
    from airflow_provider_outreach import get_provider_info

    transfers = get_provider_info()["transfers"]
    assert [(t["source-integration-name"], t["target-integration-name"]) for t in transfers] == [
        ("lemlist", "Common SQL"),
        ("LeadLex", "Common SQL"),
    ]
    assert LemlistUnsubscribesToSqlOperator.template_fields == (
        "sql_conn_id",
        "table",
        "lemlist_conn_id",
        "max_inline_wait",
    )
    assert LeadlexEnrollmentsToSqlOperator.template_fields == (
        "sql_conn_id",
        "table",
        "leadlex_conn_id",
        "campaign_ids",
        "max_inline_wait",
    )


@pytest.mark.parametrize("wait", ["soon", "-1", "nan", None])
def test_a_max_inline_wait_that_is_no_number_of_seconds_fails_before_any_request(sandbox, connections, wait):
    ops = [
        LemlistUnsubscribesToSqlOperator(task_id="a", sql_conn_id="unused", table=SUPPRESSIONS, max_inline_wait=wait),
        LeadlexEnrollmentsToSqlOperator(task_id="b", sql_conn_id="unused", table=ENROLLMENTS, max_inline_wait=wait),
    ]
    for op in ops:
        with pytest.raises(InvalidInputError, match=f"max_inline_wait must be a number of seconds .*got {wait!r}"):
            op.execute(context())
    assert sandbox.requests() == []


def test_vendor_values_too_long_for_a_column_are_cut_or_skipped_not_refused(warehouse):
    """What PostgreSQL refuses and SQLite takes: an over-long source or email, a NUL, a key of
    multi-byte characters longer than an index entry holds."""
    from airflow_provider_outreach.transfers import create_table, sql_connection, sql_hook

    hook = sql_hook(warehouse.conn_id)
    page = [
        {"value": "ann@example.com", "source": "s" * 100, "createdAt": 1767225600000},
        {"value": "bob\x00@example.com", "source": "api"},
        {"value": "😀" * 700},  # 700 characters, 2,800 bytes
    ]
    with sql_connection(hook) as conn:
        create_table(conn, lemlist_to_sql.suppression_table_sql(SUPPRESSIONS))
        assert upsert_suppressions(conn, hook, SUPPRESSIONS, page, "t1") == (2, 0)
        assert upsert_suppressions(conn, hook, SUPPRESSIONS, page, "t2") == (0, 0)  # an integer createdAt is stable
        contacts = [{"contact_id": "c1", "email": "e" * 400, "status": "x" * 100}, {"contact_id": "k" * 300}]
        create_table(conn, leadlex_to_sql.enrollment_table_sql(ENROLLMENTS))
        assert leadlex_to_sql.replace_campaign(conn, hook, ENROLLMENTS, "cmp", contacts, "t1") == 1
    rows = _suppression_rows(warehouse)
    assert [(r[0], len(r[2]), r[3]) for r in rows] == [
        ("ann@example.com", 64, "1767225600000"),
        ("bob\ufffd@example.com", 3, None),
    ]
    (enrollment,) = warehouse.rows(f"SELECT contact_id, email, status FROM {ENROLLMENTS}")
    assert (enrollment[0], len(enrollment[1]), len(enrollment[2])) == ("c1", 320, 64)
