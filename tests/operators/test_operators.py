"""Every operator over real HTTP against the sandbox: outcomes, end state, options."""

from __future__ import annotations

import sqlite3

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_outreach.exceptions import InvalidInputError
from airflow_provider_outreach.operators.dialnexa import DialnexaRemoveCampaignLeadOperator
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator
from airflow_provider_outreach.operators.lemlist import (
    LemlistAddUnsubscribeOperator,
    LemlistDeleteLeadOperator,
    LemlistMarkNotInterestedOperator,
    LemlistUnsubscribeLeadOperator,
)

REPORT_KEYS = {"vendor", "action", "dry_run", "counts", "items", "failures", "duplicates"}


def _writes(sandbox):
    return [r for r in sandbox.requests() if r["method"] in ("DELETE", "POST")]


def test_unsubscribe_single_email(seeded, context):
    op = LemlistUnsubscribeLeadOperator(task_id="t", email="ann@example.com", campaign_id="cam_running")
    report = op.execute(context)
    assert set(report) == REPORT_KEYS
    assert report["vendor"] == "lemlist" and report["action"] == "unsubscribe_lead" and report["dry_run"] is False
    assert report["counts"] == {"done": 1, "already_absent": 0, "failed": 0}
    assert report["items"]["done"] == ["ann@example.com"]
    assert seeded.state()["lemlist"]["campaigns"]["cam_running"]["leads"]["lea_ann"]["state"] == "unsubscribed"


def test_unsubscribe_list_with_mixed_outcomes_duplicates_and_invalid(seeded, context):
    LemlistUnsubscribeLeadOperator(task_id="pre", email="bob@example.com", campaign_id="cam_running").execute(context)
    emails = ["ann@example.com", "ANN@example.com ", "bob@example.com", "zed@example.com", "not-an-email", ""]
    op = LemlistUnsubscribeLeadOperator(task_id="t", email=emails, campaign_id="cam_running", fail_on_error=False)
    seeded.clear_requests()
    report = op.execute(context)
    assert report["items"]["done"] == ["ann@example.com"]
    assert sorted(report["items"]["already_absent"]) == ["bob@example.com", "zed@example.com"]
    assert sorted(report["items"]["failed"]) == ["", "not-an-email"]
    assert report["counts"] == {"done": 1, "already_absent": 2, "failed": 2}
    assert report["duplicates"] == 1
    reasons = {f["item"]: f for f in report["failures"]}
    assert reasons["not-an-email"]["reason"] == "invalid" and "not a valid email" in reasons["not-an-email"]["message"]
    assert reasons[""]["status"] is None
    # invalid items were never sent; each valid one exactly once (after the campaign was read once)
    assert [r["method"] for r in seeded.requests()][0] == "GET"
    assert sorted(r["segments"][-1] for r in _writes(seeded)) == [
        "ann@example.com",
        "bob@example.com",
        "zed@example.com",
    ]
    leads = seeded.state()["lemlist"]["campaigns"]["cam_running"]["leads"]
    assert {lid: lead["state"] for lid, lead in leads.items()} == {
        "lea_ann": "unsubscribed",
        "lea_bob": "unsubscribed",
        "lea_cat": "active",
    }


def test_missing_ok_false_makes_404_a_failure(seeded, context):
    op = LemlistDeleteLeadOperator(
        task_id="t", lead_id=["lea_cat", "lea_nope"], campaign_id="cam_running", missing_ok=False, fail_on_error=False
    )
    report = op.execute(context)
    assert report["items"]["done"] == ["lea_cat"]
    assert report["items"]["failed"] == ["lea_nope"]
    (failure,) = report["failures"]
    assert (failure["status"], failure["reason"]) == (404, "not_found")
    assert "Lead not found" in failure["message"]


def test_fail_on_error_fails_only_after_every_item_was_tried(seeded, context):
    op = DialnexaRemoveCampaignLeadOperator(task_id="t", campaign_lead_id=["cl_old", "cl_ann", "cl_bob"])
    with pytest.raises(AirflowFailException, match="1 of 3 items failed") as err:
        op.execute(context)
    assert "cl_old" in str(err.value) and "No retry can help" in str(err.value)
    assert len(_writes(seeded)) == 3
    assert context["ti"].xcoms["report"]["counts"] == {"done": 2, "already_absent": 0, "failed": 1}


def test_missing_campaign_fails_before_any_item(seeded, context):
    op = LemlistDeleteLeadOperator(task_id="t", lead_id=["lea_ann", "lea_bob", "lea_cat"], campaign_id="cam_missing")
    with pytest.raises(AirflowFailException, match="campaign cam_missing not found on lemlist"):
        op.execute(context)
    assert [(r["method"], r["path"]) for r in seeded.requests()] == [("GET", "/campaigns/cam_missing")]


def test_dry_run_changes_nothing(seeded, context):
    before = seeded.state()
    op = LeadlexRemoveContactOperator(
        task_id="t",
        contact_id=["ctc_ann", "ctc_bob", ".."],
        campaign_id="cmp_active",
        dry_run=True,
        fail_on_error=False,
    )
    report = op.execute(context)
    assert report["dry_run"] is True
    assert report["counts"] == {"done": 0, "already_absent": 0, "failed": 1, "would_do": 2}
    assert report["items"]["would_do"] == ["ctc_ann", "ctc_bob"]
    # only the preflight read of the campaign
    assert [(r["method"], r["path"]) for r in seeded.requests()] == [("GET", "/v1/campaigns/cmp_active")]
    assert seeded.state() == before


def test_mark_not_interested_by_id_and_email(seeded, context):
    op = LemlistMarkNotInterestedOperator(task_id="t", lead=["lea_ann", "cat@example.com", "ghost@example.com"])
    report = op.execute(context)
    assert sorted(report["items"]["done"]) == ["cat@example.com", "lea_ann"]
    assert report["items"]["already_absent"] == ["ghost@example.com"]
    leads = seeded.state()["lemlist"]["campaigns"]["cam_running"]["leads"]
    assert [lid for lid, lead in leads.items() if lead.get("notInterested")] == ["lea_ann", "lea_cat"]


def test_add_unsubscribe_emails_and_domains(seeded, context):
    op = LemlistAddUnsubscribeOperator(
        task_id="t",
        value=["dan@example.com", "@competitor.io", "@bad domain", "abuse@example.com"],
        fail_on_error=False,
    )
    report = op.execute(context)
    assert sorted(report["items"]["done"]) == ["@competitor.io", "abuse@example.com", "dan@example.com"]
    assert report["items"]["failed"] == ["@bad domain"]
    assert {"dan@example.com", "@competitor.io", "abuse@example.com"} <= set(seeded.state()["lemlist"]["unsubscribes"])


def test_leadlex_remove_contacts(seeded, context):
    op = LeadlexRemoveContactOperator(task_id="t", contact_id=["ctc_ann", "ctc_zed"], campaign_id="cmp_active")
    report = op.execute(context)
    assert report["items"] == {"done": ["ctc_ann"], "already_absent": ["ctc_zed"], "failed": []}
    assert set(seeded.state()["leadlex"]["campaigns"]["cmp_active"]["contacts"]) == {"ctc_bob"}


def test_dialnexa_409_is_its_own_reason(seeded, context):
    op = DialnexaRemoveCampaignLeadOperator(
        task_id="t", campaign_lead_id=["cl_ann", "cl_old", "cl_gone"], fail_on_error=False
    )
    report = op.execute(context)
    assert report["items"] == {"done": ["cl_ann"], "already_absent": ["cl_gone"], "failed": ["cl_old"]}
    (failure,) = report["failures"]
    assert (failure["status"], failure["code"], failure["reason"]) == (409, "Conflict", "campaign_closed")
    leads = seeded.state()["dialnexa"]["leads"]
    assert leads["cl_ann"]["status"] == "removed" and leads["cl_old"]["status"] == "completed"


def test_bad_fixed_parameter_fails_before_any_request(seeded, context):
    op = LemlistUnsubscribeLeadOperator(task_id="t", email=["ann@example.com"], campaign_id="..")
    with pytest.raises(InvalidInputError, match="campaign_id"):
        op.execute(context)
    assert seeded.requests() == []


def test_max_inline_wait_that_is_no_number_fails_before_any_request(seeded, context):
    op = LemlistUnsubscribeLeadOperator(
        task_id="t", email="ann@example.com", campaign_id="cam_running", max_inline_wait="{{ a typo }}"
    )
    with pytest.raises(InvalidInputError, match="max_inline_wait must be a number of seconds"):
        op.execute(context)
    assert seeded.requests() == []


def test_audit_rows_one_per_item(seeded, context, tmp_path, monkeypatch):
    db = tmp_path / "audit.db"
    monkeypatch.setenv("AIRFLOW_CONN_AUDIT_DB", f'{{"conn_type": "sqlite", "host": "{db}"}}')
    op = LemlistUnsubscribeLeadOperator(
        task_id="audit_task",
        email=["ann@example.com", "zed@example.com", "bad"],
        campaign_id="cam_running",
        fail_on_error=False,
        audit_conn_id="audit_db",
        audit_table="outreach_audit",
    )
    op.execute(context)
    rows = (
        sqlite3.connect(db)
        .execute("SELECT vendor, action, item, outcome, status, task_id, run_id FROM outreach_audit ORDER BY item")
        .fetchall()
    )
    assert rows == [
        ("lemlist", "unsubscribe_lead", "ann@example.com", "done", None, "audit_task", "direct_run"),
        ("lemlist", "unsubscribe_lead", "bad", "failed", None, "audit_task", "direct_run"),
        ("lemlist", "unsubscribe_lead", "zed@example.com", "already_absent", 404, "audit_task", "direct_run"),
    ]


def test_bad_audit_table_name_is_refused_before_any_request(seeded, context):
    op = LemlistUnsubscribeLeadOperator(
        task_id="t",
        email="ann@example.com",
        campaign_id="cam_running",
        audit_conn_id="x",
        audit_table="a; DROP TABLE b",
    )
    with pytest.raises(InvalidInputError, match="audit_table"):
        op.execute(context)
    assert seeded.requests() == []


def test_non_string_items_are_reported(seeded, context):
    op = DialnexaRemoveCampaignLeadOperator(
        task_id="t", campaign_lead_id=[["cl_ann"], None, {"id": 1}], fail_on_error=False
    )
    report = op.execute(context)
    assert report["items"]["done"] == ["cl_ann"]
    assert len(report["items"]["failed"]) == 2
    assert all(f["reason"] == "invalid" for f in report["failures"])


def test_missing_campaign_is_a_failure_even_with_missing_ok(seeded, context):
    op = LeadlexRemoveContactOperator(task_id="t", contact_id=["ctc_ann"], campaign_id="cmp_nope", fail_on_error=False)
    with pytest.raises(AirflowFailException, match="campaign cmp_nope not found on leadlex"):
        op.execute(context)
    assert _writes(seeded) == []


def test_dialnexa_closed_campaign_ok_counts_as_absent(seeded, context):
    op = DialnexaRemoveCampaignLeadOperator(task_id="t", campaign_lead_id=["cl_old", "cl_bob"], closed_campaign_ok=True)
    report = op.execute(context)
    assert report["items"] == {"done": ["cl_bob"], "already_absent": ["cl_old"], "failed": []}
