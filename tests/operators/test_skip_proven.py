"""``skip_proven``: what the audit table proves done is not sent again, on SQLite and PostgreSQL.

The proof is an earlier run's ``done`` or ``already_absent`` row for the same vendor, action
and campaign; a later read-back check that found the item ``not_honoured`` voids it.
"""

from __future__ import annotations

import pytest
from airflow.sdk import BaseHook

from airflow_provider_outreach.operators.dialnexa import (
    DialnexaRemoveCampaignLeadOperator,
    DialnexaSuppressionCheckOperator,
)
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator
from airflow_provider_outreach.operators.lemlist import LemlistAddUnsubscribeOperator
from tests.conftest import RecordingTI

AUDIT = {"audit_conn_id": "audit_db", "audit_table": "proof_audit"}


def run(op, run_id: str):
    ti = RecordingTI(op.task_id)
    ti.run_id = run_id
    return op.execute({"ti": ti})


def sent(sandbox, vendor: str, method: str = "DELETE") -> list[str]:
    return [r["segments"][-1] for r in sandbox.requests(vendor=vendor) if r["method"] == method]


def leads(n: int, campaign: str = "cmp_a", status: str = "active") -> dict:
    return {
        "id": campaign,
        "status": status,
        "leads": [{"id": f"cl_{campaign}_{i}", "phone_number": "+15550000"} for i in range(n)],
    }


def test_items_proven_by_an_earlier_run_are_reported_not_sent(sandbox, connections, warehouse):
    sandbox.seed({"dialnexa": {"campaigns": [leads(4)]}})
    ids = [f"cl_cmp_a_{i}" for i in range(4)]
    first = run(DialnexaRemoveCampaignLeadOperator(task_id="rm", campaign_lead_id=ids[:2], **AUDIT), "run_1")
    assert first["counts"]["done"] == 2
    sandbox.clear_requests()

    second = run(
        DialnexaRemoveCampaignLeadOperator(task_id="rm", campaign_lead_id=ids, skip_proven=True, **AUDIT), "run_2"
    )

    assert sorted(sent(sandbox, "dialnexa")) == ids[2:]
    assert second["counts"]["done_earlier"] == 2 and second["counts"]["done"] == 2
    assert second["items"]["done_earlier"] == ids[:2]
    rows = BaseHook.get_hook(warehouse).get_records("SELECT item FROM proof_audit WHERE run_id = 'run_2'")
    assert sorted(r[0] for r in rows) == ids[2:]  # the proof already exists: no second row


def test_without_skip_proven_every_item_is_sent(sandbox, connections, warehouse):
    sandbox.seed({"dialnexa": {"campaigns": [leads(2)]}})
    ids = ["cl_cmp_a_0", "cl_cmp_a_1"]
    run(DialnexaRemoveCampaignLeadOperator(task_id="rm", campaign_lead_id=ids, **AUDIT), "run_1")
    sandbox.clear_requests()
    again = run(DialnexaRemoveCampaignLeadOperator(task_id="rm", campaign_lead_id=ids, **AUDIT), "run_2")
    assert sorted(sent(sandbox, "dialnexa")) == ids and again["counts"]["already_absent"] == 2


def test_a_later_check_that_found_it_not_honoured_voids_the_proof(sandbox, connections, warehouse):
    sandbox.seed({"dialnexa": {"campaigns": [leads(2)]}})
    ids = ["cl_cmp_a_0", "cl_cmp_a_1"]
    run(DialnexaRemoveCampaignLeadOperator(task_id="rm", campaign_lead_id=ids, **AUDIT), "run_1")
    back = {"id": "cl_cmp_a_0", "campaign_id": "cmp_a", "status": "pending"}
    sandbox.seed({"dialnexa": {"leads": [back]}})  # an import put it back in the queue
    check = DialnexaSuppressionCheckOperator(task_id="check", campaign_lead_id=ids, fail_on_not_honoured=False, **AUDIT)
    assert run(check, "run_1")["items"]["not_honoured"] == ["cl_cmp_a_0"]
    sandbox.clear_requests()

    again = run(
        DialnexaRemoveCampaignLeadOperator(task_id="rm", campaign_lead_id=ids, skip_proven=True, **AUDIT), "run_2"
    )

    assert sent(sandbox, "dialnexa") == ["cl_cmp_a_0"]
    assert again["items"]["done"] == ["cl_cmp_a_0"] and again["items"]["done_earlier"] == ["cl_cmp_a_1"]


def test_a_proof_holds_for_its_campaign_only(sandbox, connections, warehouse):
    contacts = [{"contact_id": "ctc_1", "email": "a@example.com"}]
    sandbox.seed(
        {
            "leadlex": {
                "campaigns": [
                    {"id": "llx_a", "status": "active", "contacts": contacts},
                    {"id": "llx_b", "status": "active", "contacts": contacts},
                ]
            }
        }
    )
    run(LeadlexRemoveContactOperator(task_id="rm", campaign_id="llx_a", contact_id="ctc_1", **AUDIT), "run_1")
    sandbox.clear_requests()

    in_b = run(
        LeadlexRemoveContactOperator(task_id="rm", campaign_id="llx_b", contact_id="ctc_1", skip_proven=True, **AUDIT),
        "run_2",
    )
    in_a = run(
        LeadlexRemoveContactOperator(task_id="rm", campaign_id="llx_a", contact_id="ctc_1", skip_proven=True, **AUDIT),
        "run_3",
    )

    assert in_b["items"]["done"] == ["ctc_1"] and in_a["items"]["done_earlier"] == ["ctc_1"]
    deletes = [r["path"] for r in sandbox.requests(vendor="leadlex") if r["method"] == "DELETE"]
    assert len(deletes) == 1 and "llx_b" in deletes[0]


def test_case_does_not_make_a_new_item_and_a_dry_run_lists_only_the_unproven(sandbox, connections, warehouse):
    run(LemlistAddUnsubscribeOperator(task_id="sup", value=["Ann@Example.com"], **AUDIT), "run_1")
    sandbox.clear_requests()
    dry = run(
        LemlistAddUnsubscribeOperator(
            task_id="sup", value=["ann@example.com", "bob@example.com"], skip_proven=True, dry_run=True, **AUDIT
        ),
        "run_2",
    )
    assert dry["items"]["done_earlier"] == ["ann@example.com"] and dry["items"]["would_do"] == ["bob@example.com"]
    assert [r for r in sandbox.requests(vendor="lemlist") if r["method"] == "POST"] == []


def test_rows_of_an_older_table_prove_nothing_for_a_campaign(sandbox, connections, warehouse):
    hook = BaseHook.get_hook(warehouse)
    hook.run(
        "CREATE TABLE proof_audit (vendor VARCHAR(32) NOT NULL, action VARCHAR(64) NOT NULL, item VARCHAR(2048) NOT NULL, "
        "outcome VARCHAR(32) NOT NULL, recorded_at VARCHAR(40) NOT NULL)"
    )
    hook.run(
        "INSERT INTO proof_audit VALUES ('leadlex', 'remove_contact', 'ctc_1', 'done', '2026-01-01T00:00:00.000000+00:00')"
    )
    sandbox.seed(
        {"leadlex": {"campaigns": [{"id": "llx_a", "status": "active", "contacts": [{"contact_id": "ctc_1"}]}]}}
    )
    report = run(
        LeadlexRemoveContactOperator(task_id="rm", campaign_id="llx_a", contact_id="ctc_1", skip_proven=True, **AUDIT),
        "run_2",
    )
    assert report["items"]["done"] == ["ctc_1"]  # which campaign the old row proved is unknown


def test_skip_proven_needs_the_audit_table_and_is_refused_for_a_check():
    with pytest.raises(ValueError, match="skip_proven reads the proof in the audit table"):
        DialnexaRemoveCampaignLeadOperator(task_id="rm", campaign_lead_id=["x"], skip_proven=True)
    with pytest.raises(ValueError, match="skip_proven does not apply"):
        DialnexaSuppressionCheckOperator(task_id="check", campaign_lead_id=["x"], skip_proven=True, **AUDIT)
