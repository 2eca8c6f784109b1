"""Honour opt-outs in every outreach tool: the warehouse suppression sync.

Three DAGs:

``outreach_suppression_sync`` (daily)
    Reads the opt-outs recorded in the warehouse during the run's data interval, the day
    since the previous run (so reruns and backfills redo exactly their own day), then, in
    parallel:

    * lemlist: suppresses each email team-wide and marks the lead not interested;
    * LeadLex: removes each opted-out person's enrollments, one task per campaign;
    * DialNexa: removes each opted-out person's campaign leads from the call queues;

    every operator writes one audit row per person into the warehouse, and a last task
    gathers the reports into one summary (the XCom ``return_value`` of ``summary``).

``crm_optouts_producer`` and ``outreach_suppression_on_asset``
    The same suppression, triggered by an upstream pipeline: the producer loads a batch of
    opt-outs and updates the asset ``warehouse://crm/optouts`` with the batch id; the
    consumer suppresses exactly the batches of the asset events that triggered it.

Warehouse tables (any common-sql database; the names are yours to change)::

    crm_optouts(email, opted_out_at /* ISO-8601 UTC */, batch_id)
    leadlex_enrollments(email, campaign_id, contact_id)       -- synced from LeadLex
    dialnexa_campaign_leads(email, campaign_lead_id)          -- synced from DialNexa

Connections: ``outreach_warehouse`` (SQLite here; a Postgres, Snowflake or BigQuery
connection works the same), ``lemlist_default``, ``leadlex_default``, ``dialnexa_default``.
Give the three API connections a pool each if several DAGs share one API key.
"""

from __future__ import annotations

import re
from typing import Any

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import Asset, BaseHook, CronDataIntervalTimetable, Metadata, Param, dag, task

from airflow_provider_outreach.operators.dialnexa import DialnexaRemoveCampaignLeadOperator
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator
from airflow_provider_outreach.operators.lemlist import LemlistAddUnsubscribeOperator, LemlistMarkNotInterestedOperator

WAREHOUSE = "outreach_warehouse"
AUDIT_TABLE = "outreach_suppression_audit"
OPTOUTS = Asset("warehouse://crm/optouts")
START = pendulum.datetime(2026, 1, 1, tz="UTC")

# One query per tool, each restricted by {where} on the opt-outs table ``o``.
QUERIES = {
    "emails": "SELECT DISTINCT lower(o.email) FROM crm_optouts o WHERE {where} ORDER BY 1",
    "leadlex": "SELECT DISTINCT e.campaign_id, e.contact_id FROM leadlex_enrollments e "
    "JOIN crm_optouts o ON lower(e.email) = lower(o.email) WHERE {where} ORDER BY 1, 2",
    "dialnexa": "SELECT DISTINCT d.campaign_lead_id FROM dialnexa_campaign_leads d "
    "JOIN crm_optouts o ON lower(d.email) = lower(o.email) WHERE {where} ORDER BY 1",
}
INTERVAL = "o.opted_out_at >= '{{ data_interval_start.isoformat() }}' AND o.opted_out_at < '{{ data_interval_end.isoformat() }}'"


@task(multiple_outputs=True)
def people(results: list[list[Any]]) -> dict[str, list[str]]:
    """Rows of the queries -> the emails (lemlist) and campaign leads (DialNexa) to act on."""
    emails, _, campaign_leads = results
    return {"emails": [row[0] for row in emails], "dialnexa": [row[0] for row in campaign_leads]}


@task
def leadlex_enrollments(results: list[list[Any]]) -> list[dict[str, Any]]:
    """Rows of the queries -> one LeadLex removal per campaign, with its contacts."""
    per_campaign: dict[str, list[str]] = {}
    for campaign_id, contact_id in results[1]:
        per_campaign.setdefault(campaign_id, []).append(contact_id)
    return [{"campaign_id": c, "contact_id": ids} for c, ids in sorted(per_campaign.items())]


def suppress_everywhere(results: Any) -> None:
    """The suppression itself, shared by both DAGs: every tool, in parallel, audited."""
    audit = {"audit_conn_id": WAREHOUSE, "audit_table": AUDIT_TABLE}
    work = people(results)
    reports = [
        LemlistAddUnsubscribeOperator(task_id="lemlist_suppress_team_wide", value=work["emails"], **audit).output,
        LemlistMarkNotInterestedOperator(task_id="lemlist_mark_not_interested", lead=work["emails"], **audit).output,
        DialnexaRemoveCampaignLeadOperator(
            task_id="dialnexa_remove_campaign_leads",
            campaign_lead_id=work["dialnexa"],
            closed_campaign_ok=True,  # a completed or cancelled campaign never dials again
            **audit,
        ).output,
    ]
    leadlex = LeadlexRemoveContactOperator.partial(task_id="leadlex_remove_contacts", **audit).expand_kwargs(
        leadlex_enrollments(results)
    )
    summary(reports, leadlex.output)


@task
def summary(reports: list[dict], leadlex_reports: list[dict]) -> dict[str, Any]:
    """One line per tool and action: how many people were done, already absent, failed."""
    rows: dict[str, dict[str, int]] = {}
    for report in [*reports, *leadlex_reports]:
        key = f"{report['vendor']} {report['action']}"
        counts = rows.setdefault(key, {"done": 0, "already_absent": 0, "failed": 0})
        for outcome in counts:
            counts[outcome] += report["counts"].get(outcome, 0)
    for key, counts in sorted(rows.items()):
        print(
            f"{key:<36} done {counts['done']:>4}  already absent {counts['already_absent']:>4}  failed {counts['failed']:>4}"
        )
    return rows


@dag(
    dag_id="outreach_suppression_sync",
    # a data-interval timetable: each run covers [previous run, this run) with no gap
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["outreach", "compliance"],
)
def outreach_suppression_sync():
    optouts = SQLExecuteQueryOperator(
        task_id="read_optouts",
        conn_id=WAREHOUSE,
        sql=[q.format(where=INTERVAL) for q in QUERIES.values()],
        return_last=False,
        split_statements=False,
    )
    suppress_everywhere(optouts.output)


outreach_suppression_sync()


# -- the same suppression, triggered by an upstream pipeline ------------------------------------

_BATCH_ID = re.compile(r"^[A-Za-z0-9_.:+-]{1,64}$")


@dag(
    dag_id="crm_optouts_producer",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"emails": Param([], type="array", description="Opt-outs to load")},
    tags=["outreach", "example"],
)
def crm_optouts_producer():
    @task(outlets=[OPTOUTS])
    def load_optouts(params: dict, run_id: str):
        """Stand-in for the upstream load: records the run's opt-outs as one batch."""
        batch_id = re.sub(r"[^A-Za-z0-9_.:+-]", "_", run_id)[-64:]
        now = pendulum.now("UTC").isoformat()
        rows = [(email, now, batch_id) for email in params["emails"]]
        BaseHook.get_hook(WAREHOUSE).insert_rows(
            "crm_optouts", rows, target_fields=["email", "opted_out_at", "batch_id"]
        )
        yield Metadata(OPTOUTS, extra={"batch_id": batch_id, "count": len(rows)})

    load_optouts()


crm_optouts_producer()


@dag(
    dag_id="outreach_suppression_on_asset",
    schedule=[OPTOUTS],
    start_date=START,
    catchup=False,
    params={"batch_ids": Param([], type="array", description="Batches to (re)suppress on a manual run")},
    tags=["outreach", "compliance"],
)
def outreach_suppression_on_asset():
    @task
    def read_batches(triggering_asset_events=None, params=None) -> list[list[Any]]:
        """The opt-outs of exactly the batches whose asset events triggered this run
        (or, for a manual re-run, the ``batch_ids`` given in the run's conf)."""
        from_events = {
            event.extra.get("batch_id") for events in (triggering_asset_events or {}).values() for event in events
        }
        batch_ids = sorted((from_events | set(params.get("batch_ids") or [])) - {None})
        bad = [b for b in batch_ids if not _BATCH_ID.match(str(b))]
        if bad:
            raise ValueError(f"unexpected batch ids in the asset events: {bad}")
        if not batch_ids:
            return [[], [], []]
        where = "o.batch_id IN ({})".format(", ".join(f"'{b}'" for b in batch_ids))
        hook = BaseHook.get_hook(WAREHOUSE)
        return [hook.get_records(q.format(where=where)) for q in QUERIES.values()]

    suppress_everywhere(read_batches())


outreach_suppression_on_asset()
