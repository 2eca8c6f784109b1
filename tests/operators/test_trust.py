"""A green run proves every opt-out was honoured: absence proven, preflight, circuit breaker,
evidence that keeps pace with the calls, bounded XCom. Over real HTTP against the sandbox."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_outreach.operators.dialnexa import DialnexaRemoveCampaignLeadOperator
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator
from airflow_provider_outreach.operators.lemlist import LemlistMarkNotInterestedOperator, LemlistUnsubscribeLeadOperator
from airflow_provider_outreach.sandbox import DEFAULT_KEYS


def _writes(sandbox, vendor=None):
    return [r for r in sandbox.requests(vendor=vendor) if r["method"] in ("DELETE", "POST")]


def _dialnexa_seed(n: int) -> dict:
    leads = [{"id": f"cl_{i:05d}", "phone_number": f"+1555{i:07d}", "status": "pending"} for i in range(n)]
    return {"dialnexa": {"campaigns": [{"id": "cmp_bulk", "name": "Bulk", "status": "active", "leads": leads}]}}


# -- 1. a base URL without the API prefix fails before any item, naming the base URL ----------

OPERATORS = {
    "lemlist": lambda: LemlistUnsubscribeLeadOperator(
        task_id="t", email=["ann@example.com", "ghost@example.com"], campaign_id="cam_running"
    ),
    "leadlex": lambda: LeadlexRemoveContactOperator(
        task_id="t", contact_id=["ctc_ann", "ctc_zed"], campaign_id="cmp_active"
    ),
    "dialnexa": lambda: DialnexaRemoveCampaignLeadOperator(task_id="t", campaign_lead_id=["cl_ann", "cl_gone"]),
}


@pytest.mark.parametrize("vendor", sorted(OPERATORS))
def test_base_url_without_the_api_prefix_fails_before_any_item(seeded, sandbox_server, monkeypatch, context, vendor):
    mount = f"{sandbox_server.url}/{vendor}"  # the vendor's host, without /api, /v1, /functions/...
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT",
        json.dumps({"conn_type": vendor, "host": mount, "password": DEFAULT_KEYS[vendor]}),
    )
    with pytest.raises(AirflowFailException) as err:
        OPERATORS[vendor]().execute(context)
    assert f"{mount} answers like no known {vendor} API" in str(err.value)
    assert "nothing was sent" in str(err.value)
    assert _writes(seeded) == []
    assert "report" not in context["ti"].xcoms  # nothing reported already_absent


# -- 2. only the vendor's own "not found" proves absence --------------------------------------


def test_html_404_pages_are_failures_never_already_absent(seeded, context):
    emails = [f"ghost{i}@example.com" for i in range(12)] + ["ann@example.com", "bob@example.com", "cat@example.com"]
    # the preflight GET passes; then every third answer is a proxy's HTML 404 page
    seeded.inject("lemlist", ["ok"] + [{"kind": "html500", "status": 404}, "ok", "ok"] * 5)
    op = LemlistMarkNotInterestedOperator(task_id="t", lead=emails, max_workers=1, fail_on_error=False)
    report = op.execute(context)
    faulted = {r["segments"][-1] for r in seeded.requests(vendor="lemlist") if r["fault"]}
    assert len(faulted) == 5
    assert sorted(report["items"]["failed"]) == sorted(faulted)
    assert {f["reason"] for f in report["failures"]} == {"unexpected_response"}
    assert not faulted & set(report["items"]["already_absent"])
    assert sorted(report["items"]["already_absent"] + report["items"]["done"]) == sorted(set(emails) - faulted)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"kind": "empty", "status": 404}, "unexpected_response"),
        ({"kind": "html500", "status": 404}, "unexpected_response"),
        ({"kind": "redirect", "status": 302}, "unexpected_response"),
        ({"kind": "redirect", "status": 303}, "unexpected_response"),
    ],
)
def test_other_404s_and_redirects_are_failures(seeded, context, fault, reason):
    seeded.inject("dialnexa", ["ok", fault])
    op = DialnexaRemoveCampaignLeadOperator(task_id="t", campaign_lead_id=["cl_ann"], fail_on_error=False)
    report = op.execute(context)
    assert report["items"]["failed"] == ["cl_ann"]
    assert report["failures"][0]["reason"] == reason
    # a redirect is not followed: the DELETE was the only request for the lead
    assert [r["method"] for r in seeded.requests(vendor="dialnexa") if "cl_ann" in r["path"]] == ["DELETE"]


def test_a_404_that_is_not_lemlists_lead_not_found_is_a_failure(seeded, context):
    seeded.inject("lemlist", ["ok", "404"])  # lemlist's text format, but not "Lead not found"
    op = LemlistUnsubscribeLeadOperator(
        task_id="t", email="ann@example.com", campaign_id="cam_running", fail_on_error=False
    )
    report = op.execute(context)
    assert report["items"]["failed"] == ["ann@example.com"]
    assert report["failures"][0]["reason"] == "unexpected_response"


def test_a_success_whose_body_is_not_json_is_done(seeded, context):
    seeded.inject("leadlex", ["ok", {"kind": "badjson", "status": 200, "phase": "after"}])
    op = LeadlexRemoveContactOperator(task_id="t", contact_id=["ctc_ann"], campaign_id="cmp_active")
    report = op.execute(context)
    assert report["items"]["done"] == ["ctc_ann"]
    assert "ctc_ann" not in seeded.state()["leadlex"]["campaigns"]["cmp_active"]["contacts"]


def test_padded_ids_are_stripped_before_validation_and_deduplication(seeded, context):
    op = LeadlexRemoveContactOperator(
        task_id="t", contact_id=["ctc_ann   ", " ctc_ann", "ctc_bob\t"], campaign_id=" cmp_active ".strip()
    )
    report = op.execute(context)
    assert report["items"]["done"] == ["ctc_ann", "ctc_bob"]
    assert report["duplicates"] == 1


# -- 3. the circuit breaker --------------------------------------------------------------------


def test_a_key_revoked_mid_run_stops_the_run(sandbox, connections, tmp_path, monkeypatch, context):
    sandbox.seed(_dialnexa_seed(1000))
    db = tmp_path / "audit.db"
    monkeypatch.setenv("AIRFLOW_CONN_AUDIT_DB", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    sandbox.revoke_key("dialnexa", after_requests=51)  # the preflight and 50 items go through
    op = DialnexaRemoveCampaignLeadOperator(
        task_id="t",
        campaign_lead_id=[f"cl_{i:05d}" for i in range(1000)],
        max_workers=4,
        audit_conn_id="audit_db",
        audit_table="audit",
    )
    with pytest.raises(AirflowFailException, match="the API key was refused"):
        op.execute(context)
    log = sandbox.requests(vendor="dialnexa")
    refused = [r for r in log if r["status"] == 401]
    assert 1 <= len(refused) <= op.max_workers
    assert len(log) <= 51 + op.max_workers
    report = context["ti"].xcoms["report"]
    counts = report["counts"]
    assert counts["done"] == 50 and counts["failed"] == len(refused)
    assert counts["not_attempted"] == 1000 - 50 - len(refused)
    rows = dict(sqlite3.connect(db).execute("SELECT outcome, count(*) FROM audit GROUP BY outcome").fetchall())
    assert rows == {"done": 50, "failed": len(refused), "not_attempted": counts["not_attempted"]}


def test_a_run_of_unexpected_answers_stops_the_run(seeded, context):
    seeded.inject("dialnexa", ["ok"] + [{"kind": "html500", "status": 404}] * 30)
    op = DialnexaRemoveCampaignLeadOperator(
        task_id="t", campaign_lead_id=[f"cl_x{i}" for i in range(40)], max_workers=1
    )
    with pytest.raises(AirflowFailException, match="answers in a row that this API does not give"):
        op.execute(context)
    counts = context["ti"].xcoms["report"]["counts"]
    assert counts["failed"] == 10 and counts["not_attempted"] == 30


def test_an_api_that_is_down_fails_so_that_airflow_retries(seeded, context):
    seeded.inject("leadlex", ["ok"] + ["503"] * 60)

    class OneAttempt(LeadlexRemoveContactOperator):
        def get_hook(self):
            return self.spec.hook_class(self.conn_id, max_attempts=1)

    op = OneAttempt(task_id="t", contact_id=[f"ctc_{i}" for i in range(50)], campaign_id="cmp_active", max_workers=1)
    with pytest.raises(AirflowException, match="the API looks down") as err:
        op.execute(context)
    assert not isinstance(err.value, AirflowFailException)
    counts = context["ti"].xcoms["report"]["counts"]
    assert counts["failed"] == 20 and counts["not_attempted"] == 30


def test_permanent_failures_fail_without_retry_transient_ones_with(seeded, context):
    op = LeadlexRemoveContactOperator(task_id="t", contact_id=["ctc_ann", ".."], campaign_id="cmp_active")
    with pytest.raises(AirflowFailException, match="No retry can help"):
        op.execute(context)


# -- 4. the evidence keeps pace with the calls -----------------------------------------------


def test_audit_rows_land_while_the_run_goes_on_with_their_call_times(
    sandbox, connections, tmp_path, monkeypatch, context
):
    sandbox.seed(_dialnexa_seed(60))
    sandbox.configure(latency={"dialnexa": 0.12})
    db = tmp_path / "audit.db"
    monkeypatch.setenv("AIRFLOW_CONN_AUDIT_DB", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    op = DialnexaRemoveCampaignLeadOperator(
        task_id="t",
        campaign_lead_id=[f"cl_{i:05d}" for i in range(60)],
        max_workers=1,
        audit_conn_id="audit_db",
        audit_table="audit",
    )
    seen_during_run: list[int] = []
    finished = threading.Event()

    def watch():
        while not finished.is_set():
            try:
                seen_during_run.append(sqlite3.connect(db).execute("SELECT count(*) FROM audit").fetchone()[0])
            except sqlite3.Error:
                pass
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.time()
    try:
        op.execute(context)
    finally:
        finished.set()
        watcher.join()
    assert time.time() - started > 7  # long enough for a time-based flush
    assert any(0 < n < 60 for n in seen_during_run), seen_during_run
    rows = sqlite3.connect(db).execute("SELECT item, recorded_at FROM audit ORDER BY recorded_at").fetchall()
    assert len(rows) == 60
    logged = {r["segments"][-1]: r["time"] for r in sandbox.requests(vendor="dialnexa") if r["method"] == "DELETE"}
    import pendulum

    for item, recorded_at in rows:
        assert abs(pendulum.parse(recorded_at).timestamp() - logged[item]) < 1.0  # the time of its own call


# -- 6. bounded XCom ---------------------------------------------------------------------------


def test_the_report_is_bounded(sandbox, connections, context):
    sandbox.seed(_dialnexa_seed(1500))
    op = DialnexaRemoveCampaignLeadOperator(
        task_id="t",
        campaign_lead_id=[f"cl_{i:05d}" for i in range(1500)] + ["z" * 3000 + str(i) for i in range(151)],
        max_workers=16,
        fail_on_error=False,
    )
    report = op.execute(context)
    assert "items" not in report and report["items_omitted"] == 1651
    assert report["counts"] == {"done": 1500, "already_absent": 0, "failed": 151}
    assert len(report["failures"]) == 100 and report["failures_omitted"] == 51
    assert len(json.dumps(report)) < 64 * 1024


def test_compact_progress_for_100000_items_fits_the_task_state_store():
    import random

    from airflow_provider_outreach.bulk.ledger import PROGRESS_KEY, StateStoreLedger
    from airflow_provider_outreach.bulk.report import ItemResult
    from tests.conftest import MemoryStateStore

    items = [f"person{i:06d}@example.com" for i in range(100_000)]
    store = MemoryStateStore()
    ledger = StateStoreLedger(store, items)
    rng = random.Random(1)
    outcomes = ["done", "already_absent", "failed"]
    for item in items:  # the worst case: outcomes in no order at all
        outcome = rng.choice(outcomes)
        ledger.record(item, ItemResult(outcome, 404, "x", "invalid" if outcome == "failed" else None, "m" * 300), "t")
    ledger.flush()
    size = len(json.dumps(store.get(PROGRESS_KEY)))
    assert size <= 64 * 1024, size
    again = StateStoreLedger(store, items).earlier()
    assert len(again) == 100_000
    assert sum(1 for r in again.values() if r.outcome == "failed") == sum(
        1 for r in ledger.earlier().values() if r.outcome == "failed"
    )
