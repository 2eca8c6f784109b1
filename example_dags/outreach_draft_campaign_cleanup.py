"""Delete stale LeadLex draft campaigns, but only while they are still drafts.

For each campaign id handed over by an upstream task, a deferrable
``LeadlexCampaignStatusSensor`` waits (on the triggerer, not a worker slot) until the
campaign is ``draft`` and fails at once if it became ``completed``; then
``LeadlexDeleteCampaignOperator`` re-reads the status right before the DELETE and
deletes only a draft. Each campaign is its own mapped task group, so one campaign that is
running or gone does not hold the others back.

Use it: trigger with ``{"campaign_ids": ["<id>", ...]}`` as the run's conf, or replace
``stale_draft_campaigns`` with your own query. Needs the ``leadlex_default`` connection.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import Param, dag, task, task_group

from airflow_provider_outreach.operators.leadlex import LeadlexDeleteCampaignOperator
from airflow_provider_outreach.sensors.leadlex import LeadlexCampaignStatusSensor


@dag(
    dag_id="outreach_draft_campaign_cleanup",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["outreach", "leadlex"],
    params={"campaign_ids": Param([], type="array", items={"type": "string"}, description="Draft campaigns to delete")},
)
def outreach_draft_campaign_cleanup():
    @task
    def stale_draft_campaigns(params: dict) -> list[str]:
        """The campaigns to clean up; here from the run's conf (or params)."""
        return list(dict.fromkeys(params["campaign_ids"]))

    @task_group
    def cleanup(campaign_id: str):
        wait = LeadlexCampaignStatusSensor(
            task_id="wait_until_draft",
            campaign_id=campaign_id,
            target_statuses=["draft"],
            failure_statuses=["completed"],
            deferrable=True,
            poke_interval=30,
            timeout=60 * 60,
        )
        delete = LeadlexDeleteCampaignOperator(task_id="delete_draft", campaign_id=campaign_id)
        wait >> delete

    cleanup.expand(campaign_id=stale_draft_campaigns())


outreach_draft_campaign_cleanup()
