"""The suppression example DAGs, run end to end against the sandbox and a SQLite warehouse."""

from __future__ import annotations

import json
import socket
import sqlite3

import pendulum
import pytest

from airflow_provider_outreach.version_compat import AIRFLOW_V_3_0_PLUS
from demo import scenario, verify, warehouse
from tests.conftest import REPO
from tests.dagtest import dag_bag, run_dag, task_states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

SEED = json.loads((REPO / "airflow_provider_outreach" / "sandbox" / "demo_seed.json").read_text())
AUDIT = "outreach_suppression_audit"
ACTIONS = (
    "lemlist add_unsubscribe",
    "lemlist mark_not_interested",
    "leadlex remove_contact",
    "dialnexa remove_campaign_lead",
)


@pytest.fixture(scope="module")
def bag():
    return dag_bag(str(REPO / "example_dags"))


@pytest.fixture
def warehouse_db(tmp_path, monkeypatch):
    path = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_OUTREACH_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    warehouse.build(path, SEED)
    return path


def audit_rows(warehouse_db, run_id: str) -> list[tuple]:
    with sqlite3.connect(warehouse_db) as db:
        return db.execute(f"SELECT vendor, action, item, outcome FROM {AUDIT} WHERE run_id = ?", (run_id,)).fetchall()


def test_example_dags_parse_without_a_network_connection(sandbox, connections, monkeypatch):
    tried = []

    def refuse(self, address):
        tried.append(address)
        raise OSError(f"network I/O while parsing DAGs: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)  # the connections point at a live sandbox
    fresh = dag_bag(str(REPO / "example_dags"))
    monkeypatch.undo()
    assert fresh.import_errors == {} and tried == []
    expected = {
        "outreach_suppression_sync",
        "outreach_suppression_on_asset",
        "crm_optouts_producer",
        "outreach_draft_campaign_cleanup",
    }
    if AIRFLOW_V_3_0_PLUS:  # asset watchers: Airflow 3 only
        expected.add("outreach_lemlist_optouts_on_event")
    assert expected <= set(fresh.dag_ids)
    assert sandbox.requests() == []
    on_asset = fresh.dags["outreach_suppression_on_asset"].timetable
    assert (on_asset.asset_condition if AIRFLOW_V_3_0_PLUS else on_asset.dataset_condition) is not None


def test_the_first_run_catches_up_and_a_manual_run_sends_only_new_optouts(bag, sandbox, connections, warehouse_db):
    sandbox.reset(SEED)
    who = scenario.people(SEED)
    earlier, today = who["earlier"], who["today"][::3] + ["Unknown.Person@example.org"]
    warehouse.add_optouts(warehouse_db, earlier, pendulum.datetime(2026, 10, 1, tz="UTC"))
    sync = bag.get_dag("outreach_suppression_sync")

    first = run_dag(sync, logical_date=pendulum.datetime(2026, 11, 24, tz="UTC"))  # the first scheduled run

    assert first.state == "success", task_states(first)
    for tool, parts in verify.suppression_state(sandbox.state(), earlier).items():
        assert parts["not_honoured"] == [], tool

    warehouse.add_optouts(warehouse_db, today, pendulum.datetime(2026, 11, 25, tz="UTC"))
    from_lemlist = scenario.lemlist_origin_people(SEED, {e.lower() for e in earlier + today}, n=3)
    sandbox.seed({"lemlist": {"unsubscribes": [{"value": e, "source": "lead"} for e in from_lemlist]}})
    before = sandbox.state()

    manual = run_dag(sync, logical_date=None)  # "Trigger" with no logical date: no data interval

    assert manual.state == "success", task_states(manual)
    after = sandbox.state()
    for tool, parts in verify.suppression_state(after, today + from_lemlist).items():
        assert parts["not_honoured"] == [], tool
    assert verify.changed(before, after, earlier) == []
    rows = audit_rows(warehouse_db, manual.run_id)
    earlier_items = verify.items_of(SEED, set(earlier))
    resent = [row for row in rows if row[1] != "check" and row[2].lower() in earlier_items[row[:2]]]
    assert resent == []  # what the first run proved is not sent again ...
    summary = xcom(manual, "summarize")
    assert summary["lemlist add_unsubscribe"]["done_earlier"] >= len(earlier)  # ... it is reported as proven
    assert summary["lemlist add_unsubscribe"]["done"] == len(today) + len(from_lemlist)
    assert ("lemlist", "add_unsubscribe", "unknown.person@example.org", "done") in rows
    checked = {row[2] for row in rows if row[:2] == ("lemlist", "check")}
    assert {e.lower() for e in earlier + today + from_lemlist} <= checked  # every opt-out, not only new ones

    again = run_dag(sync, logical_date=None)
    assert again.state == "success", task_states(again)
    totals = xcom(again, "summarize")
    assert all(
        totals[key].get("done", 0) == 0 and totals[key].get("failed", 0) == 0 for key in ACTIONS if key in totals
    )


def test_the_check_catches_a_person_re_added_and_the_next_run_removes_them(bag, sandbox, connections, warehouse_db):
    sandbox.reset(SEED)
    enrolled = [c["email"].lower() for camp in SEED["leadlex"]["campaigns"] for c in camp.get("contacts", [])]
    warehouse.add_optouts(warehouse_db, [enrolled[0]], pendulum.datetime(2026, 10, 1, tz="UTC"))
    sync = bag.get_dag("outreach_suppression_sync")
    assert run_dag(sync, logical_date=None).state == "success"
    campaign_id, contact_id, email = scenario.enrollments_of(SEED, [enrolled[0]])[0]
    sandbox.seed(
        {"leadlex": {"campaigns": [{"id": campaign_id, "contacts": [{"contact_id": contact_id, "email": email}]}]}}
    )

    caught = run_dag(sync, logical_date=None)

    assert caught.state == "failed"
    assert {ti.task_id for ti in caught.get_task_instances() if ti.state == "failed"} == {"check_leadlex"}
    assert [(v, i) for v, a, i, o in audit_rows(warehouse_db, caught.run_id) if o == "not_honoured"] == [
        ("leadlex", contact_id)
    ]

    fixed = run_dag(sync, logical_date=None)  # the check voided the proof: the contact is removed again

    assert fixed.state == "success", task_states(fixed)
    assert ("leadlex", "remove_contact", contact_id, "done") in audit_rows(warehouse_db, fixed.run_id)
    assert verify.suppression_state(sandbox.state(), [email])["leadlex"]["not_honoured"] == []


def test_asset_triggered_suppression_handles_the_producers_batch(bag, sandbox, connections, warehouse_db):
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.asset import AssetEvent
    else:  # datasets on Airflow 2
        from airflow.models.dataset import DatasetEvent as AssetEvent

    sandbox.reset(SEED)
    people = warehouse.emails_in(SEED)[:12]
    produced = run_dag(bag.get_dag("crm_optouts_producer"), run_conf={"emails": people})
    assert produced.state == "success", task_states(produced)
    with create_session() as session:
        event = session.scalars(select(AssetEvent).order_by(AssetEvent.id.desc())).first()
        assert (event.asset if AIRFLOW_V_3_0_PLUS else event.dataset).uri == "warehouse://crm/optouts"
        batch_id = event.extra["batch_id"]
    assert event.extra["count"] == 12
    warehouse.add_optouts(warehouse_db, warehouse.emails_in(SEED)[12:20], pendulum.datetime(2026, 11, 1, tz="UTC"))

    consumer = bag.get_dag("outreach_suppression_on_asset")
    dr = run_dag(consumer, run_conf={"batch_ids": [batch_id]})
    assert dr.state == "success", task_states(dr)
    for tool, parts in verify.suppression_state(sandbox.state(), people).items():
        assert parts["not_honoured"] == [], tool
    acted = {row[2].lower() for row in audit_rows(warehouse_db, dr.run_id) if row[0] == "lemlist"}
    assert acted == {e.lower() for e in people}  # exactly the batch, not the other opt-outs
