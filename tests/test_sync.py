"""The building blocks a sync DAG uses between its SQL and the operators."""

from __future__ import annotations

import pytest

from airflow_provider_outreach.exceptions import InvalidInputError
from airflow_provider_outreach.sync import group_by_campaign, sum_reports


def test_rows_are_grouped_by_campaign_in_a_stable_order():
    rows = [["llx_b", "ctc_2"], ("llx_a", "ctc_1"), ["llx_b", " ctc_3 "], ["llx_b", "ctc_2"], ["llx_a", 7]]
    assert group_by_campaign(rows) == [
        {"campaign_id": "llx_a", "contact_id": ["ctc_1", "7"]},
        {"campaign_id": "llx_b", "contact_id": ["ctc_2", "ctc_3"]},
    ]
    assert group_by_campaign([]) == [] and group_by_campaign(None) == []
    assert group_by_campaign([("c", "l")], item_field="lead_id") == [{"campaign_id": "c", "lead_id": ["l"]}]


@pytest.mark.parametrize("row", [["only_one"], ["a", "b", "c"], "ab", {"campaign_id": "a"}, ["a", None], ["", "x"], 5])
def test_a_row_that_is_not_a_pair_is_refused_by_name(row):
    with pytest.raises(InvalidInputError, match=r"row .*: expected a \(campaign_id, contact_id\) pair"):
        group_by_campaign([["ok", "ok"], row])


def report(vendor: str, action: str, **counts: int) -> dict:
    return {"vendor": vendor, "action": action, "counts": counts, "items": {}, "failures": []}


def test_reports_add_up_across_tasks_and_map_indexes():
    mapped = [report("leadlex", "remove_contact", done=2, failed=1), report("leadlex", "remove_contact", done=3)]
    totals = sum_reports(
        [report("lemlist", "add_unsubscribe", done=5, done_earlier=7), mapped, None, [None, report("dialnexa", "x")]]
    )
    assert totals == {
        "dialnexa x": {},
        "leadlex remove_contact": {"done": 5, "failed": 1},
        "lemlist add_unsubscribe": {"done": 5, "done_earlier": 7},
        "reports missing": {"tasks": 2},
    }
    assert sum_reports([]) == {}


def test_something_that_is_no_report_is_refused():
    with pytest.raises(InvalidInputError, match="not an operator report"):
        sum_reports([{"vendor": "lemlist"}])


class Event:
    def __init__(self, extra):
        self.extra = extra


def test_a_runs_lemlist_records_come_once_per_value_whatever_the_events():
    from airflow_provider_outreach.sync import lemlist_event_records

    first = {"_id": "uns_1", "value": "Ann@Example.com", "source": "lead"}
    events = {
        "lemlist_opt_outs": [
            Event({"from_trigger": True, "payload": {"records": [first, {"_id": "uns_2", "value": " "}]}}),
            Event({"from_trigger": True, "payload": {"records": [{"_id": "uns_1", "value": "ann@example.com"}]}}),
            Event({"from_trigger": True, "payload": {"records": [{"_id": "uns_3", "value": "bob@example.com"}]}}),
            Event({}),  # an event of another kind on the same asset
        ]
    }
    assert lemlist_event_records(events) == [first, {"_id": "uns_3", "value": "bob@example.com"}]
    assert lemlist_event_records(None) == [] and lemlist_event_records({}) == []
