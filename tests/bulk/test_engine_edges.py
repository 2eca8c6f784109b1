"""Edges of the bulk engine and its ledger that a server cannot stage on demand: an audit
write failing at a chosen moment, the task interrupted in the middle of a run, rows of
several tries read back. The rest goes over real HTTP against the sandbox."""

from __future__ import annotations

import threading
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_outreach.bulk.engine import run_bulk
from airflow_provider_outreach.bulk.items import ID, flatten_items, prepare
from airflow_provider_outreach.bulk.ledger import AuditLedger, Ledger
from airflow_provider_outreach.bulk.policy import BulkPolicy
from airflow_provider_outreach.bulk.report import FAILED, ItemResult, Report, is_final
from airflow_provider_outreach.exceptions import AuthenticationError, InvalidInputError, RateLimitError
from airflow_provider_outreach.operators.dialnexa import (
    DialnexaRemoveCampaignLeadOperator,
    DialnexaSuppressionCheckOperator,
)
from airflow_provider_outreach.operators.lemlist import LemlistUnsubscribeLeadOperator


class WrittenLedger(Ledger):
    """Keeps what was written; the writes numbered in ``fail_on`` raise."""

    def __init__(self, fail_on: set[int] = frozenset()) -> None:
        super().__init__()
        self.fail_on, self.writes, self.rows = set(fail_on), 0, []

    def due(self) -> bool:
        return bool(self._pending)  # write after every item: the moments are under control

    def _write(self, entries) -> None:
        self.writes += 1
        if self.writes in self.fail_on:
            raise OSError(f"audit write {self.writes} refused")
        self.rows.extend(item for item, _, _ in entries)


def test_rows_of_a_failed_audit_write_are_written_by_the_next_one():
    ledger = WrittenLedger(fail_on={2})
    report = Report(vendor="v", action="a")
    items = [f"i{n}" for n in range(30)]
    result = run_bulk(items, lambda item: time.sleep(0.01), report, BulkPolicy(max_workers=1), ledger)
    assert result.stop is not None and "audit trail could not be written" in result.stop.cause
    assert sorted(report.outcomes) == sorted(items)  # every item one outcome, sent or not
    assert sorted(ledger.rows) == sorted(report.outcomes), "the report and the audit rows agree"


def test_a_failed_last_write_before_a_quota_wait_leaves_no_item_without_an_outcome():
    calls: list[str] = []

    def call(item: str) -> None:
        calls.append(item)
        if len(calls) > 3:
            raise RateLimitError(vendor="v", status_code=429, retry_after=3600, message="daily cap")

    class FailsLast(WrittenLedger):
        def due(self) -> bool:
            return False  # only the final write: the one that fails

    ledger = FailsLast(fail_on={1})
    report = Report(vendor="v", action="a")
    items = [f"c{n}" for n in range(10)]
    result = run_bulk(items, call, report, BulkPolicy(max_workers=1, max_inline_wait=60), ledger)
    assert result.stop is not None and result.quota is None
    assert sorted(report.outcomes) == sorted(items)
    assert report.counts()["not_attempted"] == 7


def test_an_interrupted_run_sends_nothing_more_and_writes_what_finished():
    sent: list[str] = []
    lock = threading.Lock()

    def call(item: str) -> None:
        with lock:
            sent.append(item)
        time.sleep(0.02)

    class Interrupting(WrittenLedger):
        def due(self) -> bool:
            if len(self._pending) + len(self.rows) >= 10:
                raise KeyboardInterrupt  # what the task's timeout raises in the main thread
            return False

    ledger = Interrupting()
    report = Report(vendor="v", action="a")
    with pytest.raises(KeyboardInterrupt):
        run_bulk([f"i{n}" for n in range(200)], call, report, BulkPolicy(max_workers=4), ledger)
    time.sleep(0.2)
    assert len(sent) < 30, "queued items were still sent after the interruption"
    assert sorted(ledger.rows) == sorted(report.outcomes) == sorted(sent), "every item sent has its row"


def test_a_final_row_is_not_outranked_by_a_later_retryable_one():
    class Rows:
        def earlier_rows(self):
            return [
                ("a", "done", 200, None, None, None, None),
                ("a", "failed", 503, None, "ServerError", "busy", 1),  # a later row (another host's clock)
                ("b", "failed", 503, None, "ServerError", "busy", 1),
                ("c", "failed", 401, None, "AuthenticationError", "key refused", 1),
                ("d", "failed", 400, None, "invalid", "no", 0),
                ("e", "failed", 400, None, "InvalidRequestError", "written before the column existed", None),
            ]

    assert AuditLedger(Rows()).earlier() == {
        "a": ItemResult("done", 200),
        "d": ItemResult("failed", 400, None, "invalid", "no", False),
    }


def test_a_refused_key_is_not_a_final_failure():
    """Once the key is fixed, clearing the task sends the item the refused key stopped at."""
    outcome, details = BulkPolicy().classify(AuthenticationError(vendor="v", status_code=401, message="key refused"))
    assert outcome == FAILED and details["retryable"] is True
    assert not is_final(ItemResult(FAILED, 401, None, "AuthenticationError", "key refused", details["retryable"]))


def test_sets_get_one_order_and_bytes_are_refused():
    assert flatten_items({"c", "a", "b"}, "ids") == ["a", "b", "c"]
    with pytest.raises(InvalidInputError, match="ids must be a string or a list of strings, got bytes"):
        flatten_items(b"lea_1", "ids")


def test_a_non_string_item_never_hides_a_real_one():
    report = Report(vendor="v", action="a")
    todo = prepare([None, "None", 1.5, "1.5"], ID, report)
    assert todo == ["None", "1.5"] and report.duplicates == 0
    assert sorted(report.failures) == ["1.5 (float)", "None (NoneType)"]


def test_a_failure_limit_of_zero_still_names_the_first_failure(seeded, context):
    op = LemlistUnsubscribeLeadOperator(
        task_id="t", email=["ann@example.com", "not-an-email"], campaign_id="cam_running", report_failure_limit=0
    )
    with pytest.raises(AirflowFailException, match="first: not-an-email: email 'not-an-email'"):
        op.execute(context)


def test_success_answers_that_are_not_json_stop_the_run(seeded, context):
    leads = [f"cl_{n}" for n in range(30)]
    seeded.inject("dialnexa", ["ok"] + [{"kind": "badjson", "status": 200}] * 40)
    op = DialnexaSuppressionCheckOperator(task_id="t", campaign_lead_id=leads, max_workers=1)
    with pytest.raises(AirflowFailException, match="10 answers in a row that this API does not give"):
        op.execute(context)
    counts = context["ti"].xcoms["report"]["counts"]
    assert counts["failed"] == 10 and counts["not_attempted"] == 20
    gets = [r for r in seeded.requests(vendor="dialnexa") if r["path"].startswith("/campaigns-leads/")]
    assert len(gets) == 10, "nothing sent after the tenth answer that made no sense"


def test_a_409_that_is_not_dialnexas_is_no_proof_of_a_closed_campaign(seeded, context):
    seeded.inject("dialnexa", ["ok", {"kind": "html500", "status": 409}])
    op = DialnexaRemoveCampaignLeadOperator(
        task_id="t", campaign_lead_id=["cl_bob"], closed_campaign_ok=True, fail_on_error=False
    )
    report = op.execute(context)
    assert report["counts"]["already_absent"] == 0
    (failure,) = report["failures"]
    assert failure["status"] == 409 and failure["reason"] == "unexpected_response"


def test_dialnexas_own_409_still_counts_as_closed(seeded, context):
    op = DialnexaRemoveCampaignLeadOperator(task_id="t", campaign_lead_id=["cl_old"], closed_campaign_ok=True)
    report = op.execute(context)
    assert report["items"]["already_absent"] == ["cl_old"]


def test_interrupted_is_not_a_failure_of_any_item():
    """The interruption itself never becomes an outcome: the items not sent stay open for the retry."""
    report = Report(vendor="v", action="a")

    class Stop(WrittenLedger):
        def due(self) -> bool:
            raise AirflowException("timeout")

    with pytest.raises(AirflowException):
        run_bulk(["x", "y"], lambda item: None, report, BulkPolicy(max_workers=1), Stop())
    assert all(r.outcome != FAILED for r in report.results.values())


def test_halving_stops_when_the_refusal_is_not_about_the_items():
    """A 400 for every request (say the API changed its body format): halving would send
    2n - 1 requests and fail every item for good; the run stops after ten lone refusals."""
    from airflow_provider_outreach.exceptions import InvalidRequestError

    requests: list[int] = []
    lock = threading.Lock()

    def call(chunk: list[str]) -> None:
        with lock:
            requests.append(len(chunk))
        raise InvalidRequestError(vendor="v", status_code=400, message="Body must be a JSON object")

    report = Report(vendor="v", action="a")
    items = [f"v{n}@example.com" for n in range(2000)]
    result = run_bulk(items, call, report, BulkPolicy(max_workers=4, batch_size=1000), Ledger())
    assert result.stop is not None and result.stop.final and "not about the items" in result.stop.cause
    assert len(requests) < 100, len(requests)
    assert sorted(report.outcomes) == sorted(items)
    assert report.counts()["not_attempted"] > 1900


def test_a_few_refused_values_are_still_isolated():
    from airflow_provider_outreach.exceptions import InvalidRequestError

    bad = {f"v{n}@example.com" for n in (3, 4, 5, 6, 7, 8, 9, 10, 11, 700)}  # nine of them side by side

    def call(chunk: list[str]) -> None:
        if bad & set(chunk):
            raise InvalidRequestError(vendor="v", status_code=400, message="Invalid values")

    report = Report(vendor="v", action="a")
    items = [f"v{n}@example.com" for n in range(1000)]
    result = run_bulk(items, call, report, BulkPolicy(max_workers=1, batch_size=1000), Ledger())
    assert result.stop is None
    assert set(report.failures) == bad and report.counts()["done"] == 990
