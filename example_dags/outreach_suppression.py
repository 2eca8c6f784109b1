"""Honour opt-outs in every outreach tool: the warehouse suppression loop.

Three DAGs:

``outreach_suppression_sync`` (daily): the whole loop
    1. **Pull** what the tools know into the warehouse: lemlist's team-wide unsubscribe
       list (people who clicked lemlist's unsubscribe link, bounced or reported abuse are
       on it and nowhere else) and every LeadLex campaign's enrollments.
    2. **Read** the day's opt-outs: those the CRM recorded during the run's data interval
       (so reruns and backfills redo exactly their own day) together with the lemlist
       unsubscribes first seen since the interval started.
    3. **Suppress** them in every tool, in parallel: lemlist team-wide suppression (bulk)
       and mark-not-interested; LeadLex removal, one task per campaign; DialNexa removal
       from the call queues. Every operator writes one audit row per person into the
       warehouse as it goes.
    4. **Check** every opt-out ever recorded, read back from each tool today (an import
       may have re-added someone): the task fails when one is not honoured.
    5. A summary of the counts (the XCom ``return_value`` of ``summary``).

``crm_optouts_producer`` and ``outreach_suppression_on_asset``
    The same suppression, triggered by an upstream pipeline: the producer loads a batch of
    opt-outs and updates the asset ``warehouse://crm/optouts`` with the batch id; the
    consumer suppresses exactly the batches of the asset events that triggered it.

Warehouse tables (any common-sql database; the names are yours to change)::

    crm_optouts(email, opted_out_at /* ISO-8601 UTC */, batch_id)   -- from your CRM
    dialnexa_campaign_leads(email, campaign_lead_id)                -- from your dialer export
    lemlist_unsubscribes(value, kind, source, created_at, first_seen_at)  -- pulled here
    leadlex_enrollments(campaign_id, contact_id, email, status, seen_at)  -- pulled here

Connections: ``outreach_warehouse`` (SQLite here; a Postgres, Snowflake or BigQuery
connection works the same), ``lemlist_default``, ``leadlex_default``, ``dialnexa_default``.
Tasks on one API key share its rate limit across workers, whatever their number.
``max_inline_wait`` (seconds of rate-limit wait slept in a worker before deferring) can be
set per run in its conf.
"""

from __future__ import annotations

import re
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import Asset, BaseHook, Metadata, Param, dag, task
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_outreach.operators.dialnexa import (
    DialnexaRemoveCampaignLeadOperator,
    DialnexaSuppressionCheckOperator,
)
from airflow_provider_outreach.operators.leadlex import LeadlexRemoveContactOperator, LeadlexSuppressionCheckOperator
from airflow_provider_outreach.operators.lemlist import (
    LemlistAddUnsubscribeOperator,
    LemlistMarkNotInterestedOperator,
    LemlistSuppressionCheckOperator,
)
from airflow_provider_outreach.transfers.leadlex_to_sql import LeadlexEnrollmentsToSqlOperator
from airflow_provider_outreach.transfers.lemlist_to_sql import LemlistUnsubscribesToSqlOperator

WAREHOUSE = "outreach_warehouse"
AUDIT_TABLE = "outreach_suppression_audit"
LEMLIST_TABLE = "lemlist_unsubscribes"
LEADLEX_TABLE = "leadlex_enrollments"
OPTOUTS = Asset("warehouse://crm/optouts")
START = pendulum.datetime(2026, 1, 1, tz="UTC")
#: per run: ``{"max_inline_wait": 60}`` in the run's conf
MAX_INLINE_WAIT = "{{ dag_run.conf.get('max_inline_wait', 60) if dag_run.conf else 60 }}"

#: the opt-outs to act on (``{crm}``: a filter on crm_optouts ``o``; ``{lemlist}``: on lemlist_unsubscribes ``u``)
OPTED_OUT = (
    "WITH optouts(email) AS ("
    "SELECT lower(o.email) FROM crm_optouts o WHERE {crm} "
    f"UNION SELECT lower(u.value) FROM {LEMLIST_TABLE} u WHERE u.kind = 'email' AND {{lemlist}}) "
)
# One query per tool.
QUERIES = {
    "emails": OPTED_OUT + "SELECT DISTINCT email FROM optouts ORDER BY 1",
    "leadlex": OPTED_OUT + f"SELECT DISTINCT e.campaign_id, e.contact_id FROM {LEADLEX_TABLE} e "
    "JOIN optouts x ON lower(e.email) = x.email ORDER BY 1, 2",
    "dialnexa": OPTED_OUT + "SELECT DISTINCT d.campaign_lead_id FROM dialnexa_campaign_leads d "
    "JOIN optouts x ON lower(d.email) = x.email ORDER BY 1",
}
INTERVAL = {
    "crm": "o.opted_out_at >= '{{ data_interval_start.isoformat() }}' AND o.opted_out_at < '{{ data_interval_end.isoformat() }}'",
    # first seen by this run's pull (or a later rerun's): the pull happens after the interval
    "lemlist": "u.first_seen_at >= '{{ data_interval_start.isoformat() }}'",
}
EVERY_OPTOUT = {"crm": "1 = 1", "lemlist": "1 = 1"}


@task(multiple_outputs=True)
def people(results: list[list[Any]]) -> dict[str, list[str]]:
    """Rows of the queries -> the emails (lemlist) and campaign leads (DialNexa) to act on."""
    emails, _, campaign_leads = results
    return {"emails": [row[0] for row in emails], "dialnexa": [row[0] for row in campaign_leads]}


@task
def leadlex_enrollments(results: list[list[Any]]) -> list[dict[str, Any]]:
    """Rows of the queries -> one LeadLex task per campaign, with its contacts."""
    per_campaign: dict[str, list[str]] = {}
    for campaign_id, contact_id in results[1]:
        per_campaign.setdefault(campaign_id, []).append(contact_id)
    return [{"campaign_id": c, "contact_id": ids} for c, ids in sorted(per_campaign.items())]


def pull_from_the_tools() -> list:
    """What the tools know, into the warehouse: lemlist's unsubscribes, LeadLex's enrollments."""
    return [
        LemlistUnsubscribesToSqlOperator(
            task_id="pull_lemlist_unsubscribes", sql_conn_id=WAREHOUSE, table=LEMLIST_TABLE, max_inline_wait=60
        ),
        LeadlexEnrollmentsToSqlOperator(
            task_id="pull_leadlex_enrollments", sql_conn_id=WAREHOUSE, table=LEADLEX_TABLE, max_inline_wait=60
        ),
    ]


def suppress_everywhere(results: Any) -> list:
    """The suppression itself, shared by the DAGs: every tool, in parallel, audited."""
    common = {"audit_conn_id": WAREHOUSE, "audit_table": AUDIT_TABLE, "max_inline_wait": MAX_INLINE_WAIT}
    work = people(results)
    reports = [
        LemlistAddUnsubscribeOperator(task_id="lemlist_suppress_team_wide", value=work["emails"], **common),
        LemlistMarkNotInterestedOperator(task_id="lemlist_mark_not_interested", lead=work["emails"], **common),
        DialnexaRemoveCampaignLeadOperator(
            task_id="dialnexa_remove_campaign_leads",
            campaign_lead_id=work["dialnexa"],
            closed_campaign_ok=True,  # a completed or cancelled campaign never dials again
            **common,
        ),
        LeadlexRemoveContactOperator.partial(task_id="leadlex_remove_contacts", **common).expand_kwargs(
            leadlex_enrollments(results)
        ),
    ]
    return reports


@task(trigger_rule="all_done")
def summary(reports: list[dict | None], mapped: list[list[dict] | None]) -> dict[str, Any]:
    """One line per tool and action: the count of each outcome."""
    rows: dict[str, dict[str, int]] = {}
    for report in [*reports, *(r for reports_of_task in mapped for r in (reports_of_task or []))]:
        if not report:
            continue
        counts = rows.setdefault(f"{report['vendor']} {report['action']}", {})
        for outcome, n in report["counts"].items():
            counts[outcome] = counts.get(outcome, 0) + n
    for key, counts in sorted(rows.items()):
        print(f"{key:<36} " + "  ".join(f"{outcome} {n:>4}" for outcome, n in counts.items()))
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
    pulled = pull_from_the_tools()
    optouts = SQLExecuteQueryOperator(
        task_id="read_optouts",
        conn_id=WAREHOUSE,
        sql=[q.format(**INTERVAL) for q in QUERIES.values()],
        return_last=False,
        split_statements=False,
    )
    pulled >> optouts
    suppressed = suppress_everywhere(optouts.output)
    every_optout = SQLExecuteQueryOperator(
        task_id="read_every_optout",
        conn_id=WAREHOUSE,
        sql=[q.format(**EVERY_OPTOUT) for q in QUERIES.values()],
        return_last=False,
        split_statements=False,
        trigger_rule="all_done",  # the check runs whatever the suppression tasks did
    )
    suppressed >> every_optout
    everyone = people(every_optout.output)
    [
        LemlistSuppressionCheckOperator(
            task_id="check_lemlist", value=everyone["emails"], audit_conn_id=WAREHOUSE, audit_table=AUDIT_TABLE
        ),
        DialnexaSuppressionCheckOperator(
            task_id="check_dialnexa",
            campaign_lead_id=everyone["dialnexa"],
            closed_campaign_ok=True,
            audit_conn_id=WAREHOUSE,
            audit_table=AUDIT_TABLE,
        ),
        LeadlexSuppressionCheckOperator.partial(
            task_id="check_leadlex", audit_conn_id=WAREHOUSE, audit_table=AUDIT_TABLE
        ).expand_kwargs(leadlex_enrollments(every_optout.output)),
    ]
    summary([op.output for op in suppressed[:3]], [suppressed[3].output])
    # the checks are leaves: one that finds an opt-out not honoured fails the run


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
        return [hook.get_records(q.format(crm=where, lemlist="1 = 0")) for q in QUERIES.values()]

    batches = read_batches()
    pull_from_the_tools() >> batches
    suppress_everywhere(batches)


outreach_suppression_on_asset()
