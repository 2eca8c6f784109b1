"""Read-back checks over real HTTP: honoured, not honoured, unreadable; audit rows with action
``check`` on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, BaseHook

from airflow_provider_outreach.operators.dialnexa import DialnexaSuppressionCheckOperator
from airflow_provider_outreach.operators.leadlex import LeadlexSuppressionCheckOperator
from airflow_provider_outreach.operators.lemlist import LemlistSuppressionCheckOperator
from tests.conftest import RecordingTI


def _audit(conn_id: str) -> dict[str, str]:
    rows = BaseHook.get_hook(conn_id).get_records("SELECT item, outcome, action FROM audit")
    assert {row[2] for row in rows} == {"check"}
    return {row[0]: row[1] for row in rows}


def test_lemlist_check(seeded, warehouse, context):
    seeded.inject("lemlist", ["ok", "ok", "ok", {"kind": "html500", "status": 404}])  # probe, 2 reads, a proxy page
    op = LemlistSuppressionCheckOperator(
        task_id="t",
        value=["abuse@example.com", "nobody@example.com", "broken@example.com"],
        max_workers=1,
        fail_on_not_honoured=False,
        fail_on_error=False,
        audit_conn_id=warehouse,
        audit_table="audit",
    )
    report = op.execute(context)
    assert report["items"] == {
        "honoured": ["abuse@example.com"],
        "not_honoured": ["nobody@example.com"],
        "failed": ["broken@example.com"],
    }
    assert report["failures"][0]["reason"] == "unexpected_response"
    assert _audit(warehouse) == {
        "abuse@example.com": "honoured",
        "nobody@example.com": "not_honoured",
        "broken@example.com": "failed",
    }
    assert all(r["method"] == "GET" for r in seeded.requests())


def test_a_check_that_finds_an_opt_out_not_honoured_fails_the_task(seeded, context):
    op = LemlistSuppressionCheckOperator(task_id="t", value=["abuse@example.com", "back@example.com"])
    with pytest.raises(AirflowFailException, match="1 of 2 opt-outs are not honoured in lemlist: back@example.com"):
        op.execute(context)
    assert context["ti"].xcoms["report"]["counts"] == {"honoured": 1, "not_honoured": 1, "failed": 0}


def test_leadlex_check_reads_the_enrollments_once_per_campaign(sandbox, connections, warehouse):
    contacts = [{"contact_id": f"ctc_{i:03d}", "email": f"p{i}@example.com"} for i in range(250)]
    sandbox.seed({"leadlex": {"campaigns": [{"id": "cmp_big", "status": "active", "contacts": contacts}]}})
    ids = ["ctc_000", "ctc_249", "ctc_gone1", "ctc_gone2"]
    op = LeadlexSuppressionCheckOperator(
        task_id="t",
        campaign_id="cmp_big",
        contact_id=ids,
        fail_on_not_honoured=False,
        audit_conn_id=warehouse,
        audit_table="audit",
    )
    report = op.execute({"ti": RecordingTI()})
    assert report["items"] == {
        "honoured": ["ctc_gone1", "ctc_gone2"],
        "not_honoured": ["ctc_000", "ctc_249"],
        "failed": [],
    }
    paths = [(r["path"], r["query"].get("page")) for r in sandbox.requests(vendor="leadlex")]
    assert paths == [
        ("/v1/campaigns/cmp_big", None),  # the preflight
        ("/v1/campaigns/cmp_big/contacts", ["1"]),
        ("/v1/campaigns/cmp_big/contacts", ["2"]),
        ("/v1/campaigns/cmp_big/contacts", ["3"]),
    ]
    assert _audit(warehouse) == {
        "ctc_000": "not_honoured",
        "ctc_249": "not_honoured",
        "ctc_gone1": "honoured",
        "ctc_gone2": "honoured",
    }


def test_leadlex_check_that_cannot_read_the_enrollments_fails_every_item_with_the_reason(
    sandbox, connections, warehouse, context
):
    sandbox.seed({"leadlex": {"campaigns": [{"id": "cmp_a", "status": "active", "contacts": []}]}})
    sandbox.inject("leadlex", ["ok", {"kind": "error", "status": 400}])  # the preflight, then the list
    op = LeadlexSuppressionCheckOperator(
        task_id="t", campaign_id="cmp_a", contact_id=["ctc_1", "ctc_2"], audit_conn_id=warehouse, audit_table="audit"
    )
    with pytest.raises(AirflowFailException, match="2 of 2 items failed"):
        op.execute(context)
    report = context["ti"].xcoms["report"]
    assert report["items"]["failed"] == ["ctc_1", "ctc_2"]
    assert {f["reason"] for f in report["failures"]} == {"InvalidRequestError"}
    assert all(f["status"] == 400 for f in report["failures"])
    assert _audit(warehouse) == {"ctc_1": "failed", "ctc_2": "failed"}  # the evidence says: could not check


def test_dialnexa_check(seeded, context):
    from airflow_provider_outreach.hooks.dialnexa import DialnexaHook

    DialnexaHook().remove_campaign_lead("cl_bob")
    seeded.inject("dialnexa", ["ok", "ok", "ok", "ok", {"kind": "empty", "status": 404}])
    op = DialnexaSuppressionCheckOperator(
        task_id="t",
        campaign_lead_id=["cl_bob", "cl_never", "cl_ann", "cl_odd"],
        max_workers=1,
        fail_on_not_honoured=False,
        fail_on_error=False,
    )
    report = op.execute(context)
    assert report["items"] == {"honoured": ["cl_bob", "cl_never"], "not_honoured": ["cl_ann"], "failed": ["cl_odd"]}
