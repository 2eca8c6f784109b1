"""Operators inside real DAG runs (``dag.test()``): XCom templating, failure, quota deferral."""

from __future__ import annotations

import json
import time

import pytest
from airflow.sdk import task
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_outreach.operators.base import RESUME_XCOM_KEY
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator
from airflow_provider_outreach.operators.lemlist import LemlistUnsubscribeLeadOperator
from tests.conftest import RecordingTI
from tests.dagtest import new_dag, run_dag, task_states, xcom
from tests.seeds import base_seed

pytestmark = pytest.mark.usefixtures("airflow_db")


def _quota_seed(n: int) -> dict:
    contacts = [{"contact_id": f"ctc_{i:03d}", "email": f"p{i:03d}@example.com"} for i in range(n)]
    return {"leadlex": {"campaigns": [{"id": "cmp_big", "name": "Big", "status": "active", "contacts": contacts}]}}


def test_ids_rendered_from_upstream_xcom(sandbox, connections):
    sandbox.seed(base_seed())
    with new_dag("outreach_xcom_ids") as dag:

        @task
        def optouts() -> list[str]:
            return ["ann@example.com", "cat@example.com", "nobody@example.com"]

        LemlistUnsubscribeLeadOperator(
            task_id="unsubscribe", email=optouts(), campaign_id="{{ params.campaign }}", params={"campaign": "cam_running"}
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
        LeadlexRemoveContactOperator(task_id="remove", contact_id=["ctc_ann", "..", "ctc_bob"], campaign_id="cmp_active")
    dr = run_dag(dag)
    assert dr.state == "failed"
    assert set(sandbox.state()["leadlex"]["campaigns"]["cmp_active"]["contacts"]) == set()
    report = xcom(dr, "remove", key="report")
    assert report["counts"] == {"done": 2, "already_absent": 0, "failed": 1}


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


def test_resume_as_the_triggerer_drives_it(sandbox, connections):
    """A real triggerer hands the defer() kwargs back to the method named in defer()."""
    sandbox.seed(_quota_seed(8))
    sandbox.configure(limits={"leadlex": [{"limit": 5, "window": 2}]})
    ids = [f"ctc_{i:03d}" for i in range(8)]
    op = LeadlexRemoveContactOperator(
        task_id="remove", contact_id=ids, campaign_id="cmp_big", max_inline_wait=0.5, max_workers=1
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": RecordingTI()})
    trigger_cls, trigger_kwargs = deferred.value.trigger.serialize()
    assert trigger_cls.endswith("DateTimeTrigger")
    state = json.loads(json.dumps(deferred.value.kwargs))["state"]  # JSON-only: survives the metadata DB
    assert state["report"]["counts"]["done"] == 5 and len(state["pending"]) == 3
    wait = (trigger_kwargs["moment"] - __import__("pendulum").now("UTC")).total_seconds()
    time.sleep(max(0.0, wait))
    fresh_ti = RecordingTI()  # no XCom: the kwargs alone must be enough
    report = op.resume_execution(
        deferred.value.method_name, {**deferred.value.kwargs, "event": trigger_kwargs["moment"]}, {"ti": fresh_ti}
    )
    assert report["counts"]["done"] == 8
    assert sorted(report["items"]["done"]) == ids
    assert len([r for r in sandbox.requests(vendor="leadlex") if r["status"] == 200]) == 8


def test_resume_without_kwargs_uses_the_saved_progress(sandbox, connections):
    sandbox.seed(_quota_seed(4))
    sandbox.configure(limits={"leadlex": [{"limit": 2, "window": 2}]})
    ti = RecordingTI()
    op = LeadlexRemoveContactOperator(
        task_id="remove", contact_id=[f"ctc_{i:03d}" for i in range(4)], campaign_id="cmp_big", max_inline_wait=0.5, max_workers=1
    )
    with pytest.raises(TaskDeferred):
        op.execute({"ti": ti})
    assert ti.xcoms[RESUME_XCOM_KEY]["report"]["counts"]["done"] == 2
    time.sleep(2.5)
    report = op.execute_resume({"ti": ti}, event=None)
    assert report["counts"]["done"] == 4
