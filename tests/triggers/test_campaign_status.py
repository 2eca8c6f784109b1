"""The campaign-status trigger on its own: serialization, faults, deadline, async lookups."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_outreach.triggers.campaign_status import CampaignStatusTrigger
from tests.conftest import hook_path

CLASSPATH = "airflow_provider_outreach.triggers.campaign_status.CampaignStatusTrigger"


def _trigger(**overrides) -> CampaignStatusTrigger:
    kwargs = {
        "hook_class": hook_path("leadlex"),
        "conn_id": "leadlex_default",
        "campaign_id": "cmp_active",
        "target_statuses": ["draft"],
        "failure_statuses": ["completed"],
        "poll_interval": 0.2,
        "deadline": time.time() + 30,
    }
    kwargs.update(overrides)
    return CampaignStatusTrigger(**kwargs)


def _first_event(trigger: CampaignStatusTrigger, timeout: float = 30) -> dict:
    async def first():
        async for event in trigger.run():
            return event.payload
        return None

    return asyncio.run(asyncio.wait_for(first(), timeout))


def test_serialize_round_trips_exactly():
    trigger = _trigger(deadline=1893456000.5, target_statuses=["paused", "draft"])
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert kwargs == {
        "hook_class": hook_path("leadlex"),
        "conn_id": "leadlex_default",
        "campaign_id": "cmp_active",
        "target_statuses": ["draft", "paused"],
        "failure_statuses": ["completed"],
        "poll_interval": 0.2,
        "deadline": 1893456000.5,
    }
    assert CampaignStatusTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_success_event_is_json_only(seeded):
    seeded.set_campaign_status("leadlex", "cmp_active", "draft", after_seconds=0.5)
    event = _first_event(_trigger())
    assert event == {
        "status": "success",
        "campaign_id": "cmp_active",
        "campaign_status": "draft",
        "message": "leadlex campaign cmp_active is draft",
    }


def test_failure_status_event(seeded):
    event = _first_event(_trigger(campaign_id="cmp_done"))
    assert event["status"] == "failure" and event["campaign_status"] == "completed"


def test_missing_campaign_event(seeded):
    event = _first_event(_trigger(hook_class=hook_path("dialnexa"), conn_id="dialnexa_default", campaign_id="cmp_nope"))
    assert event["status"] == "error" and event["message"].startswith("campaign cmp_nope not found on dialnexa at ")


@pytest.mark.parametrize(
    "vendor,campaign", [("lemlist", "cam_running"), ("leadlex", "cmp_active"), ("dialnexa", "cmp_live")]
)
def test_trigger_polls_through_5xx_429_and_dropped_connections(seeded, vendor, campaign):
    seeded.inject(vendor, ["503", "drop", {"kind": "429", "retry_after": 1}, "500", "drop", "502"] * 2)
    seeded.set_campaign_status(vendor, campaign, "paused", after_seconds=1)
    started = time.monotonic()
    event = _first_event(
        _trigger(
            hook_class=hook_path(vendor),
            conn_id=f"{vendor}_default",
            campaign_id=campaign,
            target_statuses=["paused"],
            failure_statuses=[],
        )
    )
    assert event["status"] == "success", event
    log = seeded.requests(vendor=vendor)
    faults = [r["fault"] for r in log if r["fault"]]
    assert len(faults) == 12  # every injected fault was met and polled through
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0  # the 429's wait was honoured
    assert len(log) <= 12 + elapsed / 0.2 + 3  # never polls without sleeping


def test_deadline_holds_across_a_trigger_restart(seeded):
    deadline = time.time() + 2.0
    trigger = _trigger(deadline=deadline)

    async def run_briefly():
        agen = trigger.run()
        task = asyncio.ensure_future(agen.__anext__())
        await asyncio.sleep(0.8)
        task.cancel()  # the triggerer went away
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_briefly())
    restarted = CampaignStatusTrigger(**trigger.serialize()[1])  # as a new triggerer would
    event = _first_event(restarted)
    assert event["status"] == "timeout"
    assert "did not reach ['draft'] in time (last status: active)" in event["message"]
    assert abs(time.time() - deadline) < 1.0  # the original deadline, not a fresh one


def test_trigger_never_looks_up_the_connection_on_the_event_loop(seeded, monkeypatch):
    """Airflow's async lookup where it is safe on a shared event loop (3.3.2+); else the sync
    lookup, in a worker thread (2.11 and 3.0 have no async one)."""
    from airflow.providers.common.compat.sdk import BaseHook

    lookup = BaseHook.get_connection
    off_the_loop = []

    def sync_lookup(cls, conn_id):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            off_the_loop.append(conn_id)
            return lookup(conn_id)
        raise AssertionError("sync connection lookup on the event loop")

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(sync_lookup))
    seeded.set_campaign_status("leadlex", "cmp_active", "draft")
    assert _first_event(_trigger())["status"] == "success"
    assert off_the_loop in ([], ["leadlex_default"])


def test_bad_connection_is_an_error_event(seeded):
    event = _first_event(_trigger(conn_id="no_such_connection"))
    assert event["status"] == "error" and "no_such_connection" in event["message"]


@pytest.mark.parametrize("body", [{"data": {"campaign": {"id": "cmp_active", "status": "deleted"}}}, [], None])
def test_an_answer_with_no_known_status_ends_the_wait_with_an_error(seeded, monkeypatch, body):
    """A status the vendor does not give, or no campaign object at all, is no reason to keep
    polling until the deadline (nor to crash the trigger): the answer is not recognised."""
    from airflow_provider_outreach.hooks.leadlex import LeadlexHook

    async def odd_answer(self, client, method, template, **params):
        return body

    monkeypatch.setattr(LeadlexHook, "acall", odd_answer)
    started = time.monotonic()
    event = _first_event(_trigger())
    assert event["status"] == "error" and "is not one leadlex gives" in event["message"]
    assert time.monotonic() - started < 10  # at the first answer, not at the 30 s deadline


def test_a_campaign_with_a_status_the_vendor_does_not_give_is_refused():
    from airflow_provider_outreach.exceptions import InvalidResponseError
    from airflow_provider_outreach.hooks.lemlist import LemlistHook

    with pytest.raises(InvalidResponseError, match="status 'deleted'"):
        LemlistHook()._campaign({"_id": "cam_1", "status": "deleted"}, "cam_1")
    assert LemlistHook()._campaign({"_id": "cam_1", "status": "draft"}, "cam_1")["status"] == "draft"
