"""Suppress a batch of opt-outs as soon as it lands: the asset-triggered sync.

Your load (here ``crm_optouts_producer``) writes a batch to ``crm_optouts`` and updates the
asset ``warehouse://crm/optouts`` with its ``batch_id``. This DAG runs on that asset: it
reads the people of exactly the batches whose events started it (run by hand: the
``batch_ids`` param), the ids bound as SQL parameters, and suppresses them in every tool as
the daily ``outreach_suppression_sync`` does, which stays the full reconciliation and the
proof. ``skip_proven``: what an earlier run proved done is not sent again.

Needs the connections of the daily sync.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import Asset, BaseHook, Param, dag, task

from airflow_provider_outreach.operators.dialnexa import DialnexaRemoveCampaignLeadOperator
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator
from airflow_provider_outreach.operators.lemlist import LemlistAddUnsubscribeOperator, LemlistMarkNotInterestedOperator
from airflow_provider_outreach.sync import enrollments_by_campaign, summarize
from airflow_provider_outreach.transfers.leadlex_to_sql import LeadlexEnrollmentsToSqlOperator

WAREHOUSE = "outreach_warehouse"
OPTOUTS = Asset("warehouse://crm/optouts")
SEND = {"audit_conn_id": WAREHOUSE, "audit_table": "outreach_suppression_audit", "skip_proven": True}


def batch_queries(marks: str) -> dict[str, str]:
    """The queries of one read: ``marks`` are the driver's parameter markers, one per batch id."""
    batch = f"SELECT DISTINCT lower(email) AS email FROM crm_optouts WHERE batch_id IN ({marks})"
    return {
        "emails": f"SELECT email FROM ({batch}) o ORDER BY 1",
        "enrollments": "SELECT DISTINCT e.campaign_id, e.contact_id FROM leadlex_enrollments e "
        f"JOIN ({batch}) o ON lower(e.email) = o.email ORDER BY 1, 2",
        "campaign_leads": "SELECT DISTINCT d.campaign_lead_id FROM dialnexa_campaign_leads d "
        f"JOIN ({batch}) o ON lower(d.email) = o.email ORDER BY 1",
    }


@dag(
    schedule=[OPTOUTS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"batch_ids": Param([], type="array", items={"type": "string"}, description="Batches to suppress")},
    tags=["outreach", "compliance"],
)
def outreach_suppression_on_asset():
    @task(multiple_outputs=True)
    def read_batches(params: dict, triggering_asset_events: Any = None, triggering_dataset_events: Any = None):
        """The people of the triggering batches (dataset events on Airflow 2), with their ids in each tool."""
        triggering = triggering_asset_events or triggering_dataset_events or {}
        events = [event for events in triggering.values() for event in events]
        from_events = {str(e.extra["batch_id"]) for e in events if e.extra.get("batch_id")}
        batch_ids = sorted(from_events | set(params["batch_ids"]))
        hook = BaseHook.get_hook(WAREHOUSE)
        queries = batch_queries(", ".join([hook.placeholder] * len(batch_ids)))
        if not batch_ids:
            return dict.fromkeys(queries, [])
        return {name: hook.get_records(sql, parameters=batch_ids) for name, sql in queries.items()}

    people = read_batches()
    # who is enrolled where, as of now (a paced read of every campaign)
    (
        LeadlexEnrollmentsToSqlOperator(
            task_id="pull_leadlex_enrollments", sql_conn_id=WAREHOUSE, table="leadlex_enrollments"
        )
        >> people
    )
    suppressed = [
        LemlistAddUnsubscribeOperator(task_id="lemlist_suppress_team_wide", value=people["emails"], **SEND),
        LemlistMarkNotInterestedOperator(task_id="lemlist_mark_not_interested", lead=people["emails"], **SEND),
        LeadlexRemoveContactOperator.partial(task_id="leadlex_remove_contacts", **SEND).expand_kwargs(
            enrollments_by_campaign(people["enrollments"])
        ),
        DialnexaRemoveCampaignLeadOperator(
            task_id="dialnexa_remove_campaign_leads",
            campaign_lead_id=people["campaign_leads"],
            closed_campaign_ok=True,
            **SEND,
        ),
    ]
    summarize([operator.output for operator in suppressed])


outreach_suppression_on_asset()
