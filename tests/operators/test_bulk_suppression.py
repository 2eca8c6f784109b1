"""lemlist team-wide suppression through the bulk route: chunks, a refused chunk bisected to
the refused values, report and audit per value, the sandbox's end state."""

from __future__ import annotations

import json
import sqlite3

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_outreach.exceptions import InvalidInputError
from airflow_provider_outreach.hooks.lemlist import LemlistHook
from airflow_provider_outreach.operators.lemlist import LemlistAddUnsubscribeOperator


def _posts(sandbox):
    return [r for r in sandbox.requests(vendor="lemlist") if r["method"] == "POST"]


def test_values_go_in_chunks_of_chunk_size(seeded, context, tmp_path, monkeypatch):
    db = tmp_path / "audit.db"
    monkeypatch.setenv("AIRFLOW_CONN_AUDIT_DB", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    values = [f"optout{i:05d}@example.com" for i in range(12_000)] + ["@blocked.example.org"]
    op = LemlistAddUnsubscribeOperator(task_id="t", value=values, audit_conn_id="audit_db", audit_table="audit")
    report = op.execute(context)
    assert report["counts"] == {"done": 12_001, "already_absent": 0, "failed": 0}
    posts = _posts(seeded)
    assert [r["path"] for r in posts] == ["/v2/unsubscribes/variables"] * 2  # 10,000 + 2,001
    suppressed = seeded.state()["lemlist"]["unsubscribes"]
    assert {v.lower() for v in values} <= set(suppressed)
    rows = dict(sqlite3.connect(db).execute("SELECT outcome, count(*) FROM audit GROUP BY outcome").fetchall())
    assert rows == {"done": 12_001}


def test_a_refused_chunk_is_split_until_the_refused_values_stand_alone(seeded, context):
    values = [f"person{i:02d}@example.com" for i in range(40)]
    refused = ["slash/in@example.com", "x/y@example.org"]  # valid emails to us; lemlist refuses them
    values[7], values[29] = refused
    op = LemlistAddUnsubscribeOperator(task_id="t", value=values, chunk_size=40, max_workers=1, fail_on_error=False)
    report = op.execute(context)
    assert sorted(report["items"]["failed"]) == sorted(refused)
    assert sorted(report["items"]["done"]) == sorted(set(values) - set(refused))
    for failure in report["failures"]:
        assert failure["status"] == 400 and failure["reason"] == "InvalidRequestError"
        assert "Invalid values" in failure["message"] and failure["item"] in failure["message"]
    posts = _posts(seeded)
    assert posts[0]["status"] == 400
    assert len(posts) <= 1 + 2 * 2 * 6  # halving 40 values down to single ones, twice
    suppressed = seeded.state()["lemlist"]["unsubscribes"]
    assert set(values) - set(refused) <= set(suppressed)
    assert not set(refused) & set(suppressed)


def test_chunk_size_is_bounded_by_lemlists_limit():
    with pytest.raises(ValueError, match="chunk_size must be 1 to 10000"):
        LemlistAddUnsubscribeOperator(task_id="t", value="a@b.co", chunk_size=10_001)


def test_the_hook_refuses_more_than_lemlist_accepts_before_any_request(seeded):
    with pytest.raises(InvalidInputError, match="at most 10000"):
        LemlistHook().add_unsubscribes([f"v{i}@example.com" for i in range(10_001)])
    assert seeded.requests() == []
    assert LemlistHook().add_unsubscribes(["one@example.com", "@two.example.com"]) == "Variables unsubscribed"


def test_linkedin_urls_and_phone_numbers_are_suppressed_and_read_back(seeded, context):
    from airflow_provider_outreach.operators.lemlist import LemlistSuppressionCheckOperator

    linkedin = "https://www.linkedin.com/in/Ann-Smith-12ab"
    phone = "+33 6 12 34 56 78"
    values = [linkedin, phone, "+1-555-0100", "cat@example.com", "@rival.example"]
    report = LemlistAddUnsubscribeOperator(task_id="t", value=values).execute(context)
    assert report["items"]["done"] == values
    suppressed = seeded.state()["lemlist"]["unsubscribes"]
    assert suppressed[linkedin.lower()]["variable"] == "linkedinUrl"
    assert suppressed[phone]["variable"] == "phone"
    assert len(_posts(seeded)) == 1  # one bulk request for every kind

    never_sent = "+44 20 7946 0000"
    check = LemlistSuppressionCheckOperator(task_id="c", value=[linkedin, phone, never_sent])
    with pytest.raises(AirflowException, match="1 of 3 opt-outs are not honoured"):
        check.execute(context)
    gets = [r["path"] for r in seeded.requests(vendor="lemlist") if r["method"] == "GET"]
    assert "/v2/unsubscribes/variables/https%3A%2F%2Fwww.linkedin.com%2Fin%2FAnn-Smith-12ab" in gets


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("+12 34", "international phone number"),  # four digits: not a person's number
        ("+1234567890123456", "international phone number"),  # 16 digits: longer than E.164
        ("0612345678", "international phone number"),  # no country code
        ("linkedin.com/in/ann", "LinkedIn URL"),  # no scheme
        ("https://www.linkedin.com/in/ann smith", "LinkedIn URL"),
        ("@bad domain", "@domain"),
    ],
)
def test_values_lemlist_would_not_know_fail_before_any_request(seeded, context, value, problem):
    before = set(seeded.state()["lemlist"]["unsubscribes"])
    op = LemlistAddUnsubscribeOperator(task_id="t", value=[value, "dan@example.com"], fail_on_error=False)
    report = op.execute(context)
    assert report["items"] == {"done": ["dan@example.com"], "already_absent": [], "failed": [value]}
    (failure,) = report["failures"]
    assert failure["reason"] == "invalid" and problem in failure["message"] and value in failure["message"]
    assert len(_posts(seeded)) == 1
    assert set(seeded.state()["lemlist"]["unsubscribes"]) - before == {"dan@example.com"}
