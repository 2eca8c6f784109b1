"""Campaign-status sensors, poking and deferred, in real DAG runs against the sandbox."""

from __future__ import annotations

import time

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_outreach.sensors.dialnexa import DialnexaCampaignStatusSensor
from airflow_provider_outreach.sensors.leadlex import LeadlexCampaignStatusSensor
from airflow_provider_outreach.sensors.lemlist import LemlistCampaignStatusSensor
from airflow_provider_outreach.triggers.campaign_status import CampaignStatusTrigger
from tests.dagtest import new_dag, run_dag, task_states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.mark.parametrize(
    ("sensor_cls", "vendor", "campaign", "target"),
    [
        (LemlistCampaignStatusSensor, "lemlist", "cam_running", "paused"),
        (LeadlexCampaignStatusSensor, "leadlex", "cmp_active", "draft"),
        (DialnexaCampaignStatusSensor, "dialnexa", "cmp_live", "paused"),
    ],
)
def test_poking_sensor_succeeds_when_status_arrives(seeded, sensor_cls, vendor, campaign, target):
    seeded.set_campaign_status(vendor, campaign, target, after_reads=2)
    with new_dag(f"sense_{vendor}_poke") as dag:
        sensor_cls(
            task_id="wait",
            campaign_id=campaign,
            target_statuses=[target],
            poke_interval=0.5,
            timeout=30,
            deferrable=False,
        )
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    assert xcom(dr, "wait") == {"campaign_id": campaign, "status": target}
    gets = [r for r in seeded.requests(vendor=vendor) if r["method"] == "GET"]
    assert len(gets) == 3  # two pokes saw the old status, the third the target


def test_sensor_fails_fast_on_a_failure_status(seeded):
    seeded.set_campaign_status("leadlex", "cmp_active", "completed", after_reads=1)
    with new_dag("sense_fail_fast") as dag:
        LeadlexCampaignStatusSensor(
            task_id="wait", campaign_id="cmp_active", poke_interval=0.3, timeout=60, deferrable=False
        )
    started = time.monotonic()
    dr = run_dag(dag)
    assert dr.state == "failed"
    assert time.monotonic() - started < 50  # at the first completed read, not at the 60 s timeout
    sensor = LeadlexCampaignStatusSensor(task_id="direct", campaign_id="cmp_active", deferrable=False)
    with pytest.raises(AirflowFailException, match="cmp_active is completed; it will not become draft"):
        sensor.poke({})


def test_sensor_times_out_and_soft_fail_skips(seeded):
    with new_dag("sense_timeout") as dag:
        DialnexaCampaignStatusSensor(
            task_id="hard",
            campaign_id="cmp_live",
            target_statuses="paused",
            poke_interval=0.3,
            timeout=1.5,
            deferrable=False,
        )
        DialnexaCampaignStatusSensor(
            task_id="soft",
            campaign_id="cmp_live",
            target_statuses="paused",
            poke_interval=0.3,
            timeout=1.5,
            soft_fail=True,
            deferrable=False,
        )
    dr = run_dag(dag)
    assert task_states(dr) == {"hard": "failed", "soft": "skipped"}


def test_missing_campaign_is_a_clear_failure(seeded):
    sensor = LemlistCampaignStatusSensor(task_id="s", campaign_id="cam_gone", deferrable=False)
    with pytest.raises(AirflowFailException, match="campaign cam_gone not found on lemlist"):
        sensor.poke({})


def test_statuses_are_checked_at_definition():
    with pytest.raises(ValueError, match="not leadlex campaign statuses"):
        LeadlexCampaignStatusSensor(task_id="s", campaign_id="c", target_statuses=["drafted"])
    with pytest.raises(ValueError, match="both target and failure"):
        DialnexaCampaignStatusSensor(
            task_id="s", campaign_id="c", target_statuses=["paused"], failure_statuses=["paused"]
        )
    sensor = DialnexaCampaignStatusSensor(task_id="s", campaign_id="c", target_statuses=["completed"])
    assert sensor.failure_statuses == {"cancelled"}


def test_deferrable_sensor_pokes_first_and_does_not_defer_when_done(seeded):
    sensor = LeadlexCampaignStatusSensor(task_id="s", campaign_id="cmp_draft", deferrable=True)
    assert sensor.execute({}) == {"campaign_id": "cmp_draft", "status": "draft"}


def test_deferrable_sensor_defers_with_an_absolute_deadline(seeded):
    sensor = LeadlexCampaignStatusSensor(
        task_id="s",
        campaign_id="cmp_active",
        deferrable=True,
        timeout=120,
        poke_interval=7,
        leadlex_conn_id="leadlex_default",
    )
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, CampaignStatusTrigger)
    assert before + 119 <= trigger.deadline <= time.time() + 120
    assert (trigger.hook_class, trigger.campaign_id, trigger.poll_interval) == (
        "airflow_provider_outreach.hooks.leadlex.LeadlexHook",
        "cmp_active",
        7.0,
    )
    assert trigger.target_statuses == ["draft"] and trigger.failure_statuses == ["completed"]
    assert deferred.value.method_name == "execute_complete"


def test_deferrable_sensor_in_a_dag_run_completes_through_the_trigger(seeded):
    seeded.set_campaign_status("leadlex", "cmp_active", "draft", after_reads=2)
    with new_dag("sense_deferred") as dag:
        LeadlexCampaignStatusSensor(
            task_id="wait", campaign_id="cmp_active", poke_interval=0.5, timeout=30, deferrable=True
        )
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    assert xcom(dr, "wait") == {"campaign_id": "cmp_active", "status": "draft"}


def test_deferrable_sensor_failure_and_timeout_events(seeded):
    sensor = LemlistCampaignStatusSensor(task_id="s", campaign_id="c", deferrable=True, soft_fail=True)
    from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException

    with pytest.raises(AirflowSkipException):
        sensor.execute_complete(
            {}, {"status": "timeout", "message": "late", "campaign_id": "c", "campaign_status": "x"}
        )
    sensor.soft_fail = False
    with pytest.raises(AirflowSensorTimeout, match="late"):
        sensor.execute_complete(
            {}, {"status": "timeout", "message": "late", "campaign_id": "c", "campaign_status": "x"}
        )
    with pytest.raises(AirflowFailException, match="is ended"):
        sensor.execute_complete(
            {}, {"status": "failure", "message": "c is ended", "campaign_id": "c", "campaign_status": "ended"}
        )
