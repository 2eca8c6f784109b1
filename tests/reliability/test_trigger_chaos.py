"""The campaign-status trigger under 20 % random faults: it keeps polling, completes, and its
deadline holds across a restart and against an API that hangs."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_outreach.triggers.campaign_status import CampaignStatusTrigger
from tests.conftest import hook_path
from tests.seeds import base_seed

FAULTS = {
    "rate": 0.2,
    "kinds": {"500": 1, "502": 1, "503": 1, "429": 1, "drop": 1, "slow": 1},
    "slow_seconds": 1.0,
    "retry_after": 1,
    "vendors": None,
    "phase": "mixed",
    "seed": 7,
}
CAMPAIGNS = {"lemlist": "cam_running", "leadlex": "cmp_active", "dialnexa": "cmp_live"}
POLL = 0.1


@pytest.fixture
def chaos(sandbox, connections):
    sandbox.seed(base_seed())
    for vendor in CAMPAIGNS:
        connections(vendor, f"{vendor}_chaos", timeout=0.5)
    sandbox.configure(faults=FAULTS)
    return sandbox


def make_trigger(vendor: str, deadline: float, target: str = "paused") -> CampaignStatusTrigger:
    return CampaignStatusTrigger(
        hook_class=hook_path(vendor),
        conn_id=f"{vendor}_chaos",
        campaign_id=CAMPAIGNS[vendor],
        target_statuses=[target],
        failure_statuses=[],
        poll_interval=POLL,
        deadline=deadline,
    )


async def first_event(trigger: CampaignStatusTrigger) -> tuple[dict, float]:
    """The trigger's first event and the wall-clock time it arrived."""
    async for event in trigger.run():
        return event.payload, time.time()
    raise AssertionError("the trigger ended without an event")


@pytest.mark.parametrize("vendor", sorted(CAMPAIGNS))
def test_polls_through_random_faults_until_the_status_changes(chaos, vendor):
    chaos.set_campaign_status(vendor, CAMPAIGNS[vendor], "paused", after_seconds=1.0)
    started = time.time()
    event, arrived = asyncio.run(asyncio.wait_for(first_event(make_trigger(vendor, started + 30)), 30))
    assert event == {
        "status": "success",
        "campaign_id": CAMPAIGNS[vendor],
        "campaign_status": "paused",
        "message": f"{vendor} campaign {CAMPAIGNS[vendor]} is paused",
    }
    assert arrived - started >= 1.0
    log = chaos.requests(vendor=vendor)
    faults = [r["fault"] for r in log if r["fault"]]
    assert faults, "the run met no fault"
    assert len(log) <= len(faults) * 3 + (arrived - started) / POLL + 3, "polled without pausing"


def test_deadline_holds_across_a_restart_under_faults(chaos):
    deadline = time.time() + 2.5
    trigger = make_trigger("leadlex", deadline, target="draft")

    async def run_then_lose_the_triggerer():
        task = asyncio.ensure_future(first_event(trigger))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_then_lose_the_triggerer())
    _, kwargs = trigger.serialize()
    assert kwargs["deadline"] == deadline
    event, arrived = asyncio.run(first_event(CampaignStatusTrigger(**kwargs)))
    assert event["status"] == "timeout" and "did not reach ['draft'] in time" in event["message"]
    assert deadline <= arrived < deadline + 0.5, f"timed out {arrived - deadline:+.2f} s from the deadline"
    assert any(r["fault"] for r in chaos.requests(vendor="leadlex"))


@pytest.mark.parametrize("vendor", sorted(CAMPAIGNS))
def test_a_hanging_api_cannot_push_the_timeout_past_the_deadline(sandbox, connections, vendor):
    """Every answer takes longer than the read timeout: polls hang, the deadline does not move."""
    sandbox.seed(base_seed())
    connections(vendor, f"{vendor}_chaos", timeout=2)
    sandbox.inject(vendor, [{"kind": "slow", "slow_seconds": 3}] * 10)
    deadline = time.time() + 1.0
    event, arrived = asyncio.run(first_event(make_trigger(vendor, deadline)))
    assert event["status"] == "timeout"
    assert deadline <= arrived < deadline + 0.5, f"timed out {arrived - deadline:+.2f} s from the deadline"
