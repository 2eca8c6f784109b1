"""The bulk engine on its own: progress reporting, one outcome per item, pauses."""

from __future__ import annotations

import logging
import time

import pytest

from airflow_provider_outreach.bulk.engine import run_bulk
from airflow_provider_outreach.bulk.items import EMAIL, prepare
from airflow_provider_outreach.bulk.policy import BulkPolicy
from airflow_provider_outreach.bulk.report import Report
from airflow_provider_outreach.exceptions import NotFoundError, RateLimitError, ServerError


def test_progress_is_logged_during_long_runs(caplog):
    caplog.set_level(logging.INFO, logger="bulk-test")
    report = Report(vendor="lemlist", action="test")
    items = [f"i{n}" for n in range(12)]
    run_bulk(
        items,
        lambda item: time.sleep(0.1),
        report,
        BulkPolicy(max_workers=2, max_inline_wait=60, progress_every=0.2),
        logger=logging.getLogger("bulk-test"),
    )
    progress = [r.getMessage() for r in caplog.records if "items finished" in r.getMessage()]
    assert len(progress) >= 2
    assert report.counts() == {"done": 12, "already_absent": 0, "failed": 0}


def test_every_item_gets_exactly_one_outcome_whatever_happens():
    def call(item: str) -> None:
        n = int(item[1:])
        if n % 4 == 1:
            gone = NotFoundError(vendor="v", status_code=404, message="gone")
            gone.missing = "lead"  # the vendor's answer names the item itself
            raise gone
        if n % 4 == 2:
            raise ServerError(vendor="v", status_code=503, message="busy")
        if n % 4 == 3:
            raise ValueError("a bug")

    report = Report(vendor="v", action="a")
    items = [f"i{n}" for n in range(40)]
    result = run_bulk(items, call, report, BulkPolicy(max_workers=4, max_inline_wait=60, item_object="lead"))
    assert result.quota is None and result.stop is None
    assert sorted(report.outcomes) == sorted(items)
    assert report.counts() == {"done": 10, "already_absent": 10, "failed": 20}
    reasons = {f["reason"] for f in report.failures.values()}
    assert reasons == {"ServerError", "error"}
    assert any("ValueError: a bug" in f["message"] for f in report.failures.values())


def test_a_long_quota_wait_pauses_and_hands_back_the_items_not_done():
    calls: list[str] = []

    def call(item: str) -> None:
        calls.append(item)
        if len(calls) > 3:
            raise RateLimitError(vendor="leadlex", status_code=429, message="daily cap", retry_after=3600)

    report = Report(vendor="leadlex", action="remove_contact")
    items = [f"c{n}" for n in range(10)]
    pause = run_bulk(items, call, report, BulkPolicy(max_workers=1, max_inline_wait=60)).quota
    assert pause is not None and pause.retry_after == 3600
    assert len(report.outcomes) == 3
    assert sorted(pause.pending + list(report.outcomes)) == sorted(items)
    assert "daily cap" in pause.error


def test_duplicates_are_dropped_case_insensitively_for_emails():
    report = Report(vendor="lemlist", action="x")
    todo = prepare(["A@x.io", " a@x.io", "b@x.io", "A@X.IO", "bad"], EMAIL, report)
    assert todo == ["A@x.io", "b@x.io"]
    assert report.duplicates == 2
    assert report.outcomes == {"bad": "failed"}


def test_an_item_never_gets_two_outcomes():
    report = Report(vendor="v", action="a")
    report.record("x", "done")
    with pytest.raises(RuntimeError, match="already has an outcome"):
        report.record("x", "failed")
