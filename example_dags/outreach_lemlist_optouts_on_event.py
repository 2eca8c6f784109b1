"""Honour an opt-out made inside lemlist in LeadLex and DialNexa within minutes, not a day.

When a person clicks lemlist's unsubscribe link, bounces or reports abuse, lemlist stops
emailing them at once; LeadLex and DialNexa would go on until the daily sync reads
lemlist's list. Here the triggerer watches that list (``LemlistUnsubscribeEventTrigger``:
one paced request per poll) and every record that joins it, but the provider's own
suppressions, becomes an event of the asset ``lemlist_opt_outs``. This DAG runs on it:
it records the people in the warehouse (``lemlist_unsubscribes``, as the daily pull would),
finds their LeadLex enrollments and DialNexa campaign leads (ids bound as SQL parameters)
and removes them with the daily sync's operators. ``outreach_suppression_sync`` stays the
full reconciliation and the proof.

Cost: one request per poll in lemlist's shared budget (60 an hour at the default
interval), plus one per person removed. Latency: a poll interval and a run.
``OUTREACH_LEMLIST_POLL_SECONDS`` sets the interval (default 60).

Needs Airflow 3 (asset watchers; on 3.3 the watcher's cursor survives a triggerer restart),
a running triggerer, and the daily sync's connections. The watcher runs while this DAG is
unpaused. LeadLex enrollments come from the daily sync's pull: someone enrolled since then
is left to the next daily run.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum

from airflow_provider_outreach.operators.dialnexa import DialnexaRemoveCampaignLeadOperator
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator
from airflow_provider_outreach.sync import enrollments_by_campaign, summarize
from airflow_provider_outreach.version_compat import AIRFLOW_V_3_0_PLUS

WAREHOUSE = "outreach_warehouse"
SEND = {"audit_conn_id": WAREHOUSE, "audit_table": "outreach_suppression_audit", "skip_proven": True}
POLL_SECONDS = float(os.environ.get("OUTREACH_LEMLIST_POLL_SECONDS", "60"))


def opted_out_in_lemlist(triggering_asset_events: Any = None) -> dict[str, list]:
    """The events' people, recorded in the warehouse, with their ids in LeadLex and DialNexa."""
    from airflow.providers.common.compat.sdk import BaseHook

    from airflow_provider_outreach.sync import lemlist_event_records
    from airflow_provider_outreach.transfers.leadlex_to_sql import create_enrollment_table
    from airflow_provider_outreach.transfers.lemlist_to_sql import store_unsubscribes, suppression_kind

    records = lemlist_event_records(triggering_asset_events)
    store_unsubscribes(WAREHOUSE, "lemlist_unsubscribes", records)
    create_enrollment_table(WAREHOUSE, "leadlex_enrollments")  # the daily sync's pull fills it
    emails = sorted({r["value"].strip().lower() for r in records if suppression_kind(r["value"].strip()) == "email"})
    if not emails:
        return {"enrollments": [], "campaign_leads": []}
    hook = BaseHook.get_hook(WAREHOUSE)
    marks = ", ".join([hook.placeholder] * len(emails))
    return {
        "enrollments": hook.get_records(
            "SELECT DISTINCT campaign_id, contact_id FROM leadlex_enrollments "
            f"WHERE lower(email) IN ({marks}) ORDER BY 1, 2",
            parameters=emails,
        ),
        "campaign_leads": hook.get_records(
            f"SELECT DISTINCT campaign_lead_id FROM dialnexa_campaign_leads WHERE lower(email) IN ({marks}) ORDER BY 1",
            parameters=emails,
        ),
    }


if AIRFLOW_V_3_0_PLUS:  # Airflow 2 has no asset watchers: the daily sync reads lemlist's list
    from airflow.sdk import Asset, AssetWatcher, dag, task

    from airflow_provider_outreach.triggers.lemlist_unsubscribes import LemlistUnsubscribeEventTrigger

    LEMLIST_OPT_OUTS = Asset(
        "lemlist_opt_outs",
        watchers=[
            AssetWatcher(
                name="lemlist_unsubscribe_list",
                trigger=LemlistUnsubscribeEventTrigger(lemlist_conn_id="lemlist_default", poll_interval=POLL_SECONDS),
            )
        ],
    )

    @dag(
        schedule=[LEMLIST_OPT_OUTS],
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["outreach", "compliance"],
    )
    def outreach_lemlist_optouts_on_event():
        people = task(opted_out_in_lemlist, multiple_outputs=True)()
        removed = [
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
        summarize([operator.output for operator in removed])

    outreach_lemlist_optouts_on_event()
