"""The suppression example DAGs, run end to end against the sandbox and a SQLite warehouse."""

from __future__ import annotations

import ast
import json
import sqlite3

import pendulum
import pytest

from demo import verify, warehouse
from demo.scenario import lemlist_origin_people, simulate_earlier_syncs
from tests.conftest import REPO
from tests.dagtest import dag_bag, run_dag, task_states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

SEED = json.loads((REPO / "airflow_provider_outreach" / "sandbox" / "demo_seed.json").read_text())


@pytest.fixture(scope="module")
def bag():
    return dag_bag(str(REPO / "example_dags"))


@pytest.fixture
def warehouse_db(tmp_path, monkeypatch):
    path = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_OUTREACH_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def test_example_dags_load_without_errors_or_network(bag, sandbox):
    assert bag.import_errors == {}
    assert {
        "outreach_suppression_sync",
        "outreach_suppression_on_asset",
        "crm_optouts_producer",
        "outreach_draft_campaign_cleanup",
    } <= set(bag.dag_ids)
    assert sandbox.requests() == []  # parsing sent nothing
    for path in (REPO / "example_dags").glob("*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc) > 200, f"{path.name} needs a docstring a user can follow"
    assert bag.get_dag("outreach_suppression_on_asset").timetable.asset_condition is not None


def test_suppression_sync_honours_the_days_optouts_everywhere(bag, sandbox, connections, warehouse_db):
    sandbox.reset(SEED)
    people = warehouse.emails_in(SEED)
    in_window, earlier = people[1::5], people[3::11][:6]
    earlier = [e for e in earlier if e not in in_window]
    day = pendulum.datetime(2026, 11, 24, tz="UTC")
    warehouse.build(warehouse_db, SEED, in_window + ["Unknown.Person@example.org"], earlier, day)
    simulate_earlier_syncs(SEED, earlier, warehouse_db, day.subtract(days=2))
    from_lemlist = lemlist_origin_people(SEED, {e.lower() for e in in_window + earlier}, n=3)
    sandbox.seed({"lemlist": {"unsubscribes": [{"value": e, "source": "lead"} for e in from_lemlist]}})
    before = sandbox.state()

    dr = run_dag(bag.get_dag("outreach_suppression_sync"), logical_date=day.add(days=1))

    assert dr.state == "success", task_states(dr)
    after = sandbox.state()
    for tool, parts in verify.suppression_state(after, in_window + from_lemlist).items():
        assert parts["not_honoured"] == [], tool
    assert verify.changed(before, after, earlier) == []
    summary = xcom(dr, "summary")
    assert summary["lemlist add_unsubscribe"]["done"] == len(in_window) + 1 + len(from_lemlist)
    audit = (
        sqlite3.connect(warehouse_db)
        .execute("SELECT vendor, action, item, outcome, dag_id, run_id FROM outreach_suppression_audit")
        .fetchall()
    )
    actions = [row for row in audit if row[1] != "check"]
    assert len(actions) == sum(sum(c.values()) for c in summary.values())
    assert {row[4] for row in audit} == {"outreach_suppression_sync"} and {row[5] for row in audit} == {dr.run_id}
    assert ("lemlist", "add_unsubscribe", "unknown.person@example.org", "done") in {row[:4] for row in audit}
    checks = {(row[0], row[3]) for row in audit if row[1] == "check"}
    assert checks == {("lemlist", "honoured"), ("leadlex", "honoured"), ("dialnexa", "honoured")}
    # the tables the loop pulled from the tools
    db = sqlite3.connect(warehouse_db)
    pulled = dict(db.execute("SELECT value, source FROM lemlist_unsubscribes WHERE kind = 'email'").fetchall())
    assert {e: "lead" for e in from_lemlist}.items() <= pulled.items()
    enrolled = {row[0] for row in db.execute("SELECT DISTINCT lower(email) FROM leadlex_enrollments")}
    assert enrolled and not enrolled & {e.lower() for e in earlier}  # removed by the earlier runs
    checked_lemlist = {row[2] for row in audit if row[:2] == ("lemlist", "check")}
    assert {
        e.lower() for e in in_window + earlier + from_lemlist
    } <= checked_lemlist  # every opt-out, not only the day's

    # a rerun of the same day is safe: nothing new is done, nothing fails
    rerun = run_dag(bag.get_dag("outreach_suppression_sync"), logical_date=day.add(days=1))
    assert rerun.state == "success", task_states(rerun)
    again = xcom(rerun, "summary")
    assert again.get("leadlex remove_contact", {}).get("done", 0) == 0
    assert again["dialnexa remove_campaign_lead"]["done"] == 0
    assert all(counts.get("failed", 0) == 0 for counts in again.values())


def test_the_check_catches_a_person_re_added_after_an_earlier_sync(bag, sandbox, connections, warehouse_db):
    sandbox.reset(SEED)
    people = warehouse.emails_in(SEED)
    day = pendulum.datetime(2026, 11, 24, tz="UTC")
    enrolled = [c["email"].lower() for camp in SEED["leadlex"]["campaigns"] for c in camp.get("contacts", [])]
    earlier = [enrolled[0]]
    warehouse.build(warehouse_db, SEED, people[1:3], earlier, day)
    campaign_id, contact_id, email = simulate_earlier_syncs(SEED, earlier, warehouse_db, day.subtract(days=2))
    sandbox.seed(
        {"leadlex": {"campaigns": [{"id": campaign_id, "contacts": [{"contact_id": contact_id, "email": email}]}]}}
    )

    dr = run_dag(bag.get_dag("outreach_suppression_sync"), logical_date=day.add(days=1))

    assert dr.state == "failed"
    failed = {ti.task_id for ti in dr.get_task_instances() if ti.state == "failed"}
    assert failed == {"check_leadlex"}
    caught = (
        sqlite3.connect(warehouse_db)
        .execute("SELECT vendor, item FROM outreach_suppression_audit WHERE outcome = 'not_honoured'")
        .fetchall()
    )
    assert caught == [("leadlex", contact_id)]


def test_asset_triggered_suppression_handles_the_producers_batch(bag, sandbox, connections, warehouse_db):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    sandbox.reset(SEED)
    warehouse.build(warehouse_db, SEED, [], [], pendulum.datetime(2026, 11, 1, tz="UTC"))
    people = warehouse.emails_in(SEED)[:12]
    produced = run_dag(bag.get_dag("crm_optouts_producer"), run_conf={"emails": people})
    assert produced.state == "success", task_states(produced)
    with create_session() as session:
        event = session.scalars(select(AssetEvent).order_by(AssetEvent.id.desc())).first()
        assert event.asset.uri == "warehouse://crm/optouts"
        batch_id = event.extra["batch_id"]
    assert event.extra["count"] == 12

    consumer = bag.get_dag("outreach_suppression_on_asset")
    dr = run_dag(consumer, run_conf={"batch_ids": [batch_id]})
    assert dr.state == "success", task_states(dr)
    for tool, parts in verify.suppression_state(sandbox.state(), people).items():
        assert parts["not_honoured"] == [], tool
