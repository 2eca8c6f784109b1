"""Operators inside real DAG runs (``dag.test()``): XCom templating, failure, quota deferral."""

from __future__ import annotations

import json
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred, task

from airflow_provider_outreach.bulk.ledger import PROGRESS_KEY
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator
from airflow_provider_outreach.operators.lemlist import LemlistUnsubscribeLeadOperator
from tests.conftest import MemoryStateStore, RecordingTI
from tests.dagtest import new_dag, run_dag, task_states, xcom
from tests.seeds import base_seed

pytestmark = pytest.mark.usefixtures("airflow_db")


def _quota_seed(n: int) -> dict:
    contacts = [{"contact_id": f"ctc_{i:03d}", "email": f"p{i:03d}@example.com"} for i in range(n)]
    return {"leadlex": {"campaigns": [{"id": "cmp_big", "name": "Big", "status": "active", "contacts": contacts}]}}


@pytest.mark.needs_mappable_email
def test_ids_rendered_from_upstream_xcom(sandbox, connections):
    sandbox.seed(base_seed())
    with new_dag("outreach_xcom_ids") as dag:

        @task
        def optouts() -> list[str]:
            return ["ann@example.com", "cat@example.com", "nobody@example.com"]

        LemlistUnsubscribeLeadOperator(
            task_id="unsubscribe",
            email=optouts(),
            campaign_id="{{ params.campaign }}",
            params={"campaign": "cam_running"},
        )
        LemlistUnsubscribeLeadOperator.partial(task_id="mapped", campaign_id="cam_running").expand(
            email=[["bob@example.com"], "ann@example.com"]
        )
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    report = xcom(dr, "unsubscribe")
    assert sorted(report["items"]["done"] + report["items"]["already_absent"]) == [
        "ann@example.com",
        "cat@example.com",
        "nobody@example.com",
    ]
    assert "nobody@example.com" in report["items"]["already_absent"]
    assert xcom(dr, "mapped", map_index=0)["items"]["done"] == ["bob@example.com"]
    leads = sandbox.state()["lemlist"]["campaigns"]["cam_running"]["leads"]
    assert all(lead["state"] == "unsubscribed" for lead in leads.values())


def test_failed_items_fail_the_task_after_all_were_tried(sandbox, connections):
    sandbox.seed(base_seed())
    with new_dag("outreach_fail_on_error") as dag:
        LeadlexRemoveContactOperator(
            task_id="remove", contact_id=["ctc_ann", "..", "ctc_bob"], campaign_id="cmp_active"
        )
    dr = run_dag(dag)
    assert dr.state == "failed"
    assert set(sandbox.state()["leadlex"]["campaigns"]["cmp_active"]["contacts"]) == set()
    report = xcom(dr, "remove", key="report")
    assert report["counts"] == {"done": 2, "already_absent": 0, "failed": 1}


@pytest.mark.needs_task_state_store
def test_quota_wait_defers_and_resumes_without_repeating_items(sandbox, connections):
    sandbox.seed(_quota_seed(15))
    sandbox.configure(limits={"leadlex": [{"limit": 6, "window": 3}]})
    ids = [f"ctc_{i:03d}" for i in range(15)]
    with new_dag("outreach_quota_defer") as dag:
        LeadlexRemoveContactOperator(
            task_id="remove", contact_id=ids, campaign_id="cmp_big", max_inline_wait=1, max_workers=2
        )
    started = time.monotonic()
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    assert time.monotonic() - started >= 6  # two quota resets were waited for
    report = xcom(dr, "remove")
    assert report["counts"] == {"done": 15, "already_absent": 0, "failed": 0}
    deletes = [r for r in sandbox.requests(vendor="leadlex") if r["method"] == "DELETE"]
    assert sorted(r["segments"][-1] for r in deletes if r["status"] == 200) == ids
    assert len([r for r in deletes if r["status"] == 200]) == 15, "an item was sent twice"
    assert sandbox.state()["leadlex"]["campaigns"]["cmp_big"]["contacts"] == {}
    ti = dr.get_task_instance("remove")
    assert ti.try_number == 1


def test_quota_wait_in_a_dag_run_resumes_from_the_audit_table(sandbox, connections, tmp_path, monkeypatch):
    """On every Airflow version: the run defers on the quota, resumes on dag.test()'s triggerer
    and finishes each item once, its progress read back from the audit table."""
    monkeypatch.setenv("AIRFLOW_CONN_AUDIT_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "a.db")}))
    sandbox.seed(_quota_seed(8))
    sandbox.configure(limits={"leadlex": [{"limit": 5, "window": 3}]})
    ids = [f"ctc_{i:03d}" for i in range(8)]
    with new_dag("outreach_quota_defer_audit") as dag:
        LeadlexRemoveContactOperator(
            task_id="remove",
            contact_id=ids,
            campaign_id="cmp_big",
            max_inline_wait=1,
            max_workers=2,
            audit_conn_id="audit_db",
            audit_table="audit",
        )
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    assert xcom(dr, "remove")["counts"] == {"done": 8, "already_absent": 0, "failed": 0}
    deletes = [r for r in sandbox.requests(vendor="leadlex") if r["method"] == "DELETE" and r["status"] == 200]
    assert sorted(r["segments"][-1] for r in deletes) == ids  # each exactly once: the resume did not start over


def test_resume_as_the_triggerer_drives_it(sandbox, connections, progress):
    """A real triggerer calls the method named in defer(); the progress waits in the task state store
    (below Airflow 3.3: in the deferral's kwargs), compact."""
    sandbox.seed(_quota_seed(8))
    sandbox.configure(limits={"leadlex": [{"limit": 5, "window": 2}]})
    ids = [f"ctc_{i:03d}" for i in range(8)]
    op = LeadlexRemoveContactOperator(
        task_id="remove", contact_id=ids, campaign_id="cmp_big", max_inline_wait=0.5, max_workers=1
    )
    with pytest.raises(TaskDeferred) as deferred:
        progress.execute(op)
    assert progress.ti.xcoms == {}
    assert len(json.dumps(progress.saved(PROGRESS_KEY, deferred.value))) < 1000  # compact: no item list
    report = progress.resume(op, deferred.value)
    assert report["counts"]["done"] == 8
    assert sorted(report["items"]["done"]) == ids
    deletes = [r for r in sandbox.requests(vendor="leadlex") if r["method"] == "DELETE"]
    assert sorted(r["segments"][-1] for r in deletes if r["status"] == 200) == ids  # each exactly once
    assert progress.left_over() == {}  # cleared when the task ends


@pytest.mark.needs_task_state_store
def test_a_retry_sends_only_what_has_no_final_outcome(sandbox, connections):
    """Try 1 ends on transient failures; try 2 (same task state store) sends only those items."""
    sandbox.seed(_quota_seed(6))
    ids = [f"ctc_{i:03d}" for i in range(6)]
    sandbox.inject("leadlex", ["ok", "503", "ok", "ok", "503", "ok", "ok"])  # preflight, then the items
    store = MemoryStateStore()

    class OneAttempt(LeadlexRemoveContactOperator):
        def get_hook(self):
            return self.spec.hook_class(self.conn_id, max_attempts=1)

    op = OneAttempt(task_id="remove", contact_id=ids, campaign_id="cmp_big", max_workers=1)
    first_ti = RecordingTI()
    with pytest.raises(AirflowException, match="2 of 6 items failed") as err:
        op.execute({"ti": first_ti, "task_state_store": store})
    assert not isinstance(err.value, AirflowFailException)  # transient: Airflow retries
    failed = sorted(first_ti.xcoms["report"]["items"]["failed"])
    assert len(failed) == 2
    sandbox.clear_requests()
    report = op.execute({"ti": RecordingTI(), "task_state_store": store})
    assert report["counts"] == {"done": 6, "already_absent": 0, "failed": 0}
    deletes = [r["segments"][-1] for r in sandbox.requests(vendor="leadlex") if r["method"] == "DELETE"]
    assert sorted(deletes) == failed
    assert store.get(PROGRESS_KEY) is None


def test_a_quota_spent_before_the_first_item_defers_too(sandbox, connections, progress):
    """Another task of the key spent the quota: the connection check itself waits on the triggerer."""
    from airflow_provider_outreach.hooks.leadlex import LeadlexHook

    sandbox.seed(_quota_seed(3))
    sandbox.configure(limits={"leadlex": [{"limit": 2, "window": 3}]})
    LeadlexHook().get_campaign("cmp_big")
    LeadlexHook().get_campaign("cmp_big")  # the window is spent
    op = LeadlexRemoveContactOperator(
        task_id="remove", contact_id=["ctc_000", "ctc_001"], campaign_id="cmp_big", max_inline_wait=0.5, max_workers=1
    )
    with pytest.raises(TaskDeferred) as deferred:
        progress.execute(op)
    assert not [r for r in sandbox.requests(vendor="leadlex") if r["method"] == "DELETE"]
    report, waiting = None, deferred.value
    for _ in range(4):  # each window of 2 requests holds the connection check and one item
        try:
            report = progress.resume(op, waiting)
            break
        except TaskDeferred as again:
            waiting = again
    assert report is not None and report["counts"]["done"] == 2
    deletes = [r for r in sandbox.requests(vendor="leadlex") if r["method"] == "DELETE" and r["status"] == 200]
    assert sorted(r["segments"][-1] for r in deletes) == ["ctc_000", "ctc_001"]  # each sent once
