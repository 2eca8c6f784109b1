"""The audit trail on a real PostgreSQL server and on SQLite: created, written during the run,
values cut to their columns, older tables upgraded, a failed write stops the run."""

from __future__ import annotations

import threading
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, BaseHook

from airflow_provider_outreach.audit import AUDIT_COLUMNS, COLUMNS, AuditTrail, TaskScope
from airflow_provider_outreach.operators.dialnexa import DialnexaRemoveCampaignLeadOperator
from tests.conftest import RecordingTI


def _seed(sandbox, n: int) -> None:
    leads = [{"id": f"cl_{i:05d}", "phone_number": f"+1555{i:07d}"} for i in range(n)]
    sandbox.seed({"dialnexa": {"campaigns": [{"id": "cmp_a", "status": "active", "leads": leads}]}})


def _rows(conn_id: str, sql: str) -> list[tuple]:
    return [tuple(r) for r in BaseHook.get_hook(conn_id).get_records(sql)]


def test_rows_land_during_the_run_and_overlong_values_are_cut_to_fit(sandbox, connections, warehouse):
    _seed(sandbox, 40)
    sandbox.configure(latency={"dialnexa": 0.15})
    long_item = "z" * 3000  # longer than the item column
    op = DialnexaRemoveCampaignLeadOperator(
        task_id="t",
        campaign_lead_id=[f"cl_{i:05d}" for i in range(40)] + [long_item, "y" * 5000],
        max_workers=1,
        fail_on_error=False,
        audit_conn_id=warehouse,
        audit_table="outreach_audit",
    )
    counts: list[int] = []
    finished = threading.Event()

    def watch():
        while not finished.is_set():
            try:
                counts.append(_rows(warehouse, "SELECT count(*) FROM outreach_audit")[0][0])
            except Exception:  # the table may not exist yet
                pass
            time.sleep(0.3)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        report = op.execute({"ti": RecordingTI()})
    finally:
        finished.set()
        watcher.join()
    assert report["counts"] == {"done": 40, "already_absent": 0, "failed": 2}
    assert any(0 < n < 42 for n in counts), counts  # rows were there before the run ended
    rows = _rows(warehouse, "SELECT item, outcome, reason, message, map_index FROM outreach_audit")
    assert len(rows) == 42
    cut = {row[0]: row for row in rows if row[1] == "failed"}
    width = COLUMNS["item"][1]
    assert sorted(len(item) for item in cut) == [width, width]
    assert all(item.endswith("…") for item in cut)
    assert all(row[2] == "invalid" and row[4] == -1 for row in cut.values())
    # a message longer than its column (a long error text) is cut too, never refused
    trail = AuditTrail(warehouse, "outreach_audit", TaskScope("d", "r", "t"), "dialnexa", "remove_campaign_lead")
    trail.write([trail.row("x" * 3000, "failed", "2026-11-30T00:00:00+00:00", message="m" * 5000, code="c" * 300)])
    ((item, message, code),) = _rows(warehouse, "SELECT item, message, code FROM outreach_audit WHERE dag_id = 'd'")
    assert (len(item), len(message), len(code)) == (COLUMNS["item"][1], COLUMNS["message"][1], COLUMNS["code"][1])


def test_an_older_table_gets_the_new_columns(sandbox, connections, warehouse):
    _seed(sandbox, 2)
    hook = BaseHook.get_hook(warehouse)
    hook.run(
        "CREATE TABLE old_audit (vendor VARCHAR(32) NOT NULL, action VARCHAR(64) NOT NULL, item VARCHAR(2048) NOT NULL, "
        "outcome VARCHAR(32) NOT NULL, status INTEGER, message VARCHAR(4000), recorded_at VARCHAR(40) NOT NULL, "
        "dag_id VARCHAR(250), run_id VARCHAR(250), task_id VARCHAR(250))"
    )
    op = DialnexaRemoveCampaignLeadOperator(
        task_id="t", campaign_lead_id=["cl_00000", "cl_00001"], audit_conn_id=warehouse, audit_table="old_audit"
    )
    op.execute({"ti": RecordingTI()})
    rows = _rows(warehouse, "SELECT item, outcome, try_number FROM old_audit ORDER BY item")
    assert rows == [("cl_00000", "done", 1), ("cl_00001", "done", 1)]


def test_a_retry_resumes_from_the_audit_table(sandbox, connections, warehouse):
    _seed(sandbox, 30)
    sandbox.inject("dialnexa", ["ok"] + ["ok", "503"] * 15)  # the connection check, then every other item fails

    class OneAttempt(DialnexaRemoveCampaignLeadOperator):
        def get_hook(self):
            return self.spec.hook_class(self.conn_id, max_attempts=1)

    ids = [f"cl_{i:05d}" for i in range(30)]
    op = OneAttempt(task_id="t", campaign_lead_id=ids, max_workers=1, audit_conn_id=warehouse, audit_table="audit")
    first = RecordingTI()
    with pytest.raises(AirflowException) as err:
        op.execute({"ti": first})
    assert not isinstance(err.value, AirflowFailException)
    failed = set(first.xcoms["report"]["items"]["failed"])
    assert len(failed) == 15
    sandbox.clear_requests()
    second = RecordingTI()
    second.try_number = 2
    report = op.execute({"ti": second})
    assert report["counts"] == {"done": 30, "already_absent": 0, "failed": 0}
    sent = {r["segments"][-1] for r in sandbox.requests(vendor="dialnexa") if r["method"] == "DELETE"}
    assert sent == failed
    tries = _rows(warehouse, "SELECT try_number, outcome, count(*) FROM audit GROUP BY try_number, outcome")
    assert sorted(tries) == [(1, "done", 15), (1, "failed", 15), (2, "done", 15)]


def test_a_failed_audit_write_stops_sending(sandbox, connections, postgres_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AUDIT_DB", postgres_db.airflow_conn_json())
    _seed(sandbox, 1500)
    sandbox.configure(latency={"dialnexa": 0.02})
    op = DialnexaRemoveCampaignLeadOperator(
        task_id="t",
        campaign_lead_id=[f"cl_{i:05d}" for i in range(1500)],
        max_workers=2,
        audit_conn_id="audit_db",
        audit_table="audit",
    )
    dropped = threading.Event()

    def drop_the_table_once_rows_land():
        hook = BaseHook.get_hook("audit_db")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if hook.get_records("SELECT count(*) FROM audit")[0][0] > 0:
                    hook.run("DROP TABLE audit")
                    dropped.set()
                    return
            except Exception:
                pass
            time.sleep(0.05)

    dropper = threading.Thread(target=drop_the_table_once_rows_land)
    dropper.start()
    ti = RecordingTI()
    with pytest.raises(AirflowException, match="audit trail could not be written") as err:
        op.execute({"ti": ti})
    dropper.join()
    assert dropped.is_set()
    assert not isinstance(err.value, AirflowFailException)
    counts = ti.xcoms["report"]["counts"]
    assert counts["not_attempted"] > 0
    sent = [r for r in sandbox.requests(vendor="dialnexa") if r["method"] == "DELETE"]
    assert len(sent) == 1500 - counts["not_attempted"]


def test_tasks_creating_the_audit_table_at_once_all_go_on(warehouse):
    """The example DAG's suppression tasks start together on one audit table."""
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def create(n: int) -> None:
        trail = AuditTrail(warehouse, "shared_audit", TaskScope("d", "r", f"t{n}"), "lemlist", "check")
        start.wait()
        try:
            trail.ensure_table()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _rows(warehouse, "SELECT count(*) FROM shared_audit") == [(0,)]


def test_a_nul_and_a_lone_surrogate_are_stored_not_refused(warehouse):
    trail = AuditTrail(warehouse, "odd_audit", TaskScope("d", "r", "t"), "lemlist", "check")
    trail.ensure_table()
    trail.write([trail.row("ann\x00@example.com", "failed", "2026-01-01T00:00:00Z", message="bad \udcff byte")])
    assert _rows(warehouse, "SELECT item, message FROM odd_audit") == [("ann\ufffd@example.com", "bad \ufffd byte")]


def test_a_failed_write_leaves_no_part_of_its_rows(warehouse):
    """A write is all of its rows or none, so the rows put back for the next write are never
    written twice."""
    trail = AuditTrail(warehouse, "whole_audit", TaskScope("d", "r", "t"), "lemlist", "check")
    trail.ensure_table()
    rows = [trail.row(f"i{n}", "done", "2026-01-01T00:00:00Z") for n in range(600)]
    at = AUDIT_COLUMNS.index("outcome")
    rows[550] = rows[550][:at] + (None,) + rows[550][at + 1 :]  # outcome NOT NULL: the database refuses this row
    with pytest.raises(Exception):  # noqa: B017 (each driver names it differently)
        trail.write(rows)
    assert _rows(warehouse, "SELECT count(*) FROM whole_audit") == [(0,)]
