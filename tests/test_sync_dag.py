"""A small suppression sync run through ``dag.test()``: pull, read the opt-outs, suppress, check.

It runs on every Airflow version of the matrix; the example DAG's own test
(tests/example_dags/test_outreach_suppression.py) also exercises assets and the data-interval timetable.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from airflow.providers.common.compat.sdk import task

from airflow_provider_outreach.operators.lemlist import LemlistAddUnsubscribeOperator, LemlistSuppressionCheckOperator
from airflow_provider_outreach.transfers.lemlist_to_sql import LemlistUnsubscribesToSqlOperator
from tests.dagtest import new_dag, run_dag, task_states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

WAREHOUSE = "sync_warehouse"


def test_a_suppression_sync_runs_through_dag_test(sandbox, connections, tmp_path, monkeypatch):
    path = tmp_path / "warehouse.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    known = [{"value": f"known{i}@example.com", "source": "lead"} for i in range(3)]
    sandbox.seed({"lemlist": {"unsubscribes": [*known, {"value": "@competitor.example", "source": "api"}]}})
    audit = {"audit_conn_id": WAREHOUSE, "audit_table": "outreach_audit"}
    with new_dag("outreach_sync_on_every_version") as dag:
        pulled = LemlistUnsubscribesToSqlOperator(task_id="pull", sql_conn_id=WAREHOUSE, table="lemlist_unsubscribes")

        @task
        def optouts() -> list[str]:
            from airflow.providers.common.compat.sdk import BaseHook

            rows = BaseHook.get_hook(WAREHOUSE).get_records(
                "SELECT value FROM lemlist_unsubscribes WHERE kind = 'email' ORDER BY value"
            )
            return [row[0] for row in rows] + ["new.person@example.org"]

        emails = optouts()
        pulled >> emails
        suppressed = LemlistAddUnsubscribeOperator(task_id="suppress", value=emails, **audit)
        suppressed >> LemlistSuppressionCheckOperator(task_id="check", value=emails, **audit)

    dr = run_dag(dag)

    assert dr.state == "success", task_states(dr)
    assert xcom(dr, "pull")["records"] == 4
    expected = sorted([r["value"] for r in known] + ["new.person@example.org"])
    assert sorted(xcom(dr, "suppress")["items"]["done"]) == expected
    assert xcom(dr, "check")["counts"] == {"honoured": 4, "not_honoured": 0, "failed": 0}
    assert "new.person@example.org" in sandbox.state()["lemlist"]["unsubscribes"]
    rows = sqlite3.connect(path).execute("SELECT action, item, outcome, dag_id, run_id FROM outreach_audit").fetchall()
    assert sorted((action, item, outcome) for action, item, outcome, _, _ in rows) == sorted(
        [("add_unsubscribe", e, "done") for e in expected] + [("check", e, "honoured") for e in expected]
    )
    assert {(dag_id, run_id) for _, _, _, dag_id, run_id in rows} == {(dr.dag_id, dr.run_id)}
