"""LeadlexDeleteCampaignOperator: drafts only, checked right before each DELETE."""

from __future__ import annotations

from airflow_provider_outreach.operators.leadlex import LeadlexDeleteCampaignOperator


def _deletes(sandbox):
    return [r for r in sandbox.requests(vendor="leadlex") if r["method"] == "DELETE"]


def test_refuses_non_draft_without_sending_a_delete(seeded, context):
    op = LeadlexDeleteCampaignOperator(task_id="t", campaign_id=["cmp_active", "cmp_done"], fail_on_error=False)
    report = op.execute(context)
    assert sorted(report["items"]["failed"]) == ["cmp_active", "cmp_done"]
    messages = {f["item"]: f for f in report["failures"]}
    assert messages["cmp_active"]["reason"] == "campaign_not_draft"
    assert "campaign cmp_active is active, not draft" in messages["cmp_active"]["message"]
    assert "campaign cmp_done is completed" in messages["cmp_done"]["message"]
    assert _deletes(seeded) == []
    assert {"cmp_active", "cmp_done"} <= set(seeded.state()["leadlex"]["campaigns"])


def test_deletes_a_draft_and_counts_a_missing_one_as_absent(seeded, context):
    op = LeadlexDeleteCampaignOperator(task_id="t", campaign_id=["cmp_draft", "cmp_gone"])
    report = op.execute(context)
    assert report["items"] == {"done": ["cmp_draft"], "already_absent": ["cmp_gone"], "failed": []}
    assert "cmp_draft" not in seeded.state()["leadlex"]["campaigns"]
    assert [r["path"] for r in _deletes(seeded)] == ["/v1/campaigns/cmp_draft"]


def test_status_change_between_check_and_delete_is_reported(seeded, context):
    # the campaign starts right after the operator has read it as a draft
    seeded.set_campaign_status("leadlex", "cmp_draft", "active", after_reads=1)
    op = LeadlexDeleteCampaignOperator(task_id="t", campaign_id="cmp_draft", fail_on_error=False)
    report = op.execute(context)
    (failure,) = report["failures"]
    assert (failure["item"], failure["status"], failure["code"], failure["reason"]) == (
        "cmp_draft",
        409,
        "campaign_not_draft",
        "campaign_not_draft",
    )
    assert [r["status"] for r in _deletes(seeded)] == [409]
    assert seeded.state()["leadlex"]["campaigns"]["cmp_draft"]["status"] == "active"


def test_dry_run_only_checks_the_connection_and_deletes_nothing(seeded, context):
    report = LeadlexDeleteCampaignOperator(task_id="t", campaign_id="cmp_draft", dry_run=True).execute(context)
    assert report["items"]["would_do"] == ["cmp_draft"]
    assert [(r["method"], r["path"]) for r in seeded.requests()] == [("GET", "/v1/campaigns")]


def test_refusal_says_what_the_campaign_is_and_that_nothing_was_sent(seeded, context):
    op = LeadlexDeleteCampaignOperator(task_id="t", campaign_id="cmp_active", fail_on_error=False)
    (failure,) = op.execute(context)["failures"]
    assert (failure["status"], failure["code"], failure["reason"]) == (None, "campaign_not_draft", "campaign_not_draft")
    assert "no answer" not in failure["message"]
    assert failure["message"] == "leadlex campaign cmp_active is active, not draft: not deleted"
